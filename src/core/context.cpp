#include "det/core/context.h"

#include "det/dist/gradient_sync.h"
#include "det/util/strings.h"

namespace det {

TrialContext::TrialContext(config::ExperimentConfig config, nlohmann::json hparams, int64_t trial_id,
                           uint32_t trial_seed, torch::Device device,
                           std::shared_ptr<dist::DistributedContext> distributed)
    : config_(std::move(config)),
      hparams_(std::move(hparams)),
      trial_id_(trial_id),
      trial_seed_(trial_seed),
      device_(device),
      distributed_(distributed ? std::move(distributed) : dist::make_local_context()) {
  aggregation_frequency_ = config_.optimizations.aggregation_frequency;
  average_aggregated_gradients_ = config_.optimizations.average_aggregated_gradients;
}

TrialContext::~TrialContext() = default;

const nlohmann::json* TrialContext::find_hparam(const std::string& name) const {
  if (hparams_.is_object() && hparams_.contains(name)) return &hparams_[name];
  const nlohmann::json* cur = &hparams_;
  for (const auto& part : util::split(name, '.')) {
    if (!cur->is_object() || !cur->contains(part)) {
      cur = nullptr;
      break;
    }
    cur = &(*cur)[part];
  }
  if (cur) return cur;
  std::vector<std::string> keys;
  if (hparams_.is_object())
    for (auto it = hparams_.begin(); it != hparams_.end(); ++it) keys.push_back(it.key());
  throw ConfigError("hyperparameter '" + name + "' is not defined in " + (config_.source.empty() ? "the config" : config_.source) +
                    util::did_you_mean(name, keys) + " (hyperparameters: " + (keys.empty() ? "none" : util::join(keys, ", ")) +
                    "); add it under 'hyperparameters:'");
}

bool TrialContext::has_hparam(const std::string& name) const {
  try {
    find_hparam(name);
    return true;
  } catch (const ConfigError&) {
    return false;
  }
}

void TrialContext::hparam_type_error(const std::string& name, const nlohmann::json& value, const char* expected) const {
  throw ConfigError("hyperparameter '" + name + "' in " + (config_.source.empty() ? "the config" : config_.source) +
                    " is " + value.dump() + ", expected " + expected);
}

int64_t TrialContext::global_batch_size() const {
  auto gbs = get_hparam<int64_t>("global_batch_size");
  int slots = size();
  if (gbs < slots)
    throw ConfigError("hyperparameter 'global_batch_size' in " + config_.source + " is " + std::to_string(gbs) +
                      ", smaller than the " + std::to_string(slots) + " slots of the trial");
  return (gbs / slots) * slots;
}

int64_t TrialContext::per_slot_batch_size() const { return global_batch_size() / size(); }

data::Batch TrialContext::to_device(const data::Batch& batch) const {
  return batch.to(device_, /*non_blocking=*/device_.is_cuda());
}

void TrialContext::register_model(std::shared_ptr<torch::nn::Module> model) {
  if (!model) throw Error("wrap_model: the model is null");
  model->to(device_);
  models_.push_back(std::move(model));
}

void TrialContext::register_optimizer(std::shared_ptr<torch::optim::Optimizer> optimizer) {
  if (!optimizer) throw Error("wrap_optimizer: the optimizer is null");
  optimizers_.push_back(std::move(optimizer));
}

void TrialContext::register_scheduler(std::shared_ptr<optim::LRScheduler> scheduler, StepMode mode, int frequency) {
  if (!scheduler) throw Error("wrap_lr_scheduler: the scheduler is null");
  if (frequency < 1) throw Error("wrap_lr_scheduler: frequency must be >= 1");
  bool known = false;
  for (const auto& o : optimizers_) known = known || o.get() == &scheduler->optimizer();
  if (!known) throw Error("wrap_lr_scheduler: the scheduler's optimizer was not passed to wrap_optimizer first");
  schedulers_.push_back({std::move(scheduler), mode, frequency});
}

void TrialContext::register_reducer(std::shared_ptr<MetricReducer> reducer, const std::string& name, bool for_training,
                                    bool for_validation) {
  reducers_.push_back({std::move(reducer), name, for_training, for_validation});
}

std::shared_ptr<SimpleReducer> TrialContext::wrap_reducer(std::function<double(const std::vector<double>&)> fn,
                                                          const std::string& name, bool for_training,
                                                          bool for_validation) {
  auto r = std::make_shared<SimpleReducer>(std::move(fn));
  register_reducer(r, name, for_training, for_validation);
  return r;
}

void TrialContext::backward(const torch::Tensor& loss, bool retain_graph, bool create_graph) {
  loss.backward({}, retain_graph, create_graph);
}

bool TrialContext::is_update_batch() const { return (batch_idx_ + 1) % aggregation_frequency_ == 0; }

void TrialContext::step_optimizer(torch::optim::Optimizer& optimizer,
                                  const std::function<void(const std::vector<torch::Tensor>&)>& clip_grads,
                                  bool auto_zero_grads) {
  if (aggregation_frequency_ > 1 && !auto_zero_grads)
    throw Error("step_optimizer: auto_zero_grads=false is not allowed with optimizations.aggregation_frequency > 1");
  if (!is_update_batch()) return;  // gradients keep accumulating (no allreduce either)
  if (grad_sync_) grad_sync_->finish();  // averaged across ranks before anything reads them
  std::vector<torch::Tensor> params;
  for (auto& g : optimizer.param_groups())
    for (auto& p : g.params()) params.push_back(p);
  if (average_aggregated_gradients_ && aggregation_frequency_ > 1) {
    torch::NoGradGuard no_grad;
    for (auto& p : params)
      if (p.grad().defined()) p.mutable_grad().div_(aggregation_frequency_);
  }
  if (clip_grads) clip_grads(params);
  optimizer.step();
  if (auto_zero_grads) optimizer.zero_grad();
}

config::Args TrialContext::hparam_args(const std::string& name) const {
  return config::Args(get_hparam<nlohmann::json>(name), "hyperparameters." + name, config_.sources);
}

config::Args TrialContext::data_args() const { return config::Args(config_.data, "data", config_.sources); }

}  // namespace det
