#pragma once
/// \file
/// ShiftViT (Wang et al. 2022, microsoft/SPACH models/shiftvit.py; spec/models.md §2): the
/// attention of a Swin-like hierarchy replaced by a zero-filled one-pixel shift of 4/n_div of the
/// channels. NCHW throughout; parameter names as in SPACH's state dicts.

#include <string>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/modules/container/modulelist.h>

#include "det/config/args.h"
#include "det/nn/layers.h"

namespace det::nn {

/// The shift of ShiftViTBlock: with g = C / n_div (floored), channels [0,g) move left one pixel,
/// [g,2g) right, [2g,3g) up, [3g,4g) down, zero-filled without wrap-around; the rest stay.
torch::Tensor shift_feat(const torch::Tensor& x, int64_t n_div);

/// ShiftViT's constructor arguments (SPACH's names and defaults).
struct ShiftViTOptions {
  /// 4/n_div of channels shift, 1/n_div each way.
  TORCH_ARG(int64_t, n_div) = 12;
  /// Input height and width in pixels.
  TORCH_ARG(int64_t, img_size) = 224;
  /// Patch embedding conv's kernel and stride.
  TORCH_ARG(int64_t, patch_size) = 4;
  /// Input channels.
  TORCH_ARG(int64_t, in_chans) = 3;
  /// Outputs of the head.
  TORCH_ARG(int64_t, num_classes) = 1000;
  /// Channels of stage 1 (C0); stage i has C0 * 2^i.
  TORCH_ARG(int64_t, embed_dim) = 96;
  /// Blocks of each of the four stages.
  TORCH_ARG(std::vector<int64_t>, depths) = {2, 2, 6, 2};
  /// MLP hidden channels per input channel.
  TORCH_ARG(double, mlp_ratio) = 4.0;
  /// Dropout after patch embedding and in MLPs.
  TORCH_ARG(double, drop_rate) = 0.0;
  /// Last block's stochastic depth (linear from 0).
  TORCH_ARG(double, drop_path_rate) = 0.1;
  /// Reference init (trunc_normal_(.02) weights, zero biases, unit norms); false keeps LibTorch's
  /// default init (for counting parameters quickly).
  TORCH_ARG(bool, init_weights) = true;

 public:
  /// Reads the Determined example's `model` hyperparameters (n_div, patch_size, embed_dim,
  /// depths, mlp_ratio, drop_rate, drop_path_rate, norm_layer (GN1), act_layer (GELU),
  /// patch_norm (true), use_checkpoint (false), and optionally img_size, in_chans,
  /// num_classes) over these options. Unknown keys, wrong types, values out of bounds and
  /// unsupported choices are ConfigErrors naming the file position and key.
  ShiftViTOptions& update_from_json(const config::Args& model);
  /// The SPACH registry variants (shiftvit_light_tiny ... shiftvit_r2_base): 1000 classes at 224,
  /// patch 4, the registry's drop_path. Unknown names throw ConfigError listing the known ones.
  static ShiftViTOptions variant(const std::string& name);
  /// The registry names.
  static std::vector<std::string> variant_names();
};

/// One ShiftViT block: x = shift(x); x = x + DropPath(Mlp(GN1(x))) (submodules norm2, mlp).
class ShiftViTBlockImpl : public torch::nn::Cloneable<ShiftViTBlockImpl> {
 public:
  /// A block on `dim` channels: shift by 1/n_div per direction, MLP of dim * mlp_ratio
  /// hidden channels with dropout `drop`, stochastic depth `drop_path`.
  ShiftViTBlockImpl(int64_t dim, int64_t n_div, double mlp_ratio, double drop, double drop_path);
  /// Builds norm2, mlp and drop_path (the constructor and clone() call it).
  void reset() override;
  /// [B, dim, H, W] -> [B, dim, H, W].
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t dim_, n_div_;
  double mlp_ratio_, drop_, drop_path_p_;
  torch::nn::GroupNorm norm2_{nullptr};
  Mlp mlp_{nullptr};
  DropPath drop_path_{nullptr};
};
/// ShiftViTBlock: the module holder (a shared pointer) of ShiftViTBlockImpl.
TORCH_MODULE(ShiftViTBlock);

/// ShiftViT: PatchEmbed (proj conv k=s=patch, GN1) -> dropout -> four stages of blocks with
/// PatchMerging (GN1, conv k=s=2 without bias, 2x channels) after the first three -> GN1 ->
/// global average pool -> head. Input [B, in_chans, H, W], output logits [B, num_classes].
class ShiftViTImpl : public torch::nn::Cloneable<ShiftViTImpl> {
 public:
  /// Builds every layer; throws det::Error when img_size / patch_size leaves no pixel after
  /// the three patch mergings.
  explicit ShiftViTImpl(const ShiftViTOptions& options);
  /// Builds patch_embed, the stages, norm and head, initialized per init_weights.
  void reset() override;
  /// Logits [B, num_classes]: final GN1, global average pool and head over forward_features(x).
  torch::Tensor forward(const torch::Tensor& x);
  /// Feature map before the final norm and pooling: [B, 8 C0, h, w].
  torch::Tensor forward_features(const torch::Tensor& x);
  /// The options it was built with.
  const ShiftViTOptions& options() const { return options_; }

 private:
  ShiftViTOptions options_;
  torch::nn::Conv2d proj_{nullptr};
  torch::nn::GroupNorm patch_norm_{nullptr}, norm_{nullptr};
  torch::nn::Dropout pos_drop_{nullptr};
  std::vector<std::vector<ShiftViTBlock>> blocks_;
  std::vector<std::pair<torch::nn::GroupNorm, torch::nn::Conv2d>> downsample_;
  torch::nn::Linear head_{nullptr};
};
/// ShiftViT: the module holder (a shared pointer) of ShiftViTImpl.
TORCH_MODULE(ShiftViT);

}  // namespace det::nn
