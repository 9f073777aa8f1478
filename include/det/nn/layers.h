#pragma once
/// \file
/// Layers shared by the vision-transformer families (ShiftViT, ViT, T2T-ViT/DVT): timm's
/// DropPath and trunc_normal_ init, exact GELU, the MLP, multi-head self-attention, the norms
/// with each family's eps and fixed sinusoidal position tables. One implementation each.

#include <cstdint>
#include <vector>

#include <torch/nn/cloneable.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>
#include <torch/types.h>

namespace det::nn {

/// LayerNorm eps of ViT as Google, jeonsworld and Graphcore build it (spec/models.md §6).
constexpr double kViTLayerNormEps = 1e-6;
/// LayerNorm eps of the HF `google/vit-*-in21k` configs.
constexpr double kHFLayerNormEps = 1e-12;
/// LayerNorm eps of T2T-ViT/DVT (PyTorch's default).
constexpr double kT2TLayerNormEps = 1e-5;
/// GroupNorm(1, C) eps of ShiftViT (PyTorch's default).
constexpr double kShiftViTGroupNormEps = 1e-5;

/// GELU with the exact erf form (PyTorch's `nn.GELU()` default), never the tanh approximation.
torch::Tensor gelu(const torch::Tensor& x);

/// timm's trunc_normal_: fills `t` in place with N(mean, std^2) truncated to the absolute
/// interval [a, b] (inverse-CDF sampling: uniform, erfinv, scale, clamp). Returns `t`.
torch::Tensor trunc_normal_(torch::Tensor t, double mean = 0.0, double std = 1.0, double a = -2.0,
                            double b = 2.0);

/// The timm/SPACH init applied to every submodule of `module`: Linear, Conv1d and Conv2d weights
/// trunc_normal_(std), their biases 0; LayerNorm and GroupNorm weight 1, bias 0.
void init_trunc_normal(torch::nn::Module& module, double std = 0.02);

/// LayerNorm over the last dimension `dim` with the given eps (elementwise affine).
torch::nn::LayerNorm layer_norm(int64_t dim, double eps);
/// GroupNorm(1, channels): statistics over C x H x W, "to approximate LayerNorm" (ShiftViT's GN1).
torch::nn::GroupNorm group_norm1(int64_t channels, double eps = kShiftViTGroupNormEps);

/// The fixed sinusoid table of T2T-ViT: [1, n_position, dim], angle pos / 10000^(2 floor(j/2) /
/// dim), sin on even j, cos on odd j (computed in double, returned as float32).
torch::Tensor sinusoid_table(int64_t n_position, int64_t dim);

/// Stochastic depth (timm DropPath): in training, each sample of the batch is kept with
/// probability 1 - p and scaled by 1/(1 - p), else zeroed; identity in eval or when p == 0.
class DropPathImpl : public torch::nn::Cloneable<DropPathImpl> {
 public:
  /// `p`: the probability of dropping a sample's residual branch, in [0, 1).
  explicit DropPathImpl(double p = 0.0) : p_(p) {}
  /// Nothing to build: DropPath has no parameters.
  void reset() override {}
  /// In training, each sample of `x` (dim 0) zeroed with probability p, the rest scaled by
  /// 1/(1 - p); `x` itself in eval or when p is 0.
  torch::Tensor forward(const torch::Tensor& x);
  /// The drop probability.
  double p() const { return p_; }

