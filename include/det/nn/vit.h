#pragma once
/// \file
/// The Vision Transformer (Dosovitskiy et al. 2021; spec/models.md §3): patch embedding,
/// class token, learned position embeddings, pre-norm blocks, final LayerNorm, head on the class
/// token. Module names follow timm (patch_embed.proj, cls_token, pos_embed, blocks.i.{norm1,
/// attn.qkv, attn.proj, norm2, mlp.fc1, mlp.fc2}, norm, head); HF `google/vit-*` checkpoints
/// load through load_hf_vit and export through export_hf_vit.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <torch/arg.h>
#include <torch/nn/modules/container/modulelist.h>

#include "det/config/args.h"
#include "det/nn/layers.h"

namespace det::nn {

/// ViT hyperparameters.
struct ViTOptions {
  /// Input height and width in pixels; a multiple of patch_size.
  TORCH_ARG(int64_t, img_size) = 224;
  /// Side of the square patches (the patch conv's kernel and stride).
  TORCH_ARG(int64_t, patch_size) = 16;
  /// Input channels.
  TORCH_ARG(int64_t, in_chans) = 3;
  /// Outputs of the head.
  TORCH_ARG(int64_t, num_classes) = 1000;
  /// Token width D; a multiple of num_heads.
  TORCH_ARG(int64_t, embed_dim) = 768;
  /// Transformer blocks.
  TORCH_ARG(int64_t, depth) = 12;
  /// Attention heads per block.
  TORCH_ARG(int64_t, num_heads) = 12;
  /// Hidden width of each block's MLP.
  TORCH_ARG(int64_t, mlp_dim) = 3072;
  /// Whether the qkv projection has a bias (HF and timm: true).
  TORCH_ARG(bool, qkv_bias) = true;
  /// Dropout after the position embeddings, the attention output projection and the MLP
  /// (HF hidden_dropout_prob).
  TORCH_ARG(double, drop_rate) = 0.0;
  /// Dropout on the attention probabilities.
  TORCH_ARG(double, attn_drop_rate) = 0.0;
  /// Stochastic depth of the last block, linear from 0.
  TORCH_ARG(double, drop_path_rate) = 0.0;
  /// Dropout after the GELU too (Google, jeonsworld); HF's ViTIntermediate has none (default).
  TORCH_ARG(bool, mlp_drop_after_act) = false;
  /// 1e-6 (Google, jeonsworld, Graphcore); HF's in21k config says 1e-12.
  TORCH_ARG(double, layer_norm_eps) = kViTLayerNormEps;
  /// HF's init (trunc_normal_(0.02) weights and embeddings, zero biases, unit norms); false
  /// keeps LibTorch's default init and zero embeddings (for weights about to be loaded).
  TORCH_ARG(bool, init_weights) = true;

 public:
  /// ViT-Ti/S/B/L ("ti", "s", "b", "l", also "vit_b16", "ViT-B/16"): width, depth, heads, MLP
  /// size of vit_jax/configs/models.py with the given patch size.
  static ViTOptions variant(const std::string& name, int64_t patch_size = 16);
  /// Reads a `model` section: variant, patch_size, img_size, num_classes, embed_dim, depth,
  /// num_heads, mlp_dim, qkv_bias, drop_rate, attn_drop_rate, drop_path_rate,
  /// mlp_drop_after_act, layer_norm_eps; `pretrained` is read by the trial. Unknown keys, wrong
  /// types and values out of bounds are ConfigErrors naming the file position and key.
  ViTOptions& update_from_json(const config::Args& model);
  /// Patches per side: img_size / patch_size.
  int64_t grid() const { return img_size_ / patch_size_; }
};

/// A pre-norm transformer block: x + DropPath(Attn(LN(x))), then x + DropPath(Mlp(LN(x))).
class ViTBlockImpl : public torch::nn::Cloneable<ViTBlockImpl> {
 public:
  /// A block of `options`' width, heads, MLP and eps; `drop_path` is its stochastic-depth rate.
  ViTBlockImpl(const ViTOptions& options, double drop_path);
  /// Builds norm1, attn, drop_path, norm2 and mlp (the constructor and clone() call it).
  void reset() override;
  /// [B, N, D] -> [B, N, D].
  torch::Tensor forward(const torch::Tensor& x);

