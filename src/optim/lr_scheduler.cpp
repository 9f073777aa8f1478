#include "det/optim/lr_scheduler.h"

#include <algorithm>
#include <cmath>

#include "det/util/error.h"
#include "det/util/strings.h"

namespace det::optim {

LRScheduler::LRScheduler(torch::optim::Optimizer& optimizer) : optimizer_(optimizer) {
  for (auto& g : optimizer_.param_groups()) base_lrs_.push_back(g.options().get_lr());
}

void LRScheduler::initialize() { apply(); }

void LRScheduler::step() {
  ++last_epoch_;
  apply();
}

void LRScheduler::apply() {
  auto& groups = optimizer_.param_groups();
  for (size_t i = 0; i < groups.size() && i < base_lrs_.size(); ++i)
    groups[i].options().set_lr(lr_at(i, base_lrs_[i], last_epoch_));
}

std::vector<double> LRScheduler::get_last_lr() const {
  std::vector<double> out;
  for (const auto& g : optimizer_.param_groups()) out.push_back(g.options().get_lr());
  return out;
}

nlohmann::json LRScheduler::state_dict() const {
  return {{"last_epoch", last_epoch_}, {"base_lrs", base_lrs_}};
}

void LRScheduler::load_state_dict(const nlohmann::json& state) {
  try {
    last_epoch_ = state.at("last_epoch").get<int64_t>();
    auto base = state.at("base_lrs").get<std::vector<double>>();
    if (base.size() != base_lrs_.size())
      throw CheckpointError("LR scheduler state has " + std::to_string(base.size()) +
                            " param groups, the optimizer has " + std::to_string(base_lrs_.size()));
    base_lrs_ = base;
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(std::string("LR scheduler state is malformed: ") + e.what());
  }
  apply();
}

StepLR::StepLR(torch::optim::Optimizer& optimizer, int64_t step_size, double gamma)
    : LRScheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  if (step_size_ < 1) throw Error("StepLR: step_size must be >= 1");
  initialize();
}

double StepLR::lr_at(size_t, double base_lr, int64_t epoch) const {
  return base_lr * std::pow(gamma_, static_cast<double>(epoch / step_size_));
}

LambdaLR::LambdaLR(torch::optim::Optimizer& optimizer, std::function<double(int64_t)> factor)
    : LRScheduler(optimizer), factor_(std::move(factor)) {
  initialize();
}

double LambdaLR::lr_at(size_t, double base_lr, int64_t epoch) const {
  return base_lr * factor_(epoch);
}

CosineOptions CosineOptions::from_json(const config::Args& s) {
  if (!s.is_object()) s.fail_expected("a mapping of timm create_scheduler arguments");
  s.check_keys({"sched", "epochs", "min_lr", "warmup_lr", "warmup_epochs", "cooldown_epochs",
                "decay_rate", "lr_noise", "lr_noise_pct", "lr_noise_std"});
  const std::string sched = s.get<std::string>("sched", "cosine");
  if (sched != "cosine")
    s["sched"].fail(util::quote(sched) + " is not supported; det builds timm's 'cosine' only");
  if (s.has("lr_noise")) s["lr_noise"].fail("learning-rate noise is not supported; set it to null");
  const config::Range epochs{1, 1e6}, rate = config::Range::at_least(0);
  CosineOptions o;
  o.t_initial(s.get<int64_t>("epochs", epochs));
  o.lr_min(s.get<double>("min_lr", 1e-6, rate));  // timm train.py defaults
  o.warmup_lr_init(s.get<double>("warmup_lr", 1e-4, rate));
  o.warmup_t(s.get<int64_t>("warmup_epochs", 3, config::Range{0, 1e6}));
  o.cooldown_epochs(s.get<int64_t>("cooldown_epochs", 10, config::Range{0, 1e6}));
  return o;
}

CosineLRScheduler::CosineLRScheduler(torch::optim::Optimizer& optimizer, CosineOptions options)
    : LRScheduler(optimizer), options_(options) {
  if (options_.t_initial() < 1) throw Error("CosineLRScheduler: t_initial must be >= 1");
  initialize();
}

double CosineLRScheduler::lr_at(size_t, double base_lr, int64_t epoch) const {
  const auto& o = options_;
  if (epoch < o.warmup_t())
    return o.warmup_lr_init() + static_cast<double>(epoch) * ((base_lr - o.warmup_lr_init()) /
                                                              static_cast<double>(o.warmup_t()));
  if (epoch >= o.t_initial()) return o.lr_min();  // past the single cycle (cycle_limit 1)
  const double pi = 3.14159265358979323846;
  return o.lr_min() +
         0.5 * (base_lr - o.lr_min()) *
             (1 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(o.t_initial())));
}

}  // namespace det::optim
