#pragma once
/// \file
/// DVT, the Dynamic Vision Transformer (Wang et al., NeurIPS 2021; spec/models.md §4): a
/// cascade of three T2T-ViTs seeing 7x7, 10x10 and 14x14 tokens of the same 224 px image; the
/// later ones reuse the previous one's last features (feature reuse) and attention logits
/// (relationship reuse). Training sums the three exits' losses; inference stops at the first exit
/// whose softmax confidence reaches its threshold. Names follow the reference state dict
/// (less_less_token, less_token, normal_token; tokens_to_token.attention1.kqv, ...,
/// feature_resuse_mlp, relation_reuse_conv).

#include <array>
#include <string>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>

#include "det/nn/layers.h"

namespace det::nn {

/// T2T's Token_performer(dim, in_dim=64, kernel_ratio=0.5): one-head linear attention with
/// m = in_dim * kernel_ratio (32) random orthogonal features `w` (a non-trainable parameter), v as
/// the skip, then an MLP.
class TokenPerformerImpl : public torch::nn::Cloneable<TokenPerformerImpl> {
 public:
  /// Tokens of width `dim` in, `in_dim` out; `dropout` after the projection and in the MLP.
  TokenPerformerImpl(int64_t dim, int64_t in_dim = 64, double kernel_ratio = 0.5,
                     double dropout = 0.1);
  /// Builds the layers and draws a new `w` (the constructor and clone() call it).
  void reset() override;
  /// [B, T, dim] -> [B, T, in_dim].
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor w;  ///< [m, in_dim] random features: orthonormal rows times sqrt(m); not trained.

 private:
  torch::Tensor prm_exp(const torch::Tensor& x) const;
  int64_t dim_, emb_, m_;
  double dropout_;
  torch::nn::Linear kqv_{nullptr}, proj_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  torch::nn::Dropout dp_{nullptr};
  torch::nn::Sequential mlp_{nullptr};
};
/// TokenPerformer: the module holder (a shared pointer) of TokenPerformerImpl.
TORCH_MODULE(TokenPerformer);

/// One T2T-ViT of the cascade.
struct T2TViTOptions {
  /// Input height and width in pixels.
  TORCH_ARG(int64_t, img_size) = 224;
  /// The first soft split's Unfold kernel: with stride and padding, (7, 4, 2) gives 14x14
  /// tokens, (11, 6, 5) 10x10 and (14, 8, 3) 7x7.
  TORCH_ARG(int64_t, kernel) = 7;
  /// The first soft split's Unfold stride (see kernel).
  TORCH_ARG(int64_t, stride) = 4;
  /// The first soft split's Unfold padding (see kernel).
  TORCH_ARG(int64_t, padding) = 2;
  /// Token width D, a multiple of num_heads.
  TORCH_ARG(int64_t, embed_dim) = 256;
  /// Transformer blocks.
  TORCH_ARG(int64_t, depth) = 12;
  /// Attention heads per block.
  TORCH_ARG(int64_t, num_heads) = 4;
  /// The T2T module's token width (T2T_ViT's token_dim; the performers' in_dim, m = token_dim / 2).
  TORCH_ARG(int64_t, token_dim) = 64;
  /// Block MLP hidden width per token channel.
  TORCH_ARG(double, mlp_ratio) = 2.0;
  /// Outputs of the head.
  TORCH_ARG(int64_t, num_classes) = 1000;
  /// Dropout on the position embeddings, the attention output and the MLPs.
  TORCH_ARG(double, drop_rate) = 0.0;
  /// Stochastic depth of the last block (linear from 0).
  TORCH_ARG(double, drop_path_rate) = 0.1;
  /// Whether it reuses the upstream model's features (the 2nd and 3rd models).
  TORCH_ARG(bool, feature_reuse) = false;
  /// Whether it reuses the upstream model's attention logits (the 2nd and 3rd models).
  TORCH_ARG(bool, relation_reuse) = false;
  /// The upstream model's token grid (when reusing).
  TORCH_ARG(int64_t, upstream_grid) = 0;
  /// The upstream model's block count (when reusing).
  TORCH_ARG(int64_t, upstream_depth) = 0;
  /// trunc_normal_(0.02) weights and class token, zero biases, unit norms; false keeps
  /// LibTorch's default init.
  TORCH_ARG(bool, init_weights) = true;

