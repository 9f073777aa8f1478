#pragma once
// Internal to the experiment runner: what a trial's worker is started with (its command line,
// its environment, its job's name), the slot arithmetic, and the runner's crash points for tests.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "det/config/experiment_config.h"
#include "det/experiment/runner.h"
#include "det/record/runner_snapshot.h"
#include "det/record/worker_protocol.h"

namespace det::experiment {

/// One worker launch, as its command line tells it.
struct WorkerLaunch {
  std::filesystem::path executable;     ///< The program whose `__worker` runs the trial.
  std::filesystem::path run_dir;        ///< The experiment's run directory.
  int64_t trial = 0;                    ///< The trial's id.
  int64_t target = 0;                   ///< The length to train to.
  int launch = 0;                       ///< The launch's number K (from 1).
  std::string resume;                   ///< The checkpoint to resume from ("" = the start).
  std::string warm_start;               ///< A first launch's warm-start checkpoint ("" = none).
  bool own_progress = false;            ///< A lone worker draws its own progress line.
  bool quiet_console = false;           ///< The search's line owns the terminal.
  int threads = 0;                      ///< Intra-op threads (0 = the worker's default).
  std::vector<std::string> extra_args;  ///< RunnerOptions::worker_args.
};

/// `<exe> __worker --run-dir DIR --trial N --target L --launch K [--resume CKPT]
/// [--warm-start CKPT] ...`.
std::vector<std::string> worker_argv(const WorkerLaunch& launch);

/// A local worker's whole environment: ours, with DET_SLOT_IDS naming its slots and
/// CUDA_VISIBLE_DEVICES the devices of those slots (ours, in slot order, when we have some).
std::vector<std::string> worker_env(const std::vector<int>& slot_ids);

/// "det-<hash of the run directory>": with the trial and launch, a job name unique per run
/// directory (a restarted runner finds its jobs by name).
std::string job_tag(const std::filesystem::path& run_dir);

/// The slot budget when --slots was not given (0): resources.max_slots, else one trial's worth
/// here, or on Slurm as many trials' as max_concurrent_trials lets run at once.
int default_slots(const config::ExperimentConfig& config, const std::string& scheduler);

/// The answer written for what is owed: the recorded checkpoint, or the decision: train on to
/// `target`, or exit when there is none or the experiment is `stopping`.
record::RunnerAnswer answer_for(const record::OwedAnswer& owed, std::optional<int64_t> target,
                                bool stopping);

/// The exit status a worker gives with its last word (what a Slurm job's worker exited with).
int exit_code_for(record::WorkerExit::Reason reason);

/// Continues the experiment recorded by `recorder` from `snapshot` (its runner's saved state)
/// with `options` as resume_experiment settled them (scheduler and slots). Defined by the runner.
int continue_experiment(const config::ExperimentConfig& config, Recorder& recorder,
                        const record::RunnerSnapshot& snapshot, const RunnerOptions& options);

/// Test hook (docs/testing.md): DET_TEST_RUNNER_CRASH="<point>:<n>" kills the runner with
/// SIGKILL the n-th time it passes <point>, so tests can show that an experiment survives its
/// runner dying at any of them.
void crash_point(const char* point);

}  // namespace det::experiment
