#include "det/core/context.h"

#include <optional>

#include "det/distributed/gradient_sync.h"
#include "det/util/strings.h"
#include "harness.h"

namespace det {

namespace {
std::shared_ptr<detail::TrialHarness> standalone(
    config::ExperimentConfig config, nlohmann::json hparams, int64_t trial_id, uint32_t trial_seed,
    torch::Device device, std::shared_ptr<distributed::DistributedContext> distributed) {
  auto h = std::make_shared<detail::TrialHarness>(std::move(config));
  h->hparams = std::move(hparams);
  h->state.trial_id = trial_id;
  h->trial_seed = trial_seed;
  h->device = device;
  h->distributed = distributed ? std::move(distributed) : distributed::make_local_context();
  return h;
}
}  // namespace

TrialContext::TrialContext(config::ExperimentConfig config, nlohmann::json hparams,
                           int64_t trial_id, uint32_t trial_seed, torch::Device device,
                           std::shared_ptr<distributed::DistributedContext> distributed)
    : h_(standalone(std::move(config), std::move(hparams), trial_id, trial_seed, device,
                    std::move(distributed))) {}

TrialContext::TrialContext(std::shared_ptr<detail::TrialHarness> harness) : h_(std::move(harness)) {
  if (!h_->distributed) h_->distributed = distributed::make_local_context();
}

TrialContext::~TrialContext() = default;

const config::ExperimentConfig& TrialContext::experiment_config() const { return h_->config; }
const nlohmann::json& TrialContext::hparams() const { return h_->hparams; }
int64_t TrialContext::trial_id() const { return h_->state.trial_id; }
uint32_t TrialContext::trial_seed() const { return h_->trial_seed; }
int64_t TrialContext::initial_batch() const { return h_->initial_batch; }
bool TrialContext::is_test_mode() const { return h_->test_mode; }
const torch::Device& TrialContext::device() const { return h_->device; }
distributed::DistributedContext& TrialContext::distributed() const { return *h_->distributed; }
int TrialContext::rank() const { return h_->distributed->rank(); }
int TrialContext::size() const { return h_->distributed->size(); }
const StepClock& TrialContext::clock() const { return h_->clock; }
void TrialContext::request_stop() { h_->stop_requested = true; }
bool TrialContext::stop_requested() const { return h_->stop_requested; }
const std::vector<std::shared_ptr<torch::nn::Module>>& TrialContext::models() const {
  return h_->models;
}
const std::vector<std::shared_ptr<torch::optim::Optimizer>>& TrialContext::optimizers() const {
  return h_->optimizers;
}

const nlohmann::json* TrialContext::find_hparam(const std::string& name) const {
  const auto& hp = h_->hparams;
  if (hp.is_object() && hp.contains(name)) return &hp[name];
  const nlohmann::json* cur = &hp;
  for (const auto& part : util::split(name, '.')) {
    if (!cur->is_object() || !cur->contains(part)) {
      cur = nullptr;
      break;
    }
    cur = &(*cur)[part];
  }
  if (cur) return cur;
  std::vector<std::string> keys;
  if (hp.is_object())
    for (auto it = hp.begin(); it != hp.end(); ++it) keys.push_back(it.key());
  if (!h_->hparams_source.empty())  // resumed: the values are the checkpoint's, not the config's
    throw CheckpointError("hyperparameter '" + name + "' is not in the checkpoint's " +
                          h_->hparams_source + util::did_you_mean(name, keys) +
                          " (hyperparameters: " + (keys.empty() ? "none" : util::join(keys, ", ")) +
                          "); the trial resumes with the values it was written with: a "
                          "checkpoint of another trial, or an edited one?");
  const auto& source = h_->config.source;
  throw ConfigError("hyperparameter '" + name + "' is not defined in " +
                    (source.empty() ? "the config" : source) + util::did_you_mean(name, keys) +
                    " (hyperparameters: " + (keys.empty() ? "none" : util::join(keys, ", ")) +
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

int64_t TrialContext::global_batch_size() const {
  auto gbs = hparam("global_batch_size").as<int64_t>();
  int slots = size();
  if (gbs < slots)
    throw ConfigError("hyperparameter 'global_batch_size' in " + h_->config.source + " is " +
                      std::to_string(gbs) + ", smaller than the " + std::to_string(slots) +
                      " slots of the trial");
  return (gbs / slots) * slots;
}

int64_t TrialContext::per_slot_batch_size() const { return global_batch_size() / size(); }

data::Batch TrialContext::to_device(const data::Batch& batch) const {
  return batch.to(h_->device, /*non_blocking=*/h_->device.is_cuda());
}

void TrialContext::register_model(std::shared_ptr<torch::nn::Module> model) {
  if (!model) throw Error("wrap_model: the model is null");
  model->to(h_->device);
  h_->models.push_back(std::move(model));
}

void TrialContext::register_optimizer(std::shared_ptr<torch::optim::Optimizer> optimizer) {
  if (!optimizer) throw Error("wrap_optimizer: the optimizer is null");
  h_->optimizers.push_back(std::move(optimizer));
}

void TrialContext::register_scheduler(std::shared_ptr<optim::LRScheduler> scheduler, StepMode mode,
                                      int frequency) {
  if (!scheduler) throw Error("wrap_lr_scheduler: the scheduler is null");
  if (frequency < 1) throw Error("wrap_lr_scheduler: frequency must be >= 1");
  bool known = false;
  for (const auto& o : h_->optimizers) known = known || o.get() == &scheduler->optimizer();
  if (!known)
    throw Error(
        "wrap_lr_scheduler: the scheduler's optimizer was not passed to wrap_optimizer first");
  h_->schedulers.push_back({std::move(scheduler), mode, frequency});
}

void TrialContext::register_reducer(std::shared_ptr<MetricReducer> reducer, const std::string& name,
                                    bool for_training, bool for_validation) {
  h_->reducers.push_back({std::move(reducer), name, for_training, for_validation});
}

std::shared_ptr<SimpleReducer> TrialContext::wrap_reducer(
    std::function<double(const std::vector<double>&)> fn, const std::string& name,
    bool for_training, bool for_validation) {
  auto r = std::make_shared<SimpleReducer>(std::move(fn));
  register_reducer(r, name, for_training, for_validation);
  return r;
}

std::shared_ptr<GradScaler> TrialContext::wrap_scaler(std::shared_ptr<GradScaler> scaler) {
  if (!scaler) throw Error("wrap_scaler: the scaler is null");
  if (h_->harness_scaler)
    throw ConfigError(
        "wrap_scaler: optimizations.mixed_precision is " +
        config::precision_name(h_->config.optimizations.mixed_precision) +
        ", so the harness already scales the loss; set it to O0 to own the scaler, or drop "
        "wrap_scaler");
  if (h_->scaler) throw Error("wrap_scaler: may be called only once");
  h_->scaler = scaler;
  return scaler;
}

GradScaler* TrialContext::scaler() const { return h_->scaler.get(); }
Precision TrialContext::precision() const { return h_->precision; }

void TrialContext::backward(const torch::Tensor& loss, bool retain_graph, bool create_graph) {
  // Backward passes under autocast are not recommended (PyTorch's AMP notes): the graph already
  // holds each op's dtype.
  std::optional<Autocast> off;
  if (Autocast::is_enabled(h_->device)) off.emplace(h_->device, Precision::kFloat32);
  if (h_->harness_scaler)
    h_->scaler->scale(loss).backward({}, retain_graph, create_graph);
  else
    loss.backward({}, retain_graph, create_graph);
}

void TrialContext::step_optimizer(
    torch::optim::Optimizer& optimizer,
    const std::function<void(const std::vector<torch::Tensor>&)>& clip_grads,
    bool auto_zero_grads) {
  const int agg = h_->clock.aggregation_frequency();
  if (agg > 1 && !auto_zero_grads)
    throw Error(
        "step_optimizer: auto_zero_grads=false is not allowed with "
        "optimizations.aggregation_frequency > 1");
  if (!is_update_batch()) return;              // gradients keep accumulating (no allreduce either)
  if (h_->grad_sync) h_->grad_sync->finish();  // averaged across ranks before anything reads them
  std::vector<torch::Tensor> params;
  for (auto& g : optimizer.param_groups())
    for (auto& p : g.params()) params.push_back(p);
  if (h_->config.optimizations.average_aggregated_gradients && agg > 1) {
    torch::NoGradGuard no_grad;
    for (auto& p : params)
      if (p.grad().defined()) p.mutable_grad().div_(agg);
  }
  if (h_->scaler) {
    if (clip_grads) {
      h_->scaler->unscale_(optimizer);  // clip the true gradients
      clip_grads(params);
    }
    h_->scaler->step(optimizer);  // skipped when a gradient is inf/NaN
  } else {
    if (clip_grads) clip_grads(params);
    optimizer.step();
  }
  if (auto_zero_grads) optimizer.zero_grad();
}

config::Args TrialContext::hparam(const std::string& name) const {
  const nlohmann::json& value = *find_hparam(name);  // throws naming the file when missing
  if (h_->hparams_source.empty())
    return config::Args(value, "hyperparameters." + name, h_->config.sources);
  // Resumed: the values are the checkpoint's, so errors name its metadata file, not the config.
  auto sources = std::make_shared<config::SourceMap>();
  sources->add("hyperparameters", h_->hparams_source);
  return config::Args(value, "hyperparameters." + name, std::move(sources));
}

config::Args TrialContext::data() const {
  return config::Args(h_->config.data, "data", h_->config.sources);
}

}  // namespace det
