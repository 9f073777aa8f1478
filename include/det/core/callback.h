#pragma once
/// \file
/// Callbacks (Determined's PyTorchCallback): code a trial hooks into the harness's loop
/// without re-implementing it. A trial returns named callbacks from Trial::build_callbacks();
/// each callback's state_dict() is saved in every checkpoint under its name and given back to
/// load_state_dict() on resume.
///
/// Order of calls over a run (every rank, unless noted):
///   on_trial_startup(first_batch, checkpoint_uuid)
///   on_checkpoint_load_start(metadata) and load_state_dict(state)      (resuming only)
///   on_training_start()
///   per batch: on_training_epoch_start(e) at an epoch's first batch, on_training_epoch_end(e)
///              after its last batch
///   per training report: on_training_workload_end(metrics)
///   per validation: on_validation_start(), on_validation_end(metrics)
///   per checkpoint: on_checkpoint_save_start(metadata) (state_dict() is taken after it),
///                   on_checkpoint_write_end(dir) (the chief, which writes)
///   on_trial_shutdown()                                       (also when the trial fails)
///
/// Metrics reach callbacks as the trial returns them, det::Metrics, reduced: each a float64
/// scalar tensor on the CPU (read it with `.item<double>()`); a metric that does not reduce to a
/// number (a non-scalar or undefined value) is an undefined tensor.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/core/context.h"

namespace det {

namespace record {
struct CheckpointMetadata;
}

/// Base class of callbacks; every hook does nothing by default.
class Callback {
 public:
  virtual ~Callback() = default;
  /// Before anything is loaded or trained. `first_batch`: the batch training starts from (0, or
  /// the checkpoint's); `checkpoint_uuid`: the checkpoint resumed from, if any.
  virtual void on_trial_startup(int64_t /*first_batch*/,
                                const std::optional<std::string>& /*checkpoint_uuid*/) {}
  /// After the last batch, validation and checkpoint, or when the trial fails.
  virtual void on_trial_shutdown() {}
  /// Before the first training batch of this run (after a resume's state is loaded).
  virtual void on_training_start() {}
  /// Before the first batch of epoch `epoch`.
  virtual void on_training_epoch_start(int64_t /*epoch*/) {}
  /// After the last batch of epoch `epoch`.
  virtual void on_training_epoch_end(int64_t /*epoch*/) {}
  /// After each training report (metrics averaged over the batches since the last one).
  virtual void on_training_workload_end(const Metrics& /*metrics*/) {}
  /// Before a validation (models already in eval mode).
  virtual void on_validation_start() {}
  /// After a validation, with its reduced metrics.
  virtual void on_validation_end(const Metrics& /*metrics*/) {}
  /// Before a checkpoint's state is restored; `metadata` is its metadata.json.
  virtual void on_checkpoint_load_start(const record::CheckpointMetadata& /*metadata*/) {}
  /// Before a checkpoint is written; `metadata` may still be changed (e.g. hparams notes).
  virtual void on_checkpoint_save_start(record::CheckpointMetadata& /*metadata*/) {}
  /// After a checkpoint is complete in `dir` (the chief only).
  virtual void on_checkpoint_write_end(const std::filesystem::path& /*dir*/) {}
  /// The state to checkpoint (null: none).
  virtual nlohmann::json state_dict() const { return nullptr; }
  /// Restores what state_dict() returned.
  virtual void load_state_dict(const nlohmann::json& /*state*/) {}
};

/// Named callbacks, called in this order; the name keys the callback's checkpointed state.
using Callbacks = std::vector<std::pair<std::string, std::shared_ptr<Callback>>>;

}  // namespace det
