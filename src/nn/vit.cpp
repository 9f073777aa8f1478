#include "det/nn/vit.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include <torch/torch.h>

#include "det/nn/safetensors.h"
#include "det/util/error.h"
#include "det/util/strings.h"

namespace det::nn {

ViTOptions ViTOptions::variant(const std::string& name, int64_t patch_size) {
  std::string n;
  for (char c : name)
    if (std::isalnum(static_cast<unsigned char>(c)))
      n += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (n.rfind("vit", 0) == 0) n = n.substr(3);
  while (!n.empty() && std::isdigit(static_cast<unsigned char>(n.back())))
    n.pop_back();  // "b16" -> "b"
  ViTOptions o;
  o.patch_size(patch_size);
  if (n == "ti")
    o.embed_dim(192).depth(12).num_heads(3).mlp_dim(768);
  else if (n == "s")
    o.embed_dim(384).depth(12).num_heads(6).mlp_dim(1536);
  else if (n == "b")
    o.embed_dim(768).depth(12).num_heads(12).mlp_dim(3072);
  else if (n == "l")
    o.embed_dim(1024).depth(24).num_heads(16).mlp_dim(4096);
  else
    throw ConfigError("unknown ViT variant " + util::quote(name) +
                      " (known: ti, s, b, l, e.g. \"b\" or \"ViT-B/16\")");
  return o;
}

ViTOptions& ViTOptions::update_from_json(const config::Args& m) {
  if (!m.is_object()) m.fail_expected("a mapping of ViT arguments");
  m.check_keys({"variant", "pretrained", "patch_size", "img_size", "in_chans", "num_classes",
                "embed_dim", "depth", "num_heads", "mlp_dim", "qkv_bias", "drop_rate",
                "attn_drop_rate", "drop_path_rate", "mlp_drop_after_act", "layer_norm_eps"});
  // Generous bounds: past them a model would not fit any machine.
  const config::Range rate{0, 1}, size{1, 8192};
  patch_size_ = m.get<int64_t>("patch_size", patch_size_, config::Range{1, 1024});
  if (m.has("variant")) {
    ViTOptions v;
    try {
      v = variant(m.get<std::string>("variant"), patch_size_);
    } catch (const ConfigError& e) {
      m["variant"].fail(e.what());
    }
    embed_dim_ = v.embed_dim(), depth_ = v.depth(), num_heads_ = v.num_heads(),
    mlp_dim_ = v.mlp_dim();
  }
  img_size_ = m.get<int64_t>("img_size", img_size_, size);
  in_chans_ = m.get<int64_t>("in_chans", in_chans_, config::Range{1, 1024});
  num_classes_ = m.get<int64_t>("num_classes", num_classes_, config::Range{1, 1e7});
  embed_dim_ = m.get<int64_t>("embed_dim", embed_dim_, config::Range{1, 65536});
  depth_ = m.get<int64_t>("depth", depth_, config::Range{1, 1024});
  num_heads_ = m.get<int64_t>("num_heads", num_heads_, config::Range{1, 1024});
  mlp_dim_ = m.get<int64_t>("mlp_dim", mlp_dim_, config::Range{1, 1 << 20});
  qkv_bias_ = m.get<bool>("qkv_bias", qkv_bias_);
  drop_rate_ = m.get<double>("drop_rate", drop_rate_, rate);
  attn_drop_rate_ = m.get<double>("attn_drop_rate", attn_drop_rate_, rate);
  drop_path_rate_ = m.get<double>("drop_path_rate", drop_path_rate_, rate);
  mlp_drop_after_act_ = m.get<bool>("mlp_drop_after_act", mlp_drop_after_act_);
  layer_norm_eps_ =
      m.get<double>("layer_norm_eps", layer_norm_eps_, config::Range{0, 1, /*min_excluded=*/true});
  if (img_size_ % patch_size_ != 0)
    m["patch_size"].fail(std::to_string(patch_size_) + " does not divide img_size_ " +
                         std::to_string(img_size_));
  if (embed_dim_ % num_heads_ != 0)
    m["num_heads"].fail(std::to_string(num_heads_) + " does not divide embed_dim_ " +
                        std::to_string(embed_dim_));
  return *this;
}

ViTBlockImpl::ViTBlockImpl(const ViTOptions& options, double drop_path)
    : options_(options), drop_path_p_(drop_path) {
  reset();
}

void ViTBlockImpl::reset() {
  const auto& o = options_;
  norm1_ = register_module("norm1", layer_norm(o.embed_dim(), o.layer_norm_eps()));
  attn_ = register_module("attn", Attention(AttentionOptions(o.embed_dim(), o.num_heads())
                                                .qkv_bias(o.qkv_bias())
                                                .attn_drop(o.attn_drop_rate())
                                                .proj_drop(o.drop_rate())));
  drop_path_ = register_module("drop_path", DropPath(drop_path_p_));
  norm2_ = register_module("norm2", layer_norm(o.embed_dim(), o.layer_norm_eps()));
  mlp_ = register_module("mlp", Mlp(MlpOptions(o.embed_dim(), o.mlp_dim())
                                        .drop(o.drop_rate())
                                        .drop_after_act(o.mlp_drop_after_act())));
}

torch::Tensor ViTBlockImpl::forward(const torch::Tensor& x) {
  auto h = x + drop_path_->forward(attn_->forward(norm1_->forward(x)));
  return h + drop_path_->forward(mlp_->forward(norm2_->forward(h)));
}

ViTImpl::ViTImpl(const ViTOptions& options) : options_(options) { reset(); }

void ViTImpl::reset() {
  const auto& o = options_;
  const int64_t n = o.grid() * o.grid();
  auto patch_embed = register_module("patch_embed", std::make_shared<torch::nn::Module>());
  proj_ = patch_embed->register_module(
      "proj",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(o.in_chans(), o.embed_dim(), o.patch_size())
                            .stride(o.patch_size())));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, o.embed_dim()}));
  pos_embed = register_parameter("pos_embed", torch::zeros({1, n + 1, o.embed_dim()}));
  pos_drop_ = register_module("pos_drop", torch::nn::Dropout(o.drop_rate()));
  auto dpr = drop_path_rates(o.drop_path_rate(), o.depth());
  auto blocks = register_module("blocks", torch::nn::ModuleList());
  blocks_.clear();
  for (int64_t i = 0; i < o.depth(); ++i) {
    blocks_.emplace_back(o, dpr[static_cast<size_t>(i)]);
    blocks->push_back(blocks_.back());
  }
  norm_ = register_module("norm", layer_norm(o.embed_dim(), o.layer_norm_eps()));
  head_ = register_module("head", torch::nn::Linear(o.embed_dim(), o.num_classes()));
  if (o.init_weights()) {
    // HF ViTPreTrainedModel._init_weights: (trunc)normal(0.02) Linear/Conv weights, zero biases,
    // unit LayerNorms; class token and position embeddings trunc_normal(0.02).
    init_trunc_normal(*this, 0.02);
    trunc_normal_(cls_token, 0.0, 0.02);
    trunc_normal_(pos_embed, 0.0, 0.02);
  }
}

