#include "det/optim/adadelta.h"

#include "det/optim/state_key.h"
#include "det/util/error.h"

namespace det::optim {

void AdadeltaOptions::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(lr);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(rho);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(eps);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(weight_decay);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(maximize);
}

void AdadeltaOptions::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, lr);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, rho);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, eps);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(double, weight_decay);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(bool, maximize);
}

void AdadeltaParamState::serialize(torch::serialize::OutputArchive& archive) const {
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(step);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(square_avg);
  _TORCH_OPTIM_SERIALIZE_TORCH_ARG(acc_delta);
}

void AdadeltaParamState::serialize(torch::serialize::InputArchive& archive) {
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(int64_t, step);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, square_avg);
  _TORCH_OPTIM_DESERIALIZE_TORCH_ARG(torch::Tensor, acc_delta);
}

Adadelta::Adadelta(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                   AdadeltaOptions defaults)
    : Optimizer(std::move(param_groups), std::make_unique<AdadeltaOptions>(defaults)) {
  if (!(defaults.lr() >= 0))
    throw Error("Adadelta: invalid learning rate " + std::to_string(defaults.lr()));
  if (!(defaults.rho() >= 0 && defaults.rho() <= 1))
    throw Error("Adadelta: rho must be in [0, 1], got " + std::to_string(defaults.rho()));
  if (!(defaults.eps() >= 0))
    throw Error("Adadelta: invalid eps " + std::to_string(defaults.eps()));
  if (!(defaults.weight_decay() >= 0))
    throw Error("Adadelta: invalid weight_decay " + std::to_string(defaults.weight_decay()));
}

torch::Tensor Adadelta::step(LossClosure closure) {
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups_) {
    auto& o = static_cast<AdadeltaOptions&>(group.options());
    const double rho = o.rho(), eps = o.eps(), lr = o.lr(), wd = o.weight_decay();
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto grad = o.maximize() ? -p.grad() : p.grad();
      if (grad.is_sparse()) throw Error("Adadelta does not support sparse gradients");
      const auto key = state_key(p);
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto s = std::make_unique<AdadeltaParamState>();
        s->square_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        s->acc_delta(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(s)).first;
      }
      auto& st = static_cast<AdadeltaParamState&>(*it->second);
      st.step(st.step() + 1);
      if (wd != 0) grad = grad.add(p, wd);
      auto& square_avg = st.square_avg();
      auto& acc_delta = st.acc_delta();
      square_avg.mul_(rho).addcmul_(grad, grad, 1 - rho);
      auto std_ = square_avg.add(eps).sqrt_();
      auto delta = acc_delta.add(eps).sqrt_().div_(std_).mul_(grad);
      acc_delta.mul_(rho).addcmul_(delta, delta, 1 - rho);
      p.add_(delta, -lr);
    }
  }
  return loss;
}

void Adadelta::save(torch::serialize::OutputArchive& archive) const { serialize(*this, archive); }

void Adadelta::load(torch::serialize::InputArchive& archive) { serialize(*this, archive); }

}  // namespace det::optim
