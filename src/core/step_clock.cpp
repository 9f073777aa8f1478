#include "det/core/step_clock.h"

#include <algorithm>

namespace det {

StepClock::StepClock(const record::TrialState& position, int aggregation_frequency)
    : position_(&position), aggregation_frequency_(std::max(1, aggregation_frequency)) {}

int StepClock::scheduler_steps(StepMode mode, int frequency) const {
  if (!is_update_batch() || frequency < 1) return 0;
  const int64_t g = batch(), agg = aggregation_frequency_;
  int steps = 0;
  switch (mode) {
    case StepMode::kStepEveryBatch:
      for (int64_t i = g - agg + 1; i <= g; ++i) steps += (i + 1) % frequency == 0;
      break;
    case StepMode::kStepEveryOptimizerStep:
      steps = (g + 1) % frequency == 0;
      break;
    case StepMode::kStepEveryEpoch:
      if (epoch_len_ > 0)
        for (int64_t e = g / epoch_len_, e1 = (g + agg) / epoch_len_; e < e1; ++e)
          steps += (e + 1) % frequency == 0;
      break;
    case StepMode::kManualStep:
      break;
  }
  return steps;
}

}  // namespace det