torch::Tensor ViTImpl::forward_features(const torch::Tensor& x) {
  auto h = proj_->forward(x).flatten(2).transpose(1, 2);  // [B, N, D]
  if (h.size(1) + 1 != pos_embed.size(1))
    throw Error("ViT: the input gives " + std::to_string(h.size(1)) +
                " patches, the position embeddings hold " + std::to_string(pos_embed.size(1) - 1) +
                "; feed " + std::to_string(options_.img_size()) + " px images");
  h = torch::cat({cls_token.expand({h.size(0), -1, -1}), h}, 1);
  h = pos_drop_->forward(h + pos_embed);
  for (auto& b : blocks_) h = b->forward(h);
  return norm_->forward(h);
}

torch::Tensor ViTImpl::forward(const torch::Tensor& x) {
  return head_->forward(forward_features(x).select(1, 0));
}

torch::Tensor resize_pos_embed(const torch::Tensor& pos_embed, int64_t new_grid) {
  const int64_t n = pos_embed.size(1) - 1, d = pos_embed.size(2);
  const auto g = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  if (g * g != n)
    throw Error("resize_pos_embed: " + std::to_string(n) +
                " position embeddings are not a square grid");
  auto cls = pos_embed.slice(1, 0, 1);
  auto grid = pos_embed.slice(1, 1).reshape({1, g, g, d}).permute({0, 3, 1, 2});
  grid = torch::nn::functional::interpolate(grid.to(torch::kFloat32),
                                            torch::nn::functional::InterpolateFuncOptions()
                                                .size(std::vector<int64_t>{new_grid, new_grid})
                                                .mode(torch::kBicubic)
                                                .align_corners(false));
  grid = grid.permute({0, 2, 3, 1}).reshape({1, new_grid * new_grid, d});
  return torch::cat({cls.to(torch::kFloat32), grid}, 1);
}

