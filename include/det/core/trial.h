#pragma once
/// \file
/// The Trial: user code only. Build models, optimizers and schedulers in the constructor
/// (through the context's wrap_* calls), give the data loaders, train and evaluate a batch.

#include <memory>

#include "det/core/callback.h"
#include "det/core/context.h"
#include "det/core/reducer.h"
#include "det/data/loader.h"

namespace det {

/// Base class of every trial (Determined's PyTorchTrial). Override exactly one of
/// `evaluate_batch` and `evaluate_full_dataset`: a registered trial that overrides both is
/// refused before it is built (DET_REGISTER_TRIAL).
class Trial {
 public:
  /// Build the model(s) with `context.wrap_model`, optimizer(s) with `context.wrap_optimizer`
  /// and an optional LR scheduler with `context.wrap_lr_scheduler` in the derived constructor.
  explicit Trial(TrialContext& context) : context_(context) {}
  virtual ~Trial() = default;
  Trial(const Trial&) = delete;
  Trial& operator=(const Trial&) = delete;

  /// The training data loader (batch size: context.per_slot_batch_size()).
  virtual std::shared_ptr<data::DataLoader> build_training_data_loader() = 0;
  /// The validation data loader.
  virtual std::shared_ptr<data::DataLoader> build_validation_data_loader() = 0;

  /// Trains on one batch: forward, `context.backward(loss)`, `context.step_optimizer(opt)`;
  /// returns named scalar metrics (e.g. {"loss", loss}). `batch_idx` counts batches since the
  /// start of training, across resumes; `epoch_idx = batch_idx / batches_per_epoch`.
  virtual Metrics train_batch(data::Batch& batch, int64_t epoch_idx, int64_t batch_idx) = 0;

  /// Evaluates one validation batch on every rank (over its shard); the harness reduces the
  /// metrics per `evaluation_reducer()`.
  virtual Metrics evaluate_batch(data::Batch& batch, int64_t batch_idx);
  /// Alternatively, evaluates the whole validation set at once on the chief (the loader is not
  /// sharded; in test mode it yields one batch) and returns final metrics.
  virtual Metrics evaluate_full_dataset(data::DataLoader& loader);
  /// How evaluate_batch metrics are reduced over batches (default: unweighted average).
  virtual ReducerSpec evaluation_reducer() const { return Reducer::kAvg; }
  /// Callbacks the harness calls around the loop (det/core/callback.h), by name; the name keys
  /// each one's state in checkpoints. Called once, after the constructor.
  virtual Callbacks build_callbacks() { return {}; }

 protected:
  TrialContext& context_;  ///< The context given to the constructor; outlives the trial.
};

}  // namespace det