 public:
  /// The token grid after the three soft splits.
  int64_t grid() const;
};

/// What a cascade member hands to the next: its last block output before the final norm
/// [B, N+1, D] and every layer's pre-softmax attention logits [B, H, N+1, N+1].
struct ReuseState {
  /// [B, N+1, D]: the last block's output, before the final norm.
  torch::Tensor features;
  /// One [B, H, N+1, N+1] pre-softmax logit tensor per block.
  std::vector<torch::Tensor> relations;
  /// The same for the examples `index` (int64) only.
  ReuseState select(const torch::Tensor& index) const;
};

/// A pre-norm T2T block; with feature reuse the MLP sees [x, reused features] (D + 48 wide).
class T2TBlockImpl : public torch::nn::Cloneable<T2TBlockImpl> {
 public:
  /// A block of `options`' width and heads; `drop_path` is its stochastic-depth rate.
  T2TBlockImpl(const T2TViTOptions& options, double drop_path);
  /// Builds norm1, attn, norm2, mlp (and feature_resuse_mlp with feature reuse).
  void reset() override;
  /// `features`: the upstream features already transformed and resized to [B, N+1, 48]
  /// (undefined without reuse); `relation`: the logit bias [B, H, N+1, N+1] or undefined;
  /// `logits_out`: receives this layer's pre-softmax logits.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& features,
                        const torch::Tensor& relation, torch::Tensor* logits_out);
  /// feature_resuse_mlp (LN, Mlp D -> 128 -> 48) applied to the upstream features.
  torch::Tensor reuse_features(const torch::Tensor& upstream);

 private:
  T2TViTOptions options_;
  double drop_path_p_;
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  Attention attn_{nullptr};
  DropPath drop_path_{nullptr};
  Mlp mlp_{nullptr};
  torch::nn::Sequential feature_resuse_mlp_{nullptr};
};
/// T2TBlock: the module holder (a shared pointer) of T2TBlockImpl.
TORCH_MODULE(T2TBlock);

/// T2T-ViT with the performer T2T module (token_dim 64 by default), a class token, fixed sinusoid
/// position embeddings (a non-trainable parameter), blocks, final LayerNorm (eps 1e-5), head.
class T2TViTImpl : public torch::nn::Cloneable<T2TViTImpl> {
 public:
  /// Throws det::Error when reuse is asked for without upstream_grid and upstream_depth.
  explicit T2TViTImpl(const T2TViTOptions& options);
  /// Builds the T2T module, embeddings, blocks, norm, head (and the relation-reuse convs).
  void reset() override;
  /// Logits [B, classes]; fills `state` (when not null) for the next model; `upstream` is the
  /// previous model's state (required when this model reuses).
  torch::Tensor forward(const torch::Tensor& x, const ReuseState* upstream = nullptr,
                        ReuseState* state = nullptr);
  /// The options it was built with.
  const T2TViTOptions& options() const { return options_; }
  /// Multiply-accumulates of one forward for one image (matmuls, convolutions and the
  /// performer's feature maps; what the DVT paper calls FLOPs).
  double macs() const;
  /// @{
  /// The learned class token [1, 1, D] and the fixed sinusoid position table [1, grid^2 + 1, D]
  /// (a parameter without gradient); "cls_token" and "pos_embed" of the state dict.
  torch::Tensor cls_token, pos_embed;
  /// @}

 private:
  T2TViTOptions options_;
  TokenPerformer attention1_{nullptr}, attention2_{nullptr};
  torch::nn::Linear project_{nullptr};
  torch::nn::Dropout pos_drop_{nullptr};
  std::vector<T2TBlock> blocks_;
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr};
  torch::nn::Sequential relation_reuse_conv_{nullptr};
};
/// T2TViT: the module holder (a shared pointer) of T2TViTImpl.
TORCH_MODULE(T2TViT);