namespace {

// HF suffix within encoder.layer.i -> this ViT's suffix within blocks.i (q, k, v handled apart).
const std::vector<std::pair<std::string, std::string>>& layer_names() {
  static const std::vector<std::pair<std::string, std::string>> m = {
      {"layernorm_before.weight", "norm1.weight"},
      {"layernorm_before.bias", "norm1.bias"},
      {"attention.output.dense.weight", "attn.proj.weight"},
      {"attention.output.dense.bias", "attn.proj.bias"},
      {"layernorm_after.weight", "norm2.weight"},
      {"layernorm_after.bias", "norm2.bias"},
      {"intermediate.dense.weight", "mlp.fc1.weight"},
      {"intermediate.dense.bias", "mlp.fc1.bias"},
      {"output.dense.weight", "mlp.fc2.weight"},
      {"output.dense.bias", "mlp.fc2.bias"},
  };
  return m;
}

const std::vector<std::pair<std::string, std::string>>& top_names() {
  static const std::vector<std::pair<std::string, std::string>> m = {
      {"embeddings.cls_token", "cls_token"},
      {"embeddings.position_embeddings", "pos_embed"},
      {"embeddings.patch_embeddings.projection.weight", "patch_embed.proj.weight"},
      {"embeddings.patch_embeddings.projection.bias", "patch_embed.proj.bias"},
      {"layernorm.weight", "norm.weight"},
      {"layernorm.bias", "norm.bias"},
      {"classifier.weight", "head.weight"},
      {"classifier.bias", "head.bias"},
  };
  return m;
}

}  // namespace

namespace {

// "blocks.i.attn.qkv.weight" -> {query, key, value}: HF keeps them apart, the model has one.
using QkvParts = std::map<std::string, std::map<std::string, torch::Tensor>>;

// Maps `rest` (a key under HF's encoder.layer.<idx>.) into `out` or `qkv`; false when it is no
// layer tensor.
bool map_layer_tensor(const std::string& idx, const std::string& rest, const torch::Tensor& t,
                      std::map<std::string, torch::Tensor>& out, QkvParts& qkv) {
  const std::string block = "blocks." + idx + ".";
  bool mapped = false;
  for (const auto& [hf_suffix, ours] : layer_names())
    if (rest == hf_suffix) out[block + ours] = t, mapped = true;
  for (const char* part : {"query", "key", "value"})
    for (const char* kind : {"weight", "bias"})
      if (rest == std::string("attention.attention.") + part + "." + kind)
        qkv[block + "attn.qkv." + kind][part] = t, mapped = true;
  return mapped;
}

// One tensor of HF's encoder layers (key without "vit."): false when it is none.
bool map_encoder_tensor(const std::string& key, const std::string& full, const torch::Tensor& t,
                        int64_t depth, const std::string& where,
                        std::map<std::string, torch::Tensor>& out, QkvParts& qkv) {
  const std::string prefix = "encoder.layer.";
  if (key.rfind(prefix, 0) != 0) return false;
  size_t dot = key.find('.', prefix.size());
  std::string idx = key.substr(prefix.size(), dot - prefix.size());
  std::string rest = dot == std::string::npos ? "" : key.substr(dot + 1);
  bool numeric = !idx.empty() && std::all_of(idx.begin(), idx.end(), [](char c) {
    return std::isdigit(static_cast<unsigned char>(c));
  });
  if (!numeric) return false;
  if (std::stoll(idx) >= depth)
    throw DataError(where + ": tensor '" + full + "' belongs to layer " + idx +
                    " but the model has " + std::to_string(depth) +
                    " layers; pick the variant the weights were trained as");
  return map_layer_tensor(idx, rest, t, out, qkv);
}

}  // namespace

std::map<std::string, torch::Tensor> hf_to_vit(const std::map<std::string, torch::Tensor>& hf,
                                               int64_t depth, bool with_head,
                                               const std::string& where) {
  std::map<std::string, torch::Tensor> out;
  QkvParts qkv;
  for (const auto& [full, t] : hf) {
    std::string key = full.rfind("vit.", 0) == 0 ? full.substr(4) : full;
    if (key.rfind("pooler.", 0) == 0) continue;
    if (!with_head && key.rfind("classifier.", 0) == 0) continue;
    auto top = std::find_if(top_names().begin(), top_names().end(),
                            [&](const auto& p) { return p.first == key; });
    if (top != top_names().end()) {
      out[top->second] = t;
      continue;
    }
    if (!map_encoder_tensor(key, full, t, depth, where, out, qkv))
      throw DataError(
          where + ": tensor '" + full +
          "' is not part of an HF ViT (ViTModel / ViTForImageClassification) state dict");
  }
  for (auto& [name, parts] : qkv) {
    for (const char* part : {"query", "key", "value"})
      if (!parts.count(part))
        throw DataError(where + ": the " + part + " tensor of " + name + " is missing (" +
                        name.substr(0, name.find(".attn")) + ")");
    out[name] = torch::cat({parts["query"], parts["key"], parts["value"]}, 0);
  }
  return out;
}

