#pragma once
/// \file Learning-rate schedulers whose state can be checkpointed. The learning rate is a
/// closed-form function of the step count, so restoring `last_epoch` restores the schedule.

#include <cstdint>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/optim/optimizer.h>

namespace det::optim {

/// Base scheduler: `step()` advances `last_epoch` and sets every param group's learning rate to
/// `lr_at(group, last_epoch)`. As in PyTorch, construction applies step 0.
class LRScheduler {
 public:
  explicit LRScheduler(torch::optim::Optimizer& optimizer);
  virtual ~LRScheduler() = default;

  /// Advances one step and updates the learning rates.
  void step();
  /// Jumps to step `epoch` (timm's `step(epoch)`) and updates the learning rates.
  void step_to(int64_t epoch);
  /// Steps taken so far.
  int64_t last_epoch() const { return last_epoch_; }
  /// The learning rate of every param group, as last set.
  std::vector<double> get_last_lr() const;
  /// The optimizer this scheduler drives.
  torch::optim::Optimizer& optimizer() { return optimizer_; }

  /// State for a checkpoint: step count and base learning rates.
  virtual nlohmann::json state_dict() const;
  /// Restores `state_dict()` output and re-applies the learning rates.
  virtual void load_state_dict(const nlohmann::json& state);

 protected:
  /// The learning rate of group `group` (base rate `base_lr`) at step `epoch`.
  virtual double lr_at(size_t group, double base_lr, int64_t epoch) const = 0;
  /// Must be called at the end of a derived constructor: applies step 0.
  void initialize();

 private:
  void apply();
  torch::optim::Optimizer& optimizer_;
  std::vector<double> base_lrs_;
  int64_t last_epoch_ = 0;
};

/// lr = base_lr * gamma^(epoch // step_size).
class StepLR : public LRScheduler {
 public:
  StepLR(torch::optim::Optimizer& optimizer, int64_t step_size, double gamma = 0.1);

 protected:
  double lr_at(size_t group, double base_lr, int64_t epoch) const override;

 private:
  int64_t step_size_;
  double gamma_;
};

/// lr = base_lr * factor(epoch), for any user function.
class LambdaLR : public LRScheduler {
 public:
  LambdaLR(torch::optim::Optimizer& optimizer, std::function<double(int64_t)> factor);

 protected:
  double lr_at(size_t group, double base_lr, int64_t epoch) const override;

 private:
  std::function<double(int64_t)> factor_;
};

}  // namespace det::optim