 private:
  double p_;
};
/// DropPath: the module holder (a shared pointer) of DropPathImpl, made by TORCH_MODULE.
TORCH_MODULE(DropPath);

/// `drop_path_rate` spread linearly over `depth` blocks (torch.linspace(0, rate, depth)), in
/// float32 as PyTorch computes it.
std::vector<double> drop_path_rates(double drop_path_rate, int64_t depth);

/// Options of the MLP: fc1 (in -> hidden), GELU, dropout, fc2 (hidden -> out), dropout.
struct MlpOptions {
  /// fc1 maps `in_features` to `hidden_features`; the rest keep their defaults.
  MlpOptions(int64_t in_features, int64_t hidden_features)
      : in_features_(in_features), hidden_features_(hidden_features) {}
  /// Input width (channels with `conv`).
  TORCH_ARG(int64_t, in_features);
  /// fc1's output width (timm: in_features * mlp_ratio).
  TORCH_ARG(int64_t, hidden_features);
  /// 0 means in_features.
  TORCH_ARG(int64_t, out_features) = 0;
  /// Dropout probability after fc2 (and after the GELU with drop_after_act).
  TORCH_ARG(double, drop) = 0.0;
  /// Dropout after the GELU (timm, Google, jeonsworld); HF ViTIntermediate has none.
  TORCH_ARG(bool, drop_after_act) = true;
  /// 1x1 Conv2d layers on NCHW input (ShiftViT) instead of Linear layers on the last dim.
  TORCH_ARG(bool, conv) = false;
};

/// The transformer MLP (timm `Mlp`), on tokens [.., C] or, with `conv`, on NCHW feature maps.
/// Submodules `fc1`, `fc2` as in timm's and SPACH's state dicts.
class MlpImpl : public torch::nn::Cloneable<MlpImpl> {
 public:
  /// Builds fc1 and fc2 (Linear, or 1x1 Conv2d with `conv`) with LibTorch's default init.
  explicit MlpImpl(const MlpOptions& options);
  /// Builds fc1, fc2 and the dropout from `options` (the constructor and clone() call it).
  void reset() override;
  /// fc2(dropout(GELU(fc1(x)))), then dropout: [.., in] -> [.., out] (NCHW with `conv`).
  torch::Tensor forward(const torch::Tensor& x);
  MlpOptions options;  ///< As given to the constructor; reset() rebuilds from it.

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};      // token form
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr};  // conv form (also named fc1, fc2)
  torch::nn::Dropout drop_{nullptr};
};
/// Mlp: the module holder (a shared pointer) of MlpImpl.
TORCH_MODULE(Mlp);

/// Options of multi-head self-attention.
struct AttentionOptions {
  /// `dim` wide tokens split over `num_heads` heads (dim must be divisible by num_heads).
  AttentionOptions(int64_t dim, int64_t num_heads) : dim_(dim), num_heads_(num_heads) {}
  /// Token width, in and out.
  TORCH_ARG(int64_t, dim);
  /// Heads; head_dim = dim / num_heads.
  TORCH_ARG(int64_t, num_heads);
  /// Whether qkv has a bias (proj always has one).
  TORCH_ARG(bool, qkv_bias) = false;
  /// Dropout on the attention probabilities.
  TORCH_ARG(double, attn_drop) = 0.0;
  /// Dropout after the output projection.
  TORCH_ARG(double, proj_drop) = 0.0;
};

/// timm's `Attention`: one `qkv` Linear(dim, 3 dim) (rows q, k, v), scale head_dim^-0.5,
/// softmax, `proj` Linear(dim, dim) with bias. Input and output [B, N, dim].
class AttentionImpl : public torch::nn::Cloneable<AttentionImpl> {
 public:
  /// Throws det::Error when dim is not divisible by num_heads.
  explicit AttentionImpl(const AttentionOptions& options);
  /// Builds qkv, proj and the dropouts from `options` (the constructor and clone() call it).
  void reset() override;
  /// Self-attention over the tokens of `x`: [B, N, dim] -> [B, N, dim].
  torch::Tensor forward(const torch::Tensor& x);
  /// Forward that adds `logit_bias` ([B, H, N, N], may be undefined) to the scaled logits before
  /// the softmax and stores those pre-softmax logits in `*logits` when not null (DVT's
  /// relationship reuse).
  torch::Tensor forward_with_logits(const torch::Tensor& x, const torch::Tensor& logit_bias,
                                    torch::Tensor* logits);
  AttentionOptions options;  ///< As given to the constructor; reset() rebuilds from it.
  /// @{
  /// The input projection to q, k, v (dim -> 3 dim, rows in that order) and the output
  /// projection (dim -> dim, with bias); state-dict names "qkv" and "proj".
  torch::nn::Linear qkv{nullptr}, proj{nullptr};
  /// @}

 private:
  torch::nn::Dropout attn_drop_{nullptr}, proj_drop_{nullptr};
};
/// Attention: the module holder (a shared pointer) of AttentionImpl.
TORCH_MODULE(Attention);

/// The number of elements of all parameters of `module` (requires_grad or not).
int64_t count_parameters(const torch::nn::Module& module);

}  // namespace det::nn
