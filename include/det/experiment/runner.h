#pragma once
/// \file The experiment runner: drives a searcher over many trials, each trial a separate worker
/// process, within a slot budget; the only writer of the experiment store and experiment.json.
///
/// A worker is the same executable started as `<exe> __worker --run-dir DIR --trial N --target L
/// [--resume CKPT]`. It trains trial N to the total length L (the searcher's unit), validates,
/// and reports over a pipe (fd 3, JSON lines: training, validation, checkpoint, target_reached,
/// exit); the runner answers each target_reached on fd 4 with the next target or exit. A trial
/// with nothing to do is paused (checkpoint, process exits) and started again from that
/// checkpoint when the searcher gives it more; a worker that dies is restarted from its latest
/// checkpoint up to max_restarts times. The runner's whole state (searcher and trials) is saved
/// in the store after every decision, which is what `--resume-experiment` continues from.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"
#include "det/experiment/run_dir.h"
#include "det/experiment/store.h"

namespace det::experiment {

/// How to run an experiment.
struct RunnerOptions {
  std::filesystem::path executable;      ///< The program whose `__worker` subcommand runs a trial.
  std::vector<std::string> worker_args;  ///< Extra arguments for every worker (e.g. --log-level debug).
  int slots = 1;                         ///< Slot budget; each trial takes resources.slots_per_trial.
  bool show_progress = true;             ///< Let a lone worker draw its progress line.
  /// Set by SIGINT/SIGTERM: the runner stops the workers (they checkpoint) and returns 130.
  const std::atomic<bool>* stop_flag = nullptr;
};

/// Starts a new experiment in `run_dir` (config.yaml written, experiment.json not yet) and runs it
/// to the end. Returns the process exit code: 0 done, 1 when every trial failed, 130 stopped
/// (continue with resume_experiment). `seed` is the experiment seed.
int run_experiment(const config::ExperimentConfig& config, const std::filesystem::path& run_dir, uint32_t seed,
                   const RunnerOptions& options);

/// Continues an experiment that was stopped (or whose runner died) from the state saved in its
/// store. Throws det::Error when `run_dir` holds no resumable experiment.
int resume_experiment(const std::filesystem::path& run_dir, const RunnerOptions& options);

/// Throws det::UsageError when `slots` cannot hold one trial (resources.slots_per_trial).
void check_slots(const config::ExperimentConfig& config, int slots);

/// Records one event of a trial (as a worker sends it) in experiment.json and the store:
///   {"event": "training" | "validation", "batches": B, "report": {...metrics report...}}
///   {"event": "checkpoint", "checkpoint": {uuid, batches, path, metric}, "kept": [{...}, ...]}
/// Other events are ignored. `trial` is the trial's number in the experiment, `store_trial` its
/// store id.
void record_trial_event(ExperimentSummary& summary, ExperimentStore& store, int64_t trial, int64_t store_trial,
                        const nlohmann::json& event);

/// Opens the store recorded in the summary (or `<run_dir>/../det.db`), creating the experiment
/// row if the summary has none yet; returns the experiment's store id.
int64_t attach_store(ExperimentSummary& summary, ExperimentStore& store, const config::ExperimentConfig& config);

}  // namespace det::experiment
