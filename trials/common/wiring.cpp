#include "wiring.h"

#include <memory>

#include "det/optim/lr_scheduler.h"

namespace det::trials {

int num_workers(const config::Args& data, int fallback) {
  return data.get<int>("num_workers", fallback, kNumWorkersRange);
}

void check_loader_settings(const config::Args& data) {
  num_workers(data, 0);
  data.get<bool>("shuffle", false);
}

data::DataLoaderOptions loader_options(const TrialContext& context, int64_t batch_size,
                                       int default_workers) {
  return data::DataLoaderOptions()
      .batch_size(batch_size)
      .seed(context.trial_seed())
      .pin_memory(context.device().is_cuda())
      .num_workers(num_workers(context.data(), default_workers));
}

config::Args transforms_section(const TrialContext& context, bool train) {
  return context.data().child("transforms")[train ? "train" : "validation"];
}

void wrap_timm_cosine(TrialContext& context, torch::optim::Optimizer& optimizer,
                      const config::Args& section) {
  const auto options = optim::CosineOptions::from_json(section);
  context.wrap_lr_scheduler(std::make_shared<optim::CosineLRScheduler>(optimizer, options),
                            StepMode::kStepEveryEpoch);
}

}  // namespace det::trials
