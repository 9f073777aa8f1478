#include "det/core/step_clock.h"

#include <gtest/gtest.h>

namespace det {
namespace {

// Total scheduler steps over `batches` batches, as the controller applies them after each batch.
int64_t steps_over(StepMode mode, int frequency, int agg, int64_t batches, int64_t epoch_len = 8) {
  record::TrialState position;
  StepClock clock(position, agg);
  clock.set_epoch_len(epoch_len);
  int64_t total = 0;
  for (; position.batches_trained < batches; ++position.batches_trained)
    total += clock.scheduler_steps(mode, frequency);
  return total;
}

TEST(StepClock, EpochsAndUpdateBatches) {
  record::TrialState position;
  StepClock c(position, 3);
  c.set_epoch_len(4);
  EXPECT_TRUE(c.is_epoch_start());
  EXPECT_FALSE(c.is_epoch_end());
  EXPECT_FALSE(c.is_update_batch());
  position.batches_trained = 2;
  EXPECT_TRUE(c.is_update_batch());  // (2+1) % 3 == 0
  position.batches_trained = 7;
  EXPECT_TRUE(c.is_epoch_end());
  EXPECT_EQ(c.epoch(), 1);
  EXPECT_EQ(c.batch_in_epoch(), 3);
  record::TrialState start;
  StepClock unknown(start, 1);  // before the data is known
  EXPECT_FALSE(unknown.is_epoch_start());
  EXPECT_EQ(unknown.epoch(), 0);
  EXPECT_TRUE(unknown.is_update_batch());
}

// Spec 2.3, the same table the controller's end-to-end test (LRSchedulerAutoStep) checks.
TEST(StepClock, SchedulerStepsFollowDetermined) {
  EXPECT_EQ(steps_over(StepMode::kStepEveryBatch, 1, 1, 24), 24);
  EXPECT_EQ(steps_over(StepMode::kStepEveryBatch, 3, 1, 24), 8);
  EXPECT_EQ(steps_over(StepMode::kStepEveryBatch, 1, 2, 24), 24);  // catches up at update batches
  EXPECT_EQ(steps_over(StepMode::kStepEveryBatch, 3, 2, 24), 8);
  EXPECT_EQ(steps_over(StepMode::kStepEveryOptimizerStep, 1, 2, 24), 12);
  EXPECT_EQ(steps_over(StepMode::kStepEveryOptimizerStep, 3, 2, 24),
            4);  // batch_idx+1 divisible by 2 and 3
  EXPECT_EQ(steps_over(StepMode::kStepEveryEpoch, 1, 1, 24), 3);
  EXPECT_EQ(steps_over(StepMode::kStepEveryEpoch, 2, 1, 24), 1);
  EXPECT_EQ(steps_over(StepMode::kStepEveryEpoch, 1, 3, 24),
            3);  // epoch ends inside an aggregation window
  EXPECT_EQ(steps_over(StepMode::kManualStep, 1, 1, 24), 0);
  record::TrialState position;
  position.batches_trained = 4;
  StepClock c(position, 2);
  c.set_epoch_len(8);  // batch 4 is not an update batch: nothing steps, whatever the mode
  for (auto m :
       {StepMode::kStepEveryBatch, StepMode::kStepEveryOptimizerStep, StepMode::kStepEveryEpoch})
    EXPECT_EQ(c.scheduler_steps(m, 1), 0);
}

}  // namespace
}  // namespace det
