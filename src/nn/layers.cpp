#include "det/nn/layers.h"

#include <cmath>

#include <torch/torch.h>

#include "det/util/error.h"

namespace det::nn {

torch::Tensor gelu(const torch::Tensor& x) { return torch::gelu(x, "none"); }

torch::Tensor trunc_normal_(torch::Tensor t, double mean, double std, double a, double b) {
  // timm's _no_grad_trunc_normal_: sample uniformly between the CDF values of the bounds, map
  // through the inverse normal CDF (erfinv), then scale, shift and clamp.
  auto norm_cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  torch::NoGradGuard no_grad;
  const double l = norm_cdf((a - mean) / std), u = norm_cdf((b - mean) / std);
  t.uniform_(2 * l - 1, 2 * u - 1);
  t.erfinv_();
  t.mul_(std * std::sqrt(2.0));
  t.add_(mean);
  t.clamp_(a, b);
  return t;
}

void init_trunc_normal(torch::nn::Module& module, double std) {
  torch::NoGradGuard no_grad;
  // include_self=false: this also runs from a constructor, before the module is in a shared_ptr.
  std::vector<torch::nn::Module*> all = {&module};
  for (auto& m : module.modules(/*include_self=*/false)) all.push_back(m.get());
  for (auto* m : all) {
    if (auto* l = m->as<torch::nn::Linear>()) {
      trunc_normal_(l->weight, 0.0, std);
      if (l->bias.defined()) l->bias.zero_();
    } else if (auto* c2 = m->as<torch::nn::Conv2d>()) {
      trunc_normal_(c2->weight, 0.0, std);
      if (c2->bias.defined()) c2->bias.zero_();
    } else if (auto* c1 = m->as<torch::nn::Conv1d>()) {
      trunc_normal_(c1->weight, 0.0, std);
      if (c1->bias.defined()) c1->bias.zero_();
    } else if (auto* ln = m->as<torch::nn::LayerNorm>()) {
      if (ln->weight.defined()) ln->weight.fill_(1.0);
      if (ln->bias.defined()) ln->bias.zero_();
    } else if (auto* gn = m->as<torch::nn::GroupNorm>()) {
      if (gn->weight.defined()) gn->weight.fill_(1.0);
      if (gn->bias.defined()) gn->bias.zero_();
    }
  }
}

torch::nn::LayerNorm layer_norm(int64_t dim, double eps) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(eps));
}

torch::nn::GroupNorm group_norm1(int64_t channels, double eps) {
  return torch::nn::GroupNorm(torch::nn::GroupNormOptions(1, channels).eps(eps));
}

torch::Tensor sinusoid_table(int64_t n_position, int64_t dim) {
  auto table = torch::empty({n_position, dim}, torch::kFloat64);
  auto a = table.accessor<double, 2>();
  for (int64_t pos = 0; pos < n_position; ++pos)
    for (int64_t j = 0; j < dim; ++j) {
      double angle = static_cast<double>(pos) /
                     std::pow(10000.0, 2.0 * static_cast<double>(j / 2) / static_cast<double>(dim));
      a[pos][j] = j % 2 == 0 ? std::sin(angle) : std::cos(angle);
    }
  return table.to(torch::kFloat32).unsqueeze(0);
}

torch::Tensor DropPathImpl::forward(const torch::Tensor& x) {
  if (p_ == 0.0 || !is_training()) return x;
  const double keep = 1.0 - p_;
  std::vector<int64_t> shape(static_cast<size_t>(x.dim()), 1);
  shape[0] = x.size(0);
  // timm: floor(keep + U[0,1)) is 1 with probability keep.
  auto mask = (keep + torch::rand(shape, x.options())).floor_();
  return x.div(keep) * mask;
}

std::vector<double> drop_path_rates(double drop_path_rate, int64_t depth) {
  auto t = torch::linspace(0.0, drop_path_rate, depth, torch::kFloat32);
  std::vector<double> out;
  for (int64_t i = 0; i < depth; ++i) out.push_back(static_cast<double>(t[i].item<float>()));
  return out;
}

MlpImpl::MlpImpl(const MlpOptions& options_) : options(options_) { reset(); }

void MlpImpl::reset() {
  const int64_t in = options.in_features(), hidden = options.hidden_features();
  const int64_t out = options.out_features() > 0 ? options.out_features() : in;
  if (options.conv()) {
    conv1_ = register_module("fc1", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, hidden, 1)));
    conv2_ = register_module("fc2", torch::nn::Conv2d(torch::nn::Conv2dOptions(hidden, out, 1)));
  } else {
    fc1_ = register_module("fc1", torch::nn::Linear(in, hidden));
    fc2_ = register_module("fc2", torch::nn::Linear(hidden, out));
  }
  drop_ = register_module("drop", torch::nn::Dropout(options.drop()));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  torch::Tensor h;
  h = det::nn::gelu(options.conv() ? conv1_->forward(x) : fc1_->forward(x));
  if (options.drop_after_act()) h = drop_->forward(h);
  h = options.conv() ? conv2_->forward(h) : fc2_->forward(h);
  return drop_->forward(h);
}

AttentionImpl::AttentionImpl(const AttentionOptions& options_) : options(options_) { reset(); }

void AttentionImpl::reset() {
  if (options.dim() % options.num_heads() != 0)
    throw Error("Attention: dim " + std::to_string(options.dim()) +
                " is not divisible by num_heads " + std::to_string(options.num_heads()) +
                "; choose a head count that divides the width");
  qkv = register_module(
      "qkv",
      torch::nn::Linear(
          torch::nn::LinearOptions(options.dim(), 3 * options.dim()).bias(options.qkv_bias())));
  proj = register_module("proj", torch::nn::Linear(options.dim(), options.dim()));
  attn_drop_ = register_module("attn_drop", torch::nn::Dropout(options.attn_drop()));
  proj_drop_ = register_module("proj_drop", torch::nn::Dropout(options.proj_drop()));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  return forward_with_logits(x, {}, nullptr);
}

torch::Tensor AttentionImpl::forward_with_logits(const torch::Tensor& x,
                                                 const torch::Tensor& logit_bias,
                                                 torch::Tensor* logits) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2), H = options.num_heads();
  auto qkv_ = qkv->forward(x).reshape({B, N, 3, H, C / H}).permute({2, 0, 3, 1, 4});
  auto q = qkv_[0], k = qkv_[1], v = qkv_[2];
  const double scale = std::pow(static_cast<double>(C / H), -0.5);
  auto attn = torch::matmul(q, k.transpose(-2, -1)) * scale;
  if (logit_bias.defined()) attn = attn + logit_bias;
  if (logits) *logits = attn;
  attn = attn_drop_->forward(attn.softmax(-1));
  auto out = torch::matmul(attn, v).transpose(1, 2).reshape({B, N, C});
  return proj_drop_->forward(proj->forward(out));
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace det::nn
