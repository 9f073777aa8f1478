#include "det/core/amp.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>

#include "det/util/error.h"

// LibTorch 2.4 made autocast's switches per device type; 1.13 has one pair per device.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define DET_AUTOCAST_PER_DEVICE 1
#endif

namespace det {

void check_precision_supported(Precision p, const torch::Device& device) {
  if (p == Precision::kFloat16 && !device.is_cuda())
    throw ConfigError(
        "optimizations.mixed_precision: fp16 autocast needs a CUDA device, and this trial runs "
        "on the " +
        device.str() + "; use bf16 on the CPU, or O0");
}

namespace {

torch::ScalarType dtype_of(Precision p) {
  return p == Precision::kBFloat16 ? torch::kBFloat16 : torch::kHalf;
}

#ifdef DET_AUTOCAST_PER_DEVICE
bool enabled_for(torch::DeviceType t) { return at::autocast::is_autocast_enabled(t); }
void set_enabled_for(torch::DeviceType t, bool on) { at::autocast::set_autocast_enabled(t, on); }
torch::ScalarType dtype_for(torch::DeviceType t) { return at::autocast::get_autocast_dtype(t); }
void set_dtype_for(torch::DeviceType t, torch::ScalarType d) {
  at::autocast::set_autocast_dtype(t, d);
}
#else
bool enabled_for(torch::DeviceType t) {
  return t == torch::kCUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
void set_enabled_for(torch::DeviceType t, bool on) {
  if (t == torch::kCUDA)
    at::autocast::set_enabled(on);
  else
    at::autocast::set_cpu_enabled(on);
}
torch::ScalarType dtype_for(torch::DeviceType t) {
  return t == torch::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                           : at::autocast::get_autocast_cpu_dtype();
}
void set_dtype_for(torch::DeviceType t, torch::ScalarType d) {
  if (t == torch::kCUDA)
    at::autocast::set_autocast_gpu_dtype(d);
  else
    at::autocast::set_autocast_cpu_dtype(d);
}
#endif

}  // namespace

Autocast::Autocast(const torch::Device& device, Precision precision)
    : type_(device.is_cuda() ? torch::kCUDA : torch::kCPU),
      prev_enabled_(enabled_for(type_)),
      prev_dtype_(dtype_for(type_)) {
  const bool on = precision != Precision::kFloat32;
  set_enabled_for(type_, on);
  if (on) set_dtype_for(type_, dtype_of(precision));
  at::autocast::increment_nesting();
}

Autocast::~Autocast() {
  // Leaving the outermost scope frees the casts autocast cached (torch.autocast's __exit__).
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  set_enabled_for(type_, prev_enabled_);
  set_dtype_for(type_, prev_dtype_);
}

bool Autocast::is_enabled(const torch::Device& device) {
  return enabled_for(device.is_cuda() ? torch::kCUDA : torch::kCPU);
}

// ---- GradScaler ----

GradScaler::GradScaler(GradScalerOptions options) : options_(options) {
  auto positive = [](double v) { return std::isfinite(v) && v > 0; };
  if (!positive(options_.init_scale))
    throw ConfigError("GradScaler: init_scale must be a finite positive number");
  if (!positive(options_.growth_factor) || options_.growth_factor <= 1.0)
    throw ConfigError("GradScaler: growth_factor must be greater than 1");
  if (!positive(options_.backoff_factor) || options_.backoff_factor >= 1.0)
    throw ConfigError("GradScaler: backoff_factor must be between 0 and 1");
  if (options_.growth_interval < 1)
    throw ConfigError("GradScaler: growth_interval must be at least 1");
  scale_ = static_cast<float>(options_.init_scale);
}

double GradScaler::get_scale() const { return options_.enabled ? scale_ : 1.0; }

torch::Tensor GradScaler::scale(const torch::Tensor& loss) const {
  if (!options_.enabled) return loss;
  // A float32 scale, as PyTorch's (`outputs * self._scale`, a float32 tensor).
  return loss * torch::scalar_tensor(scale_, loss.options().dtype(torch::kFloat));
}

GradScaler::PerOptimizer& GradScaler::entry(torch::optim::Optimizer& optimizer) {
  for (auto& p : pending_)
    if (p.optimizer == &optimizer) return p;
  pending_.push_back({&optimizer, torch::Tensor(), false});
  return pending_.back();
}

void GradScaler::unscale_(torch::optim::Optimizer& optimizer) {
  if (!options_.enabled) return;
  auto& e = entry(optimizer);
  if (e.found_inf.defined())
    throw Error(
        "GradScaler::unscale_ was already called on this optimizer since the last update()");
  if (e.stepped) throw Error("GradScaler::unscale_ is being called after step()");
  // PyTorch: inv_scale = scale.double().reciprocal().float().
  const float inv = static_cast<float>(1.0 / static_cast<double>(scale_));
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (auto& group : optimizer.param_groups())
    for (auto& p : group.params())
      if (p.grad().defined()) {
        if (p.grad().scalar_type() == torch::kHalf)
          throw Error(
              "GradScaler: a gradient is fp16; keep the parameters in FP32 (autocast casts the "
              "ops, not the weights)");
        grads.push_back(p.mutable_grad());
      }
  const torch::Device device = grads.empty() ? torch::Device(torch::kCPU) : grads[0].device();
  torch::Tensor found =
      torch::zeros({}, torch::TensorOptions().dtype(torch::kFloat).device(device));
  if (!grads.empty() && device.is_cuda()) {
    // One fused kernel per device, as PyTorch's GradScaler (checks each value, then scales).
    std::vector<torch::Tensor> same;
    for (auto& g : grads)
      if (g.device() == device) same.push_back(g);
    at::_amp_foreach_non_finite_check_and_unscale_(same, found,
                                                   torch::scalar_tensor(inv, found.options()));
    for (auto& g : grads)
      if (g.device() != device) {
        found.add_(g.isfinite().logical_not().any().to(found.options()));
        g.mul_(inv);
      }
  } else {
    for (auto& g : grads) {
      found.add_(g.isfinite().logical_not().any().to(found.options()));  // before scaling
      g.mul_(inv);
    }
  }
  e.found_inf = found;
}

bool GradScaler::step(torch::optim::Optimizer& optimizer) {
  if (!options_.enabled) {
    optimizer.step();
    return true;
  }
  auto& e = entry(optimizer);
  if (e.stepped)
    throw Error("GradScaler::step was already called on this optimizer since update()");
  if (!e.found_inf.defined()) unscale_(optimizer);
  auto& e2 = entry(optimizer);  // unscale_ may have grown pending_
  e2.stepped = true;
  if (e2.found_inf.item<float>() != 0.0f) {
    ++skipped_steps_;
    return false;
  }
  optimizer.step();
  return true;
}

void GradScaler::update() {
  if (!options_.enabled) return;
  if (pending_.empty())
    throw Error("GradScaler::update: no unscale_ or step was recorded since the last update");
  bool found_inf = false;
  for (auto& p : pending_)
    if (p.found_inf.defined() && p.found_inf.item<float>() != 0.0f) found_inf = true;
  pending_.clear();
  // PyTorch's _amp_update_scale_, in float32.
  if (found_inf) {
    scale_ = scale_ * static_cast<float>(options_.backoff_factor);
    growth_tracker_ = 0;
  } else {
    const int64_t successful = growth_tracker_ + 1;
    if (successful == options_.growth_interval) {
      const float grown = scale_ * static_cast<float>(options_.growth_factor);
      if (std::isfinite(grown)) scale_ = grown;
      growth_tracker_ = 0;
    } else {
      growth_tracker_ = successful;
    }
  }
}

nlohmann::json GradScaler::state_dict() const {
  if (!options_.enabled) return nlohmann::json::object();
  return {{"scale", static_cast<double>(scale_)},
          {"growth_factor", options_.growth_factor},
          {"backoff_factor", options_.backoff_factor},
          {"growth_interval", options_.growth_interval},
          {"_growth_tracker", growth_tracker_}};
}

void GradScaler::load_state_dict(const nlohmann::json& s) {
  if (!options_.enabled) return;
  if (!s.is_object() || s.empty())
    throw CheckpointError(
        "grad_scaler: the checkpoint holds no scaler state (it was written without loss "
        "scaling)");
  auto number = [&](const char* key, bool integer) -> double {
    if (!s.contains(key) || !(integer ? s[key].is_number_integer() : s[key].is_number()))
      throw CheckpointError(std::string("grad_scaler.") + key + ": expected " +
                            (integer ? "an integer" : "a number"));
    return s[key].get<double>();
  };
  const double scale = number("scale", false);
  const double tracker = number("_growth_tracker", true);
  const double interval = number("growth_interval", true);
  if (!std::isfinite(scale) || scale <= 0 || scale > 3.4e38)
    throw CheckpointError("grad_scaler.scale: expected a finite positive float32");
  if (interval < 1 || tracker < 0 || tracker >= interval)
    throw CheckpointError("grad_scaler._growth_tracker: expected 0 <= tracker < growth_interval");
  options_.growth_factor = number("growth_factor", false);
  options_.backoff_factor = number("backoff_factor", false);
  options_.growth_interval = static_cast<int64_t>(interval);
  scale_ = static_cast<float>(scale);
  growth_tracker_ = static_cast<int64_t>(tracker);
  pending_.clear();
}

}  // namespace det
