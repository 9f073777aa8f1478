#pragma once
/// \file
/// The experiment recorder: the one writer of what an experiment leaves behind, for every
/// run mode (the runner's trials, `det-run --test` and `--resume`):
///
///   <run_dir>/experiment.json          record::ExperimentSummary, rewritten atomically
///   <run_dir>/trial-<id>/metrics.jsonl  record::MetricsReport per line
///   <storage root>/det.db              the experiment store (SQLite)
///   <run_dir>/trial-<id>/events.out.tfevents.*  TensorBoard runs (experiment/tensorboard_log.h)
///
/// It keeps the three in agreement: a report goes to all three, a restart rolls all three back
/// to the checkpoint the trial restarts from, and a checkpoint is recorded before the trial
/// deletes the ones it no longer keeps.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"
#include "det/experiment/store.h"
#include "det/experiment/tensorboard_log.h"
#include "det/record/experiment_summary.h"
#include "det/record/worker_protocol.h"

namespace det::experiment {

/// Records one experiment.
class Recorder {
 public:
  /// A new experiment in `run_dir` (its config.yaml already written), recorded in the store at
  /// <run_dir>/../det.db.
  static std::unique_ptr<Recorder> create(const std::filesystem::path& run_dir,
                                          const config::ExperimentConfig& config,
                                          uint32_t experiment_seed);
  /// The experiment recorded in `run_dir` (its experiment.json and store). Throws det::Error when
  /// there is none.
  static std::unique_ptr<Recorder> open(const std::filesystem::path& run_dir);

  /// The run directory.
  const std::filesystem::path& run_dir() const { return run_dir_; }
  /// `<run_dir>/trial-<id>`.
  std::filesystem::path trial_dir(int64_t trial) const;
  /// The experiment store.
  ExperimentStore& store() { return *store_; }
  /// The experiment's TensorBoard runs.
  TensorBoardLog& tensorboard() { return *tensorboard_; }
  /// This experiment's id in the store.
  int64_t experiment_id() const { return experiment_id_; }
  /// experiment.json as recorded.
  const record::ExperimentSummary& summary() const { return summary_; }

  /// Records a new trial (store row, summary entry); returns its store id.
  int64_t add_trial(int64_t trial, const std::string& request_id, const nlohmann::json& hparams,
                    uint32_t seed);
  /// Whether trial `trial` is recorded.
  bool has_trial(int64_t trial) const { return summary_.find_trial(trial) != nullptr; }
  /// The store id of trial `trial`.
  int64_t store_trial_id(int64_t trial);

  /// A trial's state (RUNNING is ACTIVE in the store); a final one ends its TensorBoard session.
  void set_trial_state(int64_t trial, record::TrialStatus state);
  /// The experiment's state (any but active sets the end time).
  void set_experiment_state(record::RunState state);
  /// A training report or validation, in the summary, the store and metrics.jsonl.
  void record_report(int64_t trial, const record::MetricsReport& report);
  /// A checkpoint written, and the ones the trial keeps (the others are marked deleted).
  void record_checkpoint(int64_t trial, const record::CheckpointEvent& event);
  /// The trial restarts from its checkpoint at `batches`: forgets what it reported after that
  /// batch (store, metrics.jsonl, summary), since it will train and report it again.
  void rollback(int64_t trial, int64_t batches);
  /// Makes the store and the disk agree on a trial's checkpoints after a crash, and returns the
  /// newest complete one to continue from. A checkpoint recorded but not yet committed (the
  /// process died between the two) is verified and committed; staging directories never
  /// recorded and checkpoints recorded as deleted are removed; recorded checkpoints that are
  /// missing or corrupt are marked deleted. Every checkpoint's files are verified.
  std::optional<record::CheckpointRef> reconcile_checkpoints(int64_t trial);
  /// A failed attempt of the trial (counted in the store), with why.
  void add_restart(int64_t trial, const std::string& message);

  /// Summary-only fields of a trial (target, launches, message, early_exit); call save() after.
  record::TrialSummary& trial(int64_t trial) { return summary_.trial(trial); }
  /// Experiment-level summary fields (best_trial, searcher_progress); call save() after.
  record::ExperimentSummary& summary_mut() { return summary_; }
  /// Writes experiment.json.
  void save() const;

  /// The runner's state (searcher and trials), saved in the store after every decision.
  void save_runner_snapshot(const nlohmann::json& snapshot);
  /// The last saved runner state, if any.
  std::optional<nlohmann::json> runner_snapshot();

 private:
  Recorder(std::filesystem::path run_dir, record::ExperimentSummary summary,
           std::unique_ptr<ExperimentStore> store, int64_t experiment_id);
  void rewrite_metrics_file(int64_t trial, int64_t batches);

  std::filesystem::path run_dir_;
  record::ExperimentSummary summary_;
  std::unique_ptr<ExperimentStore> store_;
  int64_t experiment_id_;
  std::unique_ptr<TensorBoardLog> tensorboard_;
};

}  // namespace det::experiment
