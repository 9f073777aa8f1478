#pragma once
/// \file
/// Adadelta (Zeiler 2012) as torch.optim.Adadelta computes it; LibTorch 1.13 has none.

#include <torch/optim/optimizer.h>
#include <torch/optim/serialize.h>

namespace det::optim {

/// Options of Adadelta, with PyTorch's defaults.
struct AdadeltaOptions : public torch::optim::OptimizerCloneableOptions<AdadeltaOptions> {
  /// Defaults with learning rate `lr` (implicit, as LibTorch's option structs).
  AdadeltaOptions(double lr = 1.0) : lr_(lr) {}
  /// Learning rate (>= 0); the rate LR schedulers set through get_lr/set_lr.
  TORCH_ARG(double, lr) = 1.0;
  /// Decay of the running averages, in [0, 1].
  TORCH_ARG(double, rho) = 0.9;
  /// Added inside both square roots (>= 0).
  TORCH_ARG(double, eps) = 1e-6;
  /// L2 penalty (>= 0): `weight_decay * p` is added to the gradient.
  TORCH_ARG(double, weight_decay) = 0;
  /// Ascend instead of descend (the gradient's sign is flipped).
  TORCH_ARG(bool, maximize) = false;

 public:
  /// Reads every option from a checkpoint archive.
  void serialize(torch::serialize::InputArchive& archive) override;
  /// Writes every option to a checkpoint archive.
  void serialize(torch::serialize::OutputArchive& archive) const override;
  /// The learning rate, for LR schedulers.
  double get_lr() const override { return lr(); }
  /// Sets the learning rate (LR schedulers call this).
  void set_lr(const double lr) override { this->lr(lr); }
};

/// Per-parameter state: step count and the running averages of squared gradients and updates.
struct AdadeltaParamState : public torch::optim::OptimizerCloneableParamState<AdadeltaParamState> {
  /// Updates applied to the parameter so far.
  TORCH_ARG(int64_t, step) = 0;
  /// Running average of squared gradients (like the parameter).
  TORCH_ARG(torch::Tensor, square_avg);
  /// Running average of squared updates (like the parameter).
  TORCH_ARG(torch::Tensor, acc_delta);

 public:
  /// Reads step and both averages from a checkpoint archive.
  void serialize(torch::serialize::InputArchive& archive) override;
  /// Writes step and both averages to a checkpoint archive.
  void serialize(torch::serialize::OutputArchive& archive) const override;
};

/// Adadelta: square_avg = rho*square_avg + (1-rho)*g^2; delta = sqrt(acc_delta+eps) /
/// sqrt(square_avg+eps) * g; acc_delta = rho*acc_delta + (1-rho)*delta^2; p -= lr*delta.
class Adadelta : public torch::optim::Optimizer {
 public:
  /// Groups with their own options over `defaults`; throws det::Error on a negative lr, eps or
  /// weight_decay, or rho outside [0, 1].
  explicit Adadelta(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                    AdadeltaOptions defaults = {});
  /// One group of `params` with `defaults`.
  explicit Adadelta(std::vector<torch::Tensor> params, AdadeltaOptions defaults = {})
      : Adadelta({torch::optim::OptimizerParamGroup(std::move(params))}, defaults) {}

  /// One update of every parameter with a gradient; returns the closure's loss (undefined
  /// without a closure). Throws det::Error on a sparse gradient.
  torch::Tensor step(LossClosure closure = nullptr) override;
  /// Writes options and per-parameter state in LibTorch's optimizer archive layout.
  void save(torch::serialize::OutputArchive& archive) const override;
  /// Reads what save() wrote.
  void load(torch::serialize::InputArchive& archive) override;

 private:
  template <typename Self, typename Archive>
  static void serialize(Self& self, Archive& archive) {
    torch::optim::serialize<AdadeltaParamState, AdadeltaOptions>(archive, self);
  }
};

}  // namespace det::optim