/// DVT_T2t_vit_12 / _14 options.
struct DVTOptions {
  /// Every member's token width (t2t_vit_12: 256; _14: 384).
  TORCH_ARG(int64_t, embed_dim) = 256;
  /// Every member's block count (t2t_vit_12: 12; _14: 14).
  TORCH_ARG(int64_t, depth) = 12;
  /// Every member's attention heads (t2t_vit_12: 4; _14: 6).
  TORCH_ARG(int64_t, num_heads) = 4;
  /// T2T token width of every member (64 in both variants; smaller only for test fixtures).
  TORCH_ARG(int64_t, token_dim) = 64;
  /// Block MLP hidden width per token channel (2 for _12, 3 for _14).
  TORCH_ARG(double, mlp_ratio) = 2.0;
  /// Outputs of each exit's head.
  TORCH_ARG(int64_t, num_classes) = 1000;
  /// Stochastic depth of each member's last block.
  TORCH_ARG(double, drop_path_rate) = 0.1;
  /// Whether the second and third members reuse the previous member's features.
  TORCH_ARG(bool, feature_reuse) = true;
  /// Whether the second and third members reuse the previous member's attention logits.
  TORCH_ARG(bool, relation_reuse) = true;
  /// Passed to every member (T2TViTOptions::init_weights).
  TORCH_ARG(bool, init_weights) = true;

 public:
  /// "t2t_vit_12" or "t2t_vit_14" (also "dvt_t2t_vit_12", "12", "14").
  static DVTOptions variant(const std::string& name);
};

/// The three-exit cascade.
class DVTImpl : public torch::nn::Cloneable<DVTImpl> {
 public:
  /// Builds the three members: 7x7, 10x10 and 14x14 tokens of a 224 px image.
  explicit DVTImpl(const DVTOptions& options);
  /// Builds the members less_less_token, less_token and normal_token from the options.
  void reset() override;
  /// The logits of all three exits (training runs all of them).
  std::vector<torch::Tensor> forward(const torch::Tensor& x);
  /// Real early exit: runs exit k only on the examples no earlier exit was confident about
  /// (max softmax >= thresholds[k]); returns the predicted class and the exit (0, 1, 2) per
  /// example. The last threshold is ignored (the last exit takes every remaining example).
  std::pair<torch::Tensor, torch::Tensor> early_exit(const torch::Tensor& x,
                                                     const std::array<double, 3>& thresholds);
  /// Cumulative multiply-accumulates per image to reach exit 1, 2, 3.
  std::array<double, 3> cumulative_macs() const;
  /// Member `k` (0: 7x7 tokens, 1: 10x10, 2: 14x14); no bounds check.
  T2TViT member(size_t k) const { return members_[k]; }
  /// The options it was built with.
  const DVTOptions& options() const { return options_; }

 private:
  DVTOptions options_;
  std::vector<T2TViT> members_;
};
/// DVT: the module holder (a shared pointer) of DVTImpl.
TORCH_MODULE(DVT);

/// Target exit proportions of operating point p (1..59 in the reference): q = p / 20,
/// proportion_k ∝ q^k for k = 1..3.
std::array<double, 3> exit_proportions(int p);

/// DVT's dynamic_find_threshold: `confidence` [3, n] (max softmax per exit on held-out data);
/// for each of the first two exits, the confidence of the floor(n * proportion_k)-th most
/// confident example that has not exited yet (1e8 when that count is 0), then those with
/// confidence >= T_k exit. The last threshold is -1e8.
std::array<double, 3> fit_thresholds(const torch::Tensor& confidence,
                                     const std::array<double, 3>& proportions);

/// Accuracy and expected cost of an operating point from all exits' logits [3, n, C] (or
/// confidences + predictions) and the labels.
struct OperatingPoint {
  /// The confidence thresholds evaluated (the last is not used).
  std::array<double, 3> thresholds{};
  /// Fraction of the examples leaving at each exit; sums to 1.
  std::array<double, 3> exit_fraction{};
  double accuracy = 0;  ///< Fraction of the examples whose exit predicted the label.
  /// Expected GMACs per image: exit fractions times cumulative_gmacs.
  double gmacs_per_image = 0;
};
/// Sends each example out of the first exit (of the first two) whose max softmax reaches its
/// threshold, else the last; `logits` [3, n, C], `labels` [n], `cumulative_gmacs` per exit.
OperatingPoint evaluate_operating_point(const torch::Tensor& logits, const torch::Tensor& labels,
                                        const std::array<double, 3>& thresholds,
                                        const std::array<double, 3>& cumulative_gmacs);

}  // namespace det::nn
