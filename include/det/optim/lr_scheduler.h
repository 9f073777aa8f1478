#pragma once
/// \file
/// Learning-rate schedulers whose state can be checkpointed. The learning rate is a
/// closed-form function of the step count, so restoring `last_epoch` restores the schedule.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <torch/arg.h>
#include <torch/optim/optimizer.h>
#include <nlohmann/json.hpp>

#include "det/config/args.h"

namespace det::optim {

/// Base scheduler: `step()` advances `last_epoch` and sets every param group's learning rate to
/// `lr_at(group, last_epoch)`. As in PyTorch, construction applies step 0.
class LRScheduler {
 public:
  /// Takes each param group's current learning rate as its base rate; a derived constructor
  /// calls initialize(). The optimizer must outlive the scheduler.
  explicit LRScheduler(torch::optim::Optimizer& optimizer);
  virtual ~LRScheduler() = default;

  /// Advances one step and updates the learning rates.
  void step();
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
  /// Decays by `gamma` every `step_size` steps; throws det::Error when step_size < 1.
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
  /// `factor(epoch)` multiplies each base rate (PyTorch's LambdaLR).
  LambdaLR(torch::optim::Optimizer& optimizer, std::function<double(int64_t)> factor);

 protected:
  double lr_at(size_t group, double base_lr, int64_t epoch) const override;

 private:
  std::function<double(int64_t)> factor_;
};

/// Options of timm's CosineLRScheduler as timm.scheduler.create_scheduler builds it for
/// `sched: cosine` (one cycle, t_in_epochs, no noise, no warmup_prefix). Set as LibTorch's option
/// structs: `CosineOptions().t_initial(300).warmup_t(5)`.
struct CosineOptions {
  /// `epochs`: the length of the cosine cycle.
  TORCH_ARG(int64_t, t_initial) = 0;
  /// `min_lr`.
  TORCH_ARG(double, lr_min) = 0.0;
  /// `warmup_epochs`.
  TORCH_ARG(int64_t, warmup_t) = 0;
  /// `warmup_lr`.
  TORCH_ARG(double, warmup_lr_init) = 0.0;
  /// Added to the cycle for total_epochs(); lr stays at lr_min.
  TORCH_ARG(int64_t, cooldown_epochs) = 0;

 public:
  /// The total length timm reports: t_initial + cooldown_epochs.
  int64_t total_epochs() const { return t_initial_ + cooldown_epochs_; }
  /// From the ShiftViT example's `scheduler` section (sched, epochs, min_lr, warmup_lr,
  /// warmup_epochs, cooldown_epochs, decay_rate, lr_noise (null only), lr_noise_pct,
  /// lr_noise_std), e.g. `context.hparam("scheduler")`. Unknown keys, wrong types, other
  /// schedules and noise are ConfigErrors naming the file position and key.
  static CosineOptions from_json(const config::Args& section);
};

/// timm's CosineLRScheduler (v0.5.4), closed form, stepped per epoch:
///  - t < warmup_t: lr = warmup_lr_init + t * (base_lr - warmup_lr_init) / warmup_t;
///  - warmup_t <= t < t_initial: lr = lr_min + (base_lr - lr_min) * (1 + cos(pi t / t_initial)) / 2
///    (t counts from 0, not from the end of warmup: timm's warmup_prefix=False);
///  - t >= t_initial: lr_min.
class CosineLRScheduler : public LRScheduler {
 public:
  /// Throws det::Error when options.t_initial < 1.
  CosineLRScheduler(torch::optim::Optimizer& optimizer, CosineOptions options);
  /// The options it was built with.
  const CosineOptions& options() const { return options_; }

 protected:
  double lr_at(size_t group, double base_lr, int64_t epoch) const override;

 private:
  CosineOptions options_;
};

}  // namespace det::optim