 private:
  ViTOptions options_;
  double drop_path_p_;
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  Attention attn_{nullptr};
  Mlp mlp_{nullptr};
  DropPath drop_path_{nullptr};
};
/// ViTBlock: the module holder (a shared pointer) of ViTBlockImpl.
TORCH_MODULE(ViTBlock);

/// ViT classifier: [B, C, H, W] -> logits [B, num_classes].
class ViTImpl : public torch::nn::Cloneable<ViTImpl> {
 public:
  /// Builds (and, with init_weights, initializes) every layer of `options`.
  explicit ViTImpl(const ViTOptions& options);
  /// Builds patch_embed, the embeddings, blocks, norm and head, initialized per init_weights.
  void reset() override;
  /// Logits [B, num_classes] from the class token of forward_features(x); `x` is
  /// [B, in_chans, img_size, img_size] (a size giving another patch count throws det::Error).
  torch::Tensor forward(const torch::Tensor& x);
  /// Token features after the final norm: [B, 1 + grid^2, D].
  torch::Tensor forward_features(const torch::Tensor& x);
  /// The options it was built with.
  const ViTOptions& options() const { return options_; }
  /// @{
  /// The learned class token [1, 1, D] and position embeddings [1, 1 + grid^2, D] (row 0 for the
  /// class token); parameters "cls_token" and "pos_embed" of the state dict.
  torch::Tensor cls_token, pos_embed;
  /// @}

 private:
  ViTOptions options_;
  torch::nn::Conv2d proj_{nullptr};
  torch::nn::Dropout pos_drop_{nullptr};
  std::vector<ViTBlock> blocks_;
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear head_{nullptr};
};
/// ViT: the module holder (a shared pointer) of ViTImpl.
TORCH_MODULE(ViT);

/// Resizes position embeddings [1, 1 + g0^2, D] to [1, 1 + g1^2, D]: the class token's row is
/// kept, the grid is resampled bicubically (align_corners false), as timm's resize_pos_embed.
torch::Tensor resize_pos_embed(const torch::Tensor& pos_embed, int64_t new_grid);

/// HF `ViTModel` / `ViTForImageClassification` tensors (spec/models.md §3.5) mapped to this
/// ViT's names: an optional leading "vit." stripped, query/key/value concatenated into qkv,
/// pooler.* dropped, classifier.* -> head.* (kept only if `with_head`). Unknown keys and wrong
/// shapes are DataErrors naming the key and `where`.
std::map<std::string, torch::Tensor> hf_to_vit(const std::map<std::string, torch::Tensor>& hf,
                                               int64_t depth, bool with_head,
                                               const std::string& where);
/// The inverse: this ViT's tensors under HF ViTForImageClassification-style names without the
/// "vit." prefix (embeddings.*, encoder.layer.i.*, layernorm.*, classifier.*).
std::map<std::string, torch::Tensor> vit_to_hf(const ViTImpl& model);

/// Loads HF-layout weights from a .safetensors file into `model`: the head is loaded only when
/// the file has classifier.* of the right shape (else freshly initialized); position embeddings
/// of another grid are resized. A tensor whose dtype differs from the model's (F16 weights for
/// an F32 model) is a DataError naming the key, the file and both dtypes unless
/// `convert_dtypes`. Returns a one-line summary of what was loaded.
std::string load_hf_vit(ViTImpl& model, const std::filesystem::path& path,
                        bool convert_dtypes = false);
/// Writes `model` as HF-layout .safetensors (readable by load_hf_vit and by transformers).
void export_hf_vit(const ViTImpl& model, const std::filesystem::path& path);

}  // namespace det::nn
