#include "det/nn/shiftvit.h"

#include <algorithm>

#include <torch/torch.h>

#include "det/util/error.h"
#include "det/util/strings.h"

namespace det::nn {

using torch::indexing::None;
using torch::indexing::Slice;

torch::Tensor shift_feat(const torch::Tensor& x, int64_t n_div) {
  const int64_t C = x.size(1), g = C / n_div;
  auto out = torch::zeros_like(x);
  out.index_put_({Slice(), Slice(0, g), Slice(), Slice(None, -1)},
                 x.index({Slice(), Slice(0, g), Slice(), Slice(1, None)}));
  out.index_put_({Slice(), Slice(g, 2 * g), Slice(), Slice(1, None)},
                 x.index({Slice(), Slice(g, 2 * g), Slice(), Slice(None, -1)}));
  out.index_put_({Slice(), Slice(2 * g, 3 * g), Slice(None, -1), Slice()},
                 x.index({Slice(), Slice(2 * g, 3 * g), Slice(1, None), Slice()}));
  out.index_put_({Slice(), Slice(3 * g, 4 * g), Slice(1, None), Slice()},
                 x.index({Slice(), Slice(3 * g, 4 * g), Slice(None, -1), Slice()}));
  out.index_put_({Slice(), Slice(4 * g, None)}, x.index({Slice(), Slice(4 * g, None)}));
  return out;
}

namespace {

struct Variant {
  const char* name;
  int64_t embed_dim;
  std::vector<int64_t> depths;
  double mlp_ratio;
  int64_t n_div;
  double drop_path;
};

const std::vector<Variant>& variants() {
  static const std::vector<Variant> v = {
      {"shiftvit_light_tiny", 96, {2, 2, 6, 2}, 4, 12, 0.2},
      {"shiftvit_r4_tiny", 96, {2, 2, 12, 3}, 4, 12, 0.2},
      {"shiftvit_r2_tiny", 96, {6, 8, 18, 6}, 2, 12, 0.2},
      {"shiftvit_light_small", 96, {2, 2, 18, 2}, 4, 12, 0.4},
      {"shiftvit_r4_small", 96, {2, 6, 24, 4}, 4, 12, 0.4},
      {"shiftvit_r2_small", 96, {10, 18, 36, 10}, 2, 12, 0.4},
      {"shiftvit_light_base", 128, {2, 2, 18, 2}, 4, 16, 0.5},
      {"shiftvit_r4_base", 128, {4, 6, 22, 4}, 4, 16, 0.5},
      {"shiftvit_r2_base", 128, {10, 18, 36, 10}, 2, 16, 0.6},
  };
  return v;
}

}  // namespace

std::vector<std::string> ShiftViTOptions::variant_names() {
  std::vector<std::string> out;
  for (const auto& v : variants()) out.push_back(v.name);
  return out;
}

ShiftViTOptions ShiftViTOptions::variant(const std::string& name) {
  for (const auto& v : variants())
    if (name == v.name) {
      return ShiftViTOptions()
          .embed_dim(v.embed_dim)
          .depths(v.depths)
          .mlp_ratio(v.mlp_ratio)
          .n_div(v.n_div)
          .drop_path_rate(v.drop_path);
    }
  std::string known;
  for (const auto& n : variant_names()) known += (known.empty() ? "" : ", ") + n;
  throw ConfigError("unknown ShiftViT variant '" + name + "' (known: " + known + ")");
}

ShiftViTOptions& ShiftViTOptions::update_from_json(const config::Args& m) {
  if (!m.is_object()) m.fail_expected("a mapping of ShiftViT arguments");
  m.check_keys({"n_div", "img_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depths",
                "mlp_ratio", "drop_rate", "drop_path_rate", "norm_layer", "act_layer", "patch_norm",
                "use_checkpoint"});
  // Generous bounds: past them a model would not fit any machine.
  const config::Range rate{0, 1};
  // 4/n_div_ of the channels are shifted, so n_div_ >= 4.
  n_div_ = m.get<int64_t>("n_div", n_div_, config::Range{4, 4096});
  img_size_ = m.get<int64_t>("img_size", img_size_, config::Range{1, 8192});
  patch_size_ = m.get<int64_t>("patch_size", patch_size_, config::Range{1, 1024});
  in_chans_ = m.get<int64_t>("in_chans", in_chans_, config::Range{1, 1024});
  num_classes_ = m.get<int64_t>("num_classes", num_classes_, config::Range{1, 1e7});
  embed_dim_ = m.get<int64_t>("embed_dim", embed_dim_, config::Range{1, 65536});
  depths_ = m.get<std::vector<int64_t>>("depths", depths_, config::Range{1, 1024});
  mlp_ratio_ =
      m.get<double>("mlp_ratio", mlp_ratio_, config::Range{0, 1024, /*min_excluded=*/true});
  drop_rate_ = m.get<double>("drop_rate", drop_rate_, rate);
  drop_path_rate_ = m.get<double>("drop_path_rate", drop_path_rate_, rate);
  const std::string norm = m.get<std::string>("norm_layer", "GN1");
  if (norm != "GN1")
    m["norm_layer"].fail("only GN1 (GroupNorm(1, C)) is implemented, found " + util::quote(norm));
  const std::string act = m.get<std::string>("act_layer", "GELU");
  if (act != "GELU") m["act_layer"].fail("only GELU is implemented, found " + util::quote(act));
  if (!m.get<bool>("patch_norm", true))
    m["patch_norm"].fail("only patch_norm: true is implemented");
  if (m.get<bool>("use_checkpoint", false))
    m["use_checkpoint"].fail("activation checkpointing is not implemented; set it to false");
  if (depths_.size() != 4) m["depths"].fail("ShiftViT has four stages; give four depths");
  if (img_size_ / patch_size_ < 1)
    m["patch_size"].fail(std::to_string(patch_size_) + " does not fit img_size_ " +
                         std::to_string(img_size_));
  return *this;
}

ShiftViTBlockImpl::ShiftViTBlockImpl(int64_t dim, int64_t n_div, double mlp_ratio, double drop,
                                     double drop_path)
    : dim_(dim), n_div_(n_div), mlp_ratio_(mlp_ratio), drop_(drop), drop_path_p_(drop_path) {
  reset();
}

void ShiftViTBlockImpl::reset() {
  norm2_ = register_module("norm2", group_norm1(dim_));
  mlp_ = register_module(
      "mlp", Mlp(MlpOptions(dim_, static_cast<int64_t>(static_cast<double>(dim_) * mlp_ratio_))
                     .drop(drop_)
                     .conv(true)));
  drop_path_ = register_module("drop_path", DropPath(drop_path_p_));
}

torch::Tensor ShiftViTBlockImpl::forward(const torch::Tensor& x) {
  auto shifted = shift_feat(x, n_div_);
  return shifted + drop_path_->forward(mlp_->forward(norm2_->forward(shifted)));
}

ShiftViTImpl::ShiftViTImpl(const ShiftViTOptions& options) : options_(options) { reset(); }

void ShiftViTImpl::reset() {
  const auto& o = options_;
  if ((o.img_size() / o.patch_size()) >> (o.depths().size() - 1) < 1)
    throw Error("ShiftViT: img_size " + std::to_string(o.img_size()) + " with patch_size " +
                std::to_string(o.patch_size()) + " leaves no pixel after " +
                std::to_string(o.depths().size() - 1) +
                " patch mergings; use larger images or smaller patches");
  auto patch_embed = register_module("patch_embed", std::make_shared<torch::nn::Module>());
  proj_ = patch_embed->register_module(
      "proj",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in_chans(), o.embed_dim(), o.patch_size())
                            .stride(o.patch_size())));
  patch_norm_ = patch_embed->register_module("norm", group_norm1(o.embed_dim()));
  pos_drop_ = register_module("pos_drop", torch::nn::Dropout(o.drop_rate()));
  int64_t total = 0;
  for (auto d : o.depths()) total += d;
  auto dpr = drop_path_rates(o.drop_path_rate(), total);
  auto layers = register_module("layers", torch::nn::ModuleList());
  blocks_.clear();
  downsample_.clear();
  int64_t k = 0;
  for (size_t i = 0; i < o.depths().size(); ++i) {
    const int64_t dim = o.embed_dim() << i;
    auto layer = std::make_shared<torch::nn::Module>();
    auto blocks = layer->register_module("blocks", torch::nn::ModuleList());
    std::vector<ShiftViTBlock> stage;
    for (int64_t j = 0; j < o.depths()[i]; ++j) {
      stage.emplace_back(dim, o.n_div(), o.mlp_ratio(), o.drop_rate(),
                         dpr[static_cast<size_t>(k++)]);
      blocks->push_back(stage.back());
    }
    blocks_.push_back(stage);
    if (i + 1 < o.depths().size()) {
      auto down = layer->register_module("downsample", std::make_shared<torch::nn::Module>());
      auto norm = down->register_module("norm", group_norm1(dim));
      auto reduction = down->register_module(
          "reduction",
          torch::nn::Conv2d(torch::nn::Conv2dOptions(dim, 2 * dim, 2).stride(2).bias(false)));
      downsample_.emplace_back(norm, reduction);
    }
    layers->push_back(layer);
  }
  const int64_t features = o.embed_dim() << (o.depths().size() - 1);
  norm_ = register_module("norm", group_norm1(features));
  head_ = register_module("head", torch::nn::Linear(features, o.num_classes()));
  if (o.init_weights()) init_trunc_normal(*this, 0.02);
}

torch::Tensor ShiftViTImpl::forward_features(const torch::Tensor& x) {
  auto h = pos_drop_->forward(patch_norm_->forward(proj_->forward(x)));
  for (size_t i = 0; i < blocks_.size(); ++i) {
    for (auto& b : blocks_[i]) h = b->forward(h);
    if (i < downsample_.size())
      h = downsample_[i].second->forward(downsample_[i].first->forward(h));
  }
  return h;
}

torch::Tensor ShiftViTImpl::forward(const torch::Tensor& x) {
  auto h = norm_->forward(forward_features(x));
  return head_->forward(h.mean({2, 3}));
}

}  // namespace det::nn
