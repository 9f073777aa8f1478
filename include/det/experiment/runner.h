#pragma once
/// \file
/// The experiment runner: drives a searcher over many trials, each trial a separate worker
/// process, within a slot budget; its records are written by the experiment::Recorder.
///
/// A worker is the same executable started as `<exe> __worker --run-dir DIR --trial N --target L
/// --launch K [--resume CKPT]`, as a child process (the local scheduler) or as a Slurm job (the
/// Slurm scheduler: all its ranks in one job). It trains trial N to the total length L (the
/// searcher's unit), validates, and speaks the worker protocol (det/record/worker_protocol.h)
/// through the worker channel's files (det/record/worker_channel.h); everything it reports goes
/// through the experiment::Recorder. A trial
/// with nothing to do is paused (checkpoint, process exits) and started again from that
/// checkpoint when the searcher gives it more; a worker that dies is restarted from its latest
/// checkpoint up to max_restarts times. The runner's whole state (searcher and trials) is saved
/// in the store after every decision, which is what `--resume-experiment` continues from.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"
#include "det/experiment/recorder.h"

namespace det::experiment {

/// How to run an experiment.
struct RunnerOptions {
  std::filesystem::path executable;  ///< The program whose `__worker` subcommand runs a trial.
  std::vector<std::string>
      worker_args;  ///< Extra arguments for every worker (e.g. --log-level debug).
  /// Slot budget; each trial takes resources.slots_per_trial. 0: resources.max_slots, else one
  /// trial's slots (local) or max_concurrent_trials trials' (Slurm).
  int slots = 0;
  bool show_progress = true;  ///< Let a lone worker draw its progress line.
  /// "local" (child processes) or "slurm" (one batch job per trial launch); "" = the config's
  /// choice (slurm when it has a `slurm:` section) or, when resuming, the experiment's.
  std::string scheduler;
  /// Set by SIGINT/SIGTERM: the runner stops the workers (they checkpoint) and returns 130.
  const std::atomic<bool>* stop_flag = nullptr;
};

/// Runs a new experiment recorded by `recorder` (its run directory holds config.yaml) to the
/// end. Returns the process exit code: 0 done, 1 when every trial failed, 130 stopped (continue
/// with resume_experiment). `seed` is the experiment seed.
int run_experiment(const config::ExperimentConfig& config, Recorder& recorder, uint32_t seed,
                   const RunnerOptions& options);

/// Continues an experiment that was stopped (or whose runner died) from the state saved in its
/// store, with the scheduler it ran on; Slurm jobs still queued or running are re-attached.
/// Throws det::Error when `run_dir` holds no resumable experiment.
int resume_experiment(const std::filesystem::path& run_dir, const RunnerOptions& options);

/// The checkpoint a new trial warm-starts from: searcher.source_checkpoint_uuid's, or the latest
/// checkpoint of the store's trial searcher.source_trial_id; nothing when the config names
/// neither. Throws det::ConfigError naming the key when `store` has no such checkpoint or trial,
/// when both are set, or when the checkpoint's directory is gone.
std::optional<std::filesystem::path> warm_start_checkpoint(const config::ExperimentConfig& config,
                                                           ExperimentStore& store);

/// Throws det::UsageError when `slots` cannot hold one trial (resources.slots_per_trial).
void check_slots(const config::ExperimentConfig& config, int slots);

/// The scheduler an experiment runs its trials on: `requested` ("local", "slurm" or "" for the
/// config's choice). Throws det::UsageError for another name, or for slurm when sbatch is not
/// on PATH.
std::string choose_scheduler(const config::ExperimentConfig& config, const std::string& requested);

}  // namespace det::experiment
