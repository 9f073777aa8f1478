#pragma once
/// \file
/// Where the training loop is, and the rules that follow from it: a view of the trial's
/// TrialState, which the controller advances and the context reads through it, so "is this an
/// update batch" or "does the scheduler step now" has a single definition (spec: Determined's
/// is_epoch_start/end, aggregation and _auto_step_lr_scheduler_per_batch).

#include <cstdint>

#include "det/record/checkpoint.h"

namespace det {

/// When the harness steps a wrapped LR scheduler (Determined's LRScheduler.StepMode).
enum class StepMode {
  kStepEveryEpoch = 1,  ///< After the last batch of every `frequency`-th epoch.
  kStepEveryBatch = 2,  ///< After every `frequency`-th batch.
  kManualStep = 3,      ///< Never; the trial calls `step()` itself.
  kStepEveryOptimizerStep =
      4,  ///< When (batch_idx+1) is a multiple of both the aggregation frequency and `frequency`.
};

/// The loop's position read as Determined's rules: the global batch index (the trial's
/// TrialState::batches_trained, which it reads and never copies: it continues across resumes),
/// the epoch length and the aggregation frequency.
class StepClock {
 public:
  /// A clock reading `position` (which must outlive it), epoch length 0 until set_epoch_len.
  /// `aggregation_frequency`: batches per optimizer step (below 1 counts as 1).
  StepClock(const record::TrialState& position, int aggregation_frequency);

  /// Sets the batches per epoch (>= 1) once the training data is known.
  void set_epoch_len(int64_t epoch_len) { epoch_len_ = epoch_len; }
  /// The batch being trained, or about to be: the batches trained so far.
  int64_t batch() const { return position_->batches_trained; }
  /// Batches per epoch (0 before the data is known).
  int64_t epoch_len() const { return epoch_len_; }
  /// Batches per optimizer step.
  int aggregation_frequency() const { return aggregation_frequency_; }
  /// batch / epoch_len.
  int64_t epoch() const { return epoch_len_ > 0 ? batch() / epoch_len_ : 0; }
  /// batch % epoch_len.
  int64_t batch_in_epoch() const { return epoch_len_ > 0 ? batch() % epoch_len_ : batch(); }
  /// The first batch of an epoch.
  bool is_epoch_start() const { return epoch_len_ > 0 && batch_in_epoch() == 0; }
  /// The last batch of an epoch.
  bool is_epoch_end() const { return epoch_len_ > 0 && batch_in_epoch() == epoch_len_ - 1; }
  /// The batch on which the optimizer steps: (batch + 1) % aggregation_frequency == 0.
  bool is_update_batch() const { return (batch() + 1) % aggregation_frequency_ == 0; }
  /// How many times a scheduler wrapped with `mode` and `frequency` steps after the current
  /// batch (0 on batches that are not update batches; StepEveryBatch catches up on the batches
  /// of the aggregation window).
  int scheduler_steps(StepMode mode, int frequency) const;

 private:
  const record::TrialState* position_;
  int64_t epoch_len_ = 0;
  int aggregation_frequency_ = 1;
};

}  // namespace det
