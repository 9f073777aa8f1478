#pragma once
// Internal to the app layer: det-run on several ranks. Which ranks this process belongs to, how
// it re-runs itself as that many ranks, and how the chief shares the trial it creates
// (hyperparameters, seed, directories) with the others.

#include <memory>
#include <optional>

#include "det/config/experiment_config.h"
#include "det/core/controller.h"
#include "det/core/registry.h"
#include "det/distributed/distributed_context.h"
#include "det/distributed/launcher.h"

namespace det::app {

/// When `slots` > 1 and this process was not started by a launcher (no RANK,
/// OMPI_COMM_WORLD_RANK, SLURM_PROCID, ... in the environment), runs this same command line
/// again as `slots` local ranks through distributed::launch and returns how that ended (the exit
/// code, and the rank that failed first). Otherwise nullopt: go on.
std::optional<distributed::LaunchResult> relaunch_if_needed(int slots);

/// The ranks det-run trains on: those of the launcher that started this process (torchrun,
/// det-launch, mpirun or srun variables), which must number resources.slots_per_trial; else the
/// single-process context. Throws ConfigError when the counts disagree, DistributedError when the
/// rendezvous fails.
std::shared_ptr<distributed::DistributedContext> trial_ranks(
    const config::ExperimentConfig& config);

/// Sets LibTorch's intra-op threads of a process that trains, the same way whatever started it
/// (the runner's worker, det-launch, mpirun, srun, sbatch, or det-run alone): the CPU share
/// divided among the `local_ranks` ranks on this node, at least 1. The share is `runner_share`
/// (the runner's part of the CPUs, when it runs several trials at once), else the job's CPUs on
/// this node under Slurm (SLURM_CPUS_ON_NODE: Slurm may not bind tasks to them), else the CPUs
/// this process may use (util::usable_cpus). DET_INTRA_OP_THREADS or OMP_NUM_THREADS set by the
/// user stands instead (util::default_intra_op_threads). Returns the count in effect.
/// The count changes the order of floating-point sums inside LibTorch's kernels, so ranks
/// started by different launchers train bit for bit alike only when they get the same count:
/// before, srun's ranks kept LibTorch's default (2 each on a 2-CPU node) beside det-launch's 1.
int apply_intra_op_threads(int runner_share, int local_ranks);

/// On the chief: sends the trial's id, hyperparameters, seed, directory and resume checkpoint to
/// the other ranks (a no-op on one rank). Call right before running the TrialController.
void share_trial_options(distributed::DistributedContext& ranks, const TrialRunOptions& options);

/// On every other rank: receives the chief's options (share_trial_options), then trains with
/// them, writing nothing itself (no run directory, store or metrics). `options` brings the
/// rank-independent settings (test mode, stop flag, distributed context). Returns det-run's exit
/// code: 0 completed, 130 stopped.
int run_non_chief_rank(const config::ExperimentConfig& config, const TrialFactory& factory,
                       TrialRunOptions options);

}  // namespace det::app