std::map<std::string, torch::Tensor> vit_to_hf(const ViTImpl& model) {
  auto own = state_dict(model);
  std::map<std::string, torch::Tensor> out;
  for (const auto& [hf, ours] : top_names()) out[hf] = own.at(ours);
  const int64_t d = model.options().embed_dim();
  for (int64_t i = 0; i < model.options().depth(); ++i) {
    const std::string block = "blocks." + std::to_string(i) + ".",
                      layer = "encoder.layer." + std::to_string(i) + ".";
    for (const auto& [hf_suffix, ours] : layer_names())
      out[layer + hf_suffix] = own.at(block + ours);
    for (const char* kind : {"weight", "bias"}) {
      auto it = own.find(block + "attn.qkv." + kind);
      if (it == own.end()) continue;  // qkv_bias false
      auto parts = it->second.split(d, 0);
      out[layer + "attention.attention.query." + kind] = parts[0];
      out[layer + "attention.attention.key." + kind] = parts[1];
      out[layer + "attention.attention.value." + kind] = parts[2];
    }
  }
  return out;
}

namespace {

std::string shape_text(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

// Checks dtypes and shapes under the file's own names first, so an error names the key as the
// file has it; converts dtypes where asked.
void check_hf_tensors(const ViTImpl& model, std::map<std::string, torch::Tensor>& tensors,
                      const std::string& where, bool convert_dtypes) {
  auto expected = vit_to_hf(model);
  for (auto& [full, t] : tensors) {
    std::string key = full.rfind("vit.", 0) == 0 ? full.substr(4) : full;
    auto it = expected.find(key);
    if (it == expected.end()) continue;
    if (t.scalar_type() != it->second.scalar_type()) {
      if (!convert_dtypes)
        throw DataError(where + ": tensor '" + full + "' is " +
                        safetensors_dtype_name(t.scalar_type()) + " but the model's is " +
                        safetensors_dtype_name(it->second.scalar_type()) +
                        "; convert the weights to the model's dtype, or ask for the conversion "
                        "(convert_dtypes)");
      t = t.to(it->second.scalar_type());
    }
    if (key == "embeddings.position_embeddings" || key.rfind("classifier.", 0) == 0) continue;
    if (t.sizes() != it->second.sizes())
      throw DataError(where + ": tensor '" + full + "' has shape " + shape_text(t.sizes()) +
                      ", the model expects " + shape_text(it->second.sizes()) + " (embed_dim " +
                      std::to_string(model.options().embed_dim()) + ", mlp_dim " +
                      std::to_string(model.options().mlp_dim()) + ", patch " +
                      std::to_string(model.options().patch_size()) +
                      "); pick the variant the weights were trained as");
  }
}

}  // namespace

std::string load_hf_vit(ViTImpl& model, const std::filesystem::path& path, bool convert_dtypes) {
  auto file = read_safetensors(path);
  const std::string where = path.string();
  auto own = state_dict(model);
  bool with_head = false;
  for (const auto& [k, t] : file.tensors)
    if ((k == "classifier.weight" || k == "vit.classifier.weight") &&
        t.sizes() == own.at("head.weight").sizes())
      with_head = true;
  check_hf_tensors(model, file.tensors, where, convert_dtypes);
  auto mapped = hf_to_vit(file.tensors, model.options().depth(), with_head, where);
  bool resized = false;
  auto pe = mapped.find("pos_embed");
  if (pe != mapped.end() && pe->second.dim() == 3 &&
      pe->second.sizes() != own.at("pos_embed").sizes() &&
      pe->second.size(2) == own.at("pos_embed").size(2)) {
    pe->second = resize_pos_embed(pe->second, model.options().grid());
    resized = true;
  }
  std::vector<std::string> allow = {"head.weight", "head.bias"};
  if (with_head) allow.clear();
  load_state_dict(model, mapped, where + " (HF ViT layout)", allow, false, convert_dtypes);
  return "loaded " + std::to_string(mapped.size()) + " tensors from " + where +
         (with_head ? " including the head" : "; the head is new") +
         (resized ? "; position embeddings resized to a " + std::to_string(model.options().grid()) +
                        "x" + std::to_string(model.options().grid()) + " grid"
                  : "");
}

void export_hf_vit(const ViTImpl& model, const std::filesystem::path& path) {
  const auto& o = model.options();
  write_safetensors(path, vit_to_hf(model),
                    {{"format", "pt"},
                     {"det_model", "vit"},
                     {"image_size", std::to_string(o.img_size())},
                     {"patch_size", std::to_string(o.patch_size())},
                     {"hidden_size", std::to_string(o.embed_dim())},
                     {"num_hidden_layers", std::to_string(o.depth())},
                     {"num_attention_heads", std::to_string(o.num_heads())},
                     {"intermediate_size", std::to_string(o.mlp_dim())},
                     {"layer_norm_eps", std::to_string(o.layer_norm_eps())}});
}

}  // namespace det::nn
