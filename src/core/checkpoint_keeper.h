#pragma once
// Internal to the core layer: the controller's checkpoint keeper. It saves the trial's state
// (models, optimizers, schedulers, loss scaler, callbacks, the training position), restores it
// on resume, and keeps the checkpoints that checkpoint_storage's retention rule keeps.

#include <filesystem>
#include <vector>

#include "det/record/checkpoint.h"
#include "trial_run.h"

namespace det::detail {

/// Saves, restores and retains one trial's checkpoints under <trial dir>/checkpoints.
class CheckpointKeeper {
 public:
  /// Keeps the checkpoints of `run`, which must outlive it.
  explicit CheckpointKeeper(TrialRun& run) : run_(run) {}

  /// Restores the state of the checkpoint `run.resume_meta` names (after on_trial_startup, as
  /// Determined does) and lists the trial's checkpoints already on disk for retention.
  void restore();
  /// Loads the state of the checkpoint `run.warm_meta` names (searcher.source_*: a warm start)
  /// but none of its counters, metrics or checkpoints: the trial starts at batch 0.
  void warm_start();
  /// Checkpoints the current batch unless it already is. Every rank calls it at the same point;
  /// the chief writes, records it with the listener, then deletes what retention drops.
  void save_if_new();
  /// The checkpoints on disk, oldest first.
  const std::vector<record::CheckpointRef>& checkpoints() const { return checkpoints_; }

 private:
  void save();
  record::CheckpointMetadata metadata();
  void retain(const std::vector<record::CheckpointRef>& kept);
  // Models, optimizers, LR schedulers, callbacks and the loss scaler of checkpoint `dir`.
  void load_state(const std::filesystem::path& dir, const record::CheckpointMetadata& m);
  void restore_callbacks(const std::filesystem::path& dir, const record::CheckpointMetadata& m);
  void restore_scaler(const std::filesystem::path& dir, const record::CheckpointMetadata& m);
  void scan_existing();
  std::filesystem::path dir() const { return run_.opt.trial_dir / "checkpoints"; }

  TrialRun& run_;
  std::vector<record::CheckpointRef> checkpoints_;
};

}  // namespace det::detail
