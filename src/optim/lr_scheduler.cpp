#include "det/optim/lr_scheduler.h"

#include <cmath>

#include "det/util/error.h"

namespace det::optim {

LRScheduler::LRScheduler(torch::optim::Optimizer& optimizer) : optimizer_(optimizer) {
  for (auto& g : optimizer_.param_groups()) base_lrs_.push_back(g.options().get_lr());
}

void LRScheduler::initialize() { apply(); }

void LRScheduler::step() {
  ++last_epoch_;
  apply();
}

void LRScheduler::step_to(int64_t epoch) {
  last_epoch_ = epoch;
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

nlohmann::json LRScheduler::state_dict() const { return {{"last_epoch", last_epoch_}, {"base_lrs", base_lrs_}}; }

void LRScheduler::load_state_dict(const nlohmann::json& state) {
  try {
    last_epoch_ = state.at("last_epoch").get<int64_t>();
    auto base = state.at("base_lrs").get<std::vector<double>>();
    if (base.size() != base_lrs_.size())
      throw CheckpointError("LR scheduler state has " + std::to_string(base.size()) + " param groups, the optimizer has " +
                            std::to_string(base_lrs_.size()));
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

double LambdaLR::lr_at(size_t, double base_lr, int64_t epoch) const { return base_lr * factor_(epoch); }

}  // namespace det::optim
