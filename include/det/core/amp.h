#pragma once
/// \file
/// Mixed precision: the autocast scope and the dynamic loss scaler (PyTorch's
/// torch.autocast and torch.amp.GradScaler, for LibTorch).
///
/// With `optimizations.mixed_precision` set, the harness owns both: train_batch and
/// evaluate_batch run under autocast for the trial's device, and for fp16 `context.backward`
/// scales the loss, `context.step_optimizer` unscales before `clip_grads` and skips a step whose
/// gradients are not finite, and the scale is updated once per update batch. A trial that wants
/// to do this itself wraps its own GradScaler (`context.wrap_scaler`) and opens its own
/// Autocast scopes.

#include <cstdint>
#include <string>
#include <vector>

#include <torch/optim/optimizer.h>
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"

namespace det {

/// The autocast precision: the config's (det/config/experiment_config.h).
using config::Precision;
/// An `optimizations.mixed_precision` value's precision (det/config/experiment_config.h).
using config::parse_precision;

/// Throws ConfigError when `p` cannot run on `device` (fp16 autocast needs CUDA).
void check_precision_supported(Precision p, const torch::Device& device);

/// Autocast for one device type while in scope (RAII; nests; restores what was set before).
/// Ops on the autocast lists of LibTorch run in `precision`, others in FP32, as torch.autocast.
class Autocast {
 public:
  /// Enables autocast to `precision` for `device`'s type; kFloat32 disables it in the scope
  /// (what torch.autocast(enabled=False) does, e.g. around a backward pass).
  Autocast(const torch::Device& device, Precision precision);
  ~Autocast();
  Autocast(const Autocast&) = delete;
  Autocast& operator=(const Autocast&) = delete;

  /// Whether autocast is enabled for `device`'s type on this thread.
  static bool is_enabled(const torch::Device& device);

 private:
  torch::DeviceType type_;
  bool prev_enabled_;
  torch::ScalarType prev_dtype_;
};

/// The settings of a GradScaler (torch.amp.GradScaler's constructor arguments and defaults).
struct GradScalerOptions {
  double init_scale = 65536.0;     ///< The first scale (2^16).
  double growth_factor = 2.0;      ///< Scale *= this after growth_interval finite steps.
  double backoff_factor = 0.5;     ///< Scale *= this after a step with inf/NaN gradients.
  int64_t growth_interval = 2000;  ///< Finite steps in a row before the scale grows.
  bool enabled = true;             ///< false: every call passes through (scale 1, plain steps).
};

/// Dynamic loss scaling as torch.amp.GradScaler: scale(loss) before backward, unscale_(opt)
/// before clipping, step(opt) which skips the step when a gradient is inf/NaN, and update()
/// once per iteration. The scale and its growth tracker are float32 and follow PyTorch's
/// `_amp_update_scale_` exactly; state_dict() carries them across checkpoints.
class GradScaler {
 public:
  /// A scaler with `options` (validated: scale and factors finite and positive, growth > 1,
  /// backoff < 1, interval >= 1).
  explicit GradScaler(GradScalerOptions options = {});

  /// `loss * scale` (the loss unchanged when disabled).
  torch::Tensor scale(const torch::Tensor& loss) const;
  /// Divides `optimizer`'s gradients by the scale in place and records whether any is inf/NaN.
  /// At most once per optimizer between update() calls (an error otherwise, as PyTorch).
  void unscale_(torch::optim::Optimizer& optimizer);
  /// Unscales if not yet done, then steps `optimizer` unless one of its gradients was inf/NaN.
  /// Returns whether it stepped. One host sync (PyTorch's `.item()` on found_inf) per call.
  bool step(torch::optim::Optimizer& optimizer);
  /// Backs the scale off if any step since the last update saw inf/NaN, else counts a finite
  /// step and grows the scale every growth_interval of them. Needs a step or unscale_ first.
  void update();

  /// Whether unscale_ or step ran since the last update() (update() needs one).
  bool has_pending() const { return !pending_.empty(); }
  /// The current scale (1 when disabled).
  double get_scale() const;
  /// Finite steps since the scale last changed.
  int64_t growth_tracker() const { return growth_tracker_; }
  /// Steps skipped since the scaler was made (not checkpointed; for reports).
  int64_t skipped_steps() const { return skipped_steps_; }
  /// Whether the scaler scales at all.
  bool is_enabled() const { return options_.enabled; }
  /// The options it was made with.
  const GradScalerOptions& options() const { return options_; }

  /// torch.amp.GradScaler.state_dict()'s keys: scale, growth_factor, backoff_factor,
  /// growth_interval, _growth_tracker.
  nlohmann::json state_dict() const;
  /// Restores state_dict(); throws CheckpointError naming the field when one is missing or
  /// out of range.
  void load_state_dict(const nlohmann::json& state);

 private:
  struct PerOptimizer {
    const torch::optim::Optimizer* optimizer;
    torch::Tensor found_inf;  // 0-dim float on the gradients' device
    bool stepped = false;
  };
  PerOptimizer& entry(torch::optim::Optimizer& optimizer);

  GradScalerOptions options_;
  float scale_;
  int64_t growth_tracker_ = 0;
  int64_t skipped_steps_ = 0;
  std::vector<PerOptimizer> pending_;  // optimizers unscaled or stepped since the last update
};

}  // namespace det
