#pragma once
/// \file
/// Where the training loop is, and the rules that follow from it: one value the controller
/// owns and advances and the context reads, so "is this an update batch" or "does the scheduler
/// step now" has a single definition (spec: Determined's is_epoch_start/end, aggregation and
/// _auto_step_lr_scheduler_per_batch).

#include <cstdint>

namespace det {

/// When the harness steps a wrapped LR scheduler (Determined's LRScheduler.StepMode).
enum class StepMode {
  kStepEveryEpoch = 1,  ///< After the last batch of every `frequency`-th epoch.
  kStepEveryBatch = 2,  ///< After every `frequency`-th batch.
  kManualStep = 3,      ///< Never; the trial calls `step()` itself.
  kStepEveryOptimizerStep =
      4,  ///< When (batch_idx+1) is a multiple of both the aggregation frequency and `frequency`.
};

/// The loop's position: the global batch index (it continues across resumes), the epoch length
/// and the aggregation frequency.
class StepClock {
 public:
  /// A clock before any data is known: epoch length 0, aggregation 1, batch 0.
  StepClock() = default;
  /// `epoch_len`: batches per epoch (>= 1); `aggregation_frequency`: batches per optimizer step.
  StepClock(int64_t epoch_len, int aggregation_frequency);

  /// Moves to batch `batch_idx` (the one about to be trained).
  void set_batch(int64_t batch_idx) { batch_ = batch_idx; }
  /// The current batch index.
  int64_t batch() const { return batch_; }
  /// Batches per epoch (0 before the data is known).
  int64_t epoch_len() const { return epoch_len_; }
  /// Batches per optimizer step.
  int aggregation_frequency() const { return aggregation_frequency_; }
  /// batch / epoch_len.
  int64_t epoch() const { return epoch_len_ > 0 ? batch_ / epoch_len_ : 0; }
  /// batch % epoch_len.
  int64_t batch_in_epoch() const { return epoch_len_ > 0 ? batch_ % epoch_len_ : batch_; }
  /// The first batch of an epoch.
  bool is_epoch_start() const { return epoch_len_ > 0 && batch_in_epoch() == 0; }
  /// The last batch of an epoch.
  bool is_epoch_end() const { return epoch_len_ > 0 && batch_in_epoch() == epoch_len_ - 1; }
  /// The batch on which the optimizer steps: (batch + 1) % aggregation_frequency == 0.
  bool is_update_batch() const { return (batch_ + 1) % aggregation_frequency_ == 0; }
  /// How many times a scheduler wrapped with `mode` and `frequency` steps after the current
  /// batch (0 on batches that are not update batches; StepEveryBatch catches up on the batches
  /// of the aggregation window).
  int scheduler_steps(StepMode mode, int frequency) const;

 private:
  int64_t batch_ = 0;
  int64_t epoch_len_ = 0;
  int aggregation_frequency_ = 1;
};

}  // namespace det
