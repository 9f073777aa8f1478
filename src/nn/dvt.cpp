#include "det/nn/dvt.h"

#include <cmath>

#include <torch/torch.h>

#include "det/util/error.h"

namespace det::nn {

namespace F = torch::nn::functional;

// ---- Token performer ----

TokenPerformerImpl::TokenPerformerImpl(int64_t dim, int64_t in_dim, double kernel_ratio,
                                       double dropout)
    : dim_(dim),
      emb_(in_dim),
      m_(static_cast<int64_t>(static_cast<double>(in_dim) * kernel_ratio)),
      dropout_(dropout) {
  reset();
}

void TokenPerformerImpl::reset() {
  kqv_ = register_module("kqv", torch::nn::Linear(dim_, 3 * emb_));
  dp_ = register_module("dp", torch::nn::Dropout(dropout_));
  proj_ = register_module("proj", torch::nn::Linear(emb_, emb_));
  norm1_ = register_module("norm1", layer_norm(dim_, kT2TLayerNormEps));
  norm2_ = register_module("norm2", layer_norm(emb_, kT2TLayerNormEps));
  mlp_ = register_module(
      "mlp", torch::nn::Sequential(torch::nn::Linear(emb_, emb_), torch::nn::GELU(),
                                   torch::nn::Linear(emb_, emb_), torch::nn::Dropout(dropout_)));
  // orthogonal_(randn(m, emb)) * sqrt(m): rows orthonormal (QR of a Gaussian), fixed.
  torch::NoGradGuard g;
  auto q =
      std::get<0>(torch::linalg_qr(torch::randn({emb_, m_})));  // [emb, m], orthonormal columns
  w = register_parameter("w", q.t().contiguous() * std::sqrt(static_cast<double>(m_)),
                         /*requires_grad=*/false);
}

torch::Tensor TokenPerformerImpl::prm_exp(const torch::Tensor& x) const {
  // phi(x) = exp(x w^T - |x|^2 / 2) / sqrt(m)
  auto xd = (x * x).sum(-1, /*keepdim=*/true) / 2;
  return torch::exp(torch::matmul(x, w.t()) - xd) / std::sqrt(static_cast<double>(m_));
}

torch::Tensor TokenPerformerImpl::forward(const torch::Tensor& input) {
  auto kqv = kqv_->forward(norm1_->forward(input)).split(emb_, -1);
  auto k = kqv[0], q = kqv[1], v = kqv[2];
  auto kp = prm_exp(k), qp = prm_exp(q);                          // [B, T, m]
  auto D = torch::matmul(qp, kp.sum(1).unsqueeze(-1));            // [B, T, 1]
  auto kptv = torch::matmul(v.transpose(1, 2), kp);               // [B, emb, m]
  auto y = torch::matmul(qp, kptv.transpose(1, 2)) / (D + 1e-8);  // [B, T, emb]
  y = v + dp_->forward(proj_->forward(y));
  return y + mlp_->forward(norm2_->forward(y));
}

// ---- T2T-ViT ----

int64_t T2TViTOptions::grid() const {
  int64_t g = (img_size_ + 2 * padding_ - kernel_) / stride_ + 1;
  for (int i = 0; i < 2; ++i) g = (g + 2 - 3) / 2 + 1;
  return g;
}

ReuseState ReuseState::select(const torch::Tensor& index) const {
  ReuseState out;
  out.features = features.index_select(0, index);
  for (const auto& r : relations) out.relations.push_back(r.index_select(0, index));
  return out;
}

namespace {

constexpr int64_t kReuseChannels = 48;

// The reference's nearest upsample before the average pool: to 14x14 for a 10x10 target and to
// 20x20 for 14x14; other targets pool directly.
int64_t upsample_size(int64_t target) { return target == 10 ? 14 : target == 14 ? 20 : target; }

// [B, C, g0*g0] -> [B, C, g1*g1]: nearest upsample, then adaptive average pool.
torch::Tensor resize_tokens(const torch::Tensor& x, int64_t g0, int64_t g1) {
  const int64_t B = x.size(0), C = x.size(1), up = upsample_size(g1);
  auto t = x.reshape({B, C, g0, g0});
  if (up != g0)
    t = F::interpolate(
        t, F::InterpolateFuncOptions().size(std::vector<int64_t>{up, up}).mode(torch::kNearest));
  t = F::adaptive_avg_pool2d(t, F::AdaptiveAvgPool2dFuncOptions({g1, g1}));
  return t.reshape({B, C, g1 * g1});
}

}  // namespace

T2TBlockImpl::T2TBlockImpl(const T2TViTOptions& options, double drop_path)
    : options_(options), drop_path_p_(drop_path) {
  reset();
}

void T2TBlockImpl::reset() {
  const auto& o = options_;
  const int64_t D = o.embed_dim(),
                hidden = static_cast<int64_t>(static_cast<double>(D) * o.mlp_ratio());
  const int64_t in = o.feature_reuse() ? D + kReuseChannels : D;
  norm1_ = register_module("norm1", layer_norm(D, kT2TLayerNormEps));
  attn_ = register_module(
      "attn",
      Attention(AttentionOptions(D, o.num_heads()).qkv_bias(false).proj_drop(o.drop_rate())));
  drop_path_ = register_module("drop_path", DropPath(drop_path_p_));
  norm2_ = register_module("norm2", layer_norm(in, kT2TLayerNormEps));
  mlp_ = register_module("mlp", Mlp(MlpOptions(in, hidden).out_features(D).drop(o.drop_rate())));
  if (o.feature_reuse())
    feature_resuse_mlp_ = register_module(
        "feature_resuse_mlp",
        torch::nn::Sequential(
            layer_norm(D, kT2TLayerNormEps),
            Mlp(MlpOptions(D, 128).out_features(kReuseChannels).drop(o.drop_rate()))));
}

torch::Tensor T2TBlockImpl::reuse_features(const torch::Tensor& upstream) {
  const auto& o = options_;
  auto f = feature_resuse_mlp_->forward(upstream);  // [B, Np+1, 48]
  auto patches = f.slice(1, 1).transpose(1, 2);     // [B, 48, Np]
  auto resized = resize_tokens(patches, o.upstream_grid(), o.grid()).transpose(1, 2);  // [B, N, 48]
  return torch::cat({torch::zeros({f.size(0), 1, kReuseChannels}, f.options()), resized}, 1);
}

torch::Tensor T2TBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& features,
                                    const torch::Tensor& relation, torch::Tensor* logits_out) {
  auto h =
      x + drop_path_->forward(attn_->forward_with_logits(norm1_->forward(x), relation, logits_out));
  auto in = options_.feature_reuse() ? torch::cat({h, features}, -1) : h;
  return h + drop_path_->forward(mlp_->forward(norm2_->forward(in)));
}

T2TViTImpl::T2TViTImpl(const T2TViTOptions& options) : options_(options) { reset(); }

void T2TViTImpl::reset() {
  const auto& o = options_;
  if ((o.feature_reuse() || o.relation_reuse()) &&
      (o.upstream_grid() < 1 || o.upstream_depth() < 1))
    throw Error("T2TViT: reuse needs the upstream model's grid and depth");
  const int64_t g = o.grid(), n = g * g, D = o.embed_dim();
  auto t2t = register_module("tokens_to_token", std::make_shared<torch::nn::Module>());
  const int64_t td = o.token_dim();
  attention1_ = t2t->register_module("attention1", TokenPerformer(3 * o.kernel() * o.kernel(), td));
  attention2_ = t2t->register_module("attention2", TokenPerformer(td * 9, td));
  project_ = t2t->register_module("project", torch::nn::Linear(td * 9, D));
  cls_token = register_parameter("cls_token", torch::zeros({1, 1, D}));
  pos_embed = register_parameter("pos_embed", sinusoid_table(n + 1, D), /*requires_grad=*/false);
  pos_drop_ = register_module("pos_drop", torch::nn::Dropout(o.drop_rate()));
  auto dpr = drop_path_rates(o.drop_path_rate(), o.depth());
  auto blocks = register_module("blocks", torch::nn::ModuleList());
  blocks_.clear();
  for (int64_t i = 0; i < o.depth(); ++i) {
    blocks_.emplace_back(o, dpr[static_cast<size_t>(i)]);
    blocks->push_back(blocks_.back());
  }
  norm_ = register_module("norm", layer_norm(D, kT2TLayerNormEps));
  head_ = register_module("head", torch::nn::Linear(D, o.num_classes()));
  if (o.init_weights()) {
    init_trunc_normal(*this, 0.02);
    trunc_normal_(cls_token, 0.0, 0.02);
  }
  if (o.relation_reuse()) {
    // Created after the init: the reference keeps PyTorch's default init for these convs.
    const int64_t hd = o.num_heads() * o.upstream_depth();
    relation_reuse_conv_ = register_module(
        "relation_reuse_conv",
        torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(hd, 3 * hd, 1)),
                              torch::nn::GELU(),
                              torch::nn::Conv2d(torch::nn::Conv2dOptions(3 * hd, hd, 1))));
  }
}

torch::Tensor T2TViTImpl::forward(const torch::Tensor& x, const ReuseState* upstream,
                                  ReuseState* state) {
  const auto& o = options_;
  if ((o.feature_reuse() || o.relation_reuse()) && !upstream)
    throw Error(
        "T2TViT: this cascade member reuses the previous one's features; pass its ReuseState");
  const int64_t B = x.size(0);
  // T2T: soft split, performer, re-structurize, twice; then project.
  auto t =
      F::unfold(
          x, F::UnfoldFuncOptions({o.kernel(), o.kernel()}).stride(o.stride()).padding(o.padding()))
          .transpose(1, 2);
  t = attention1_->forward(t);
  auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(t.size(1)))));
  t = t.transpose(1, 2).reshape({B, o.token_dim(), side, side});
  t = F::unfold(t, F::UnfoldFuncOptions({3, 3}).stride(2).padding(1)).transpose(1, 2);
  t = attention2_->forward(t);
  side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(t.size(1)))));
  t = t.transpose(1, 2).reshape({B, o.token_dim(), side, side});
  t = F::unfold(t, F::UnfoldFuncOptions({3, 3}).stride(2).padding(1)).transpose(1, 2);
  auto h = project_->forward(t);
  h = torch::cat({cls_token.expand({B, -1, -1}), h}, 1);
  h = pos_drop_->forward(h + pos_embed);

  std::vector<torch::Tensor> relation_bias;
  if (o.relation_reuse()) {
    // All upstream layers' logits -> 1x1 convs -> resize keys, then queries (class token kept)
    // -> one [B, H, N+1, N+1] bias per layer.
    auto r =
        relation_reuse_conv_->forward(torch::cat(upstream->relations, 1));  // [B, Hd, Np+1, Np+1]
    const int64_t hd = r.size(1), np1 = r.size(2), g0 = o.upstream_grid(), g1 = o.grid();
    auto keys = resize_tokens(r.slice(3, 1).reshape({B, hd * np1, g0 * g0}), g0, g1)
                    .reshape({B, hd, np1, g1 * g1});
    r = torch::cat({r.slice(3, 0, 1), keys}, 3).transpose(2, 3);  // [B, Hd, N+1, Np+1]
    auto queries = resize_tokens(r.slice(3, 1).reshape({B, hd * (g1 * g1 + 1), g0 * g0}), g0, g1)
                       .reshape({B, hd, g1 * g1 + 1, g1 * g1});
    r = torch::cat({r.slice(3, 0, 1), queries}, 3).transpose(2, 3);  // [B, Hd, N+1, N+1]
    relation_bias = r.chunk(o.depth(), 1);
  }
  if (state) state->relations.clear();
  for (size_t i = 0; i < blocks_.size(); ++i) {
    torch::Tensor features =
        o.feature_reuse() ? blocks_[i]->reuse_features(upstream->features) : torch::Tensor();
    torch::Tensor logits;
    h = blocks_[i]->forward(h, features, o.relation_reuse() ? relation_bias[i] : torch::Tensor(),
                            state ? &logits : nullptr);
    if (state) state->relations.push_back(logits);
  }
  if (state) state->features = h;
  return head_->forward(norm_->forward(h).select(1, 0));
}

double T2TViTImpl::macs() const {
  const auto& o = options_;
  const double e = static_cast<double>(o.token_dim()), m = std::floor(e * 0.5);
  auto performer = [e, m](double T, double d0) {
    return T * d0 * 3 * e + 2 * T * e * m + T * m + e * m * T + T * m * e + T * e * e +
           2 * T * e * e;
  };
  int64_t l0 = (o.img_size() + 2 * o.padding() - o.kernel()) / o.stride() + 1,
          l1 = (l0 - 1) / 2 + 1, l2 = (l1 - 1) / 2 + 1;
  const double D = static_cast<double>(o.embed_dim()), T = static_cast<double>(l2 * l2 + 1);
  const double hidden = std::floor(D * o.mlp_ratio());
  double total =
      performer(static_cast<double>(l0 * l0), 3.0 * static_cast<double>(o.kernel() * o.kernel())) +
      performer(static_cast<double>(l1 * l1), 9 * e) + static_cast<double>(l2 * l2) * 9 * e * D;
  double block = T * D * 3 * D + 2 * T * T * D + T * D * D +
                 T * (o.feature_reuse() ? D + 48 : D) * hidden + T * hidden * D;
  const double np1 = static_cast<double>(o.upstream_grid() * o.upstream_grid() + 1);
  if (o.feature_reuse()) block += np1 * (D * 128 + 128 * 48);
  total += static_cast<double>(o.depth()) * block + D * static_cast<double>(o.num_classes());
  if (o.relation_reuse()) {
    const double hd = static_cast<double>(o.num_heads() * o.upstream_depth());
    total += 6 * hd * hd * np1 * np1;
  }
  return total;
}

// ---- DVT ----

DVTOptions DVTOptions::variant(const std::string& name) {
  DVTOptions o;
  if (name.find("12") != std::string::npos) return o;
  if (name.find("14") != std::string::npos) {
    o.embed_dim(384).depth(14).num_heads(6).mlp_ratio(3.0);
    return o;
  }
  throw ConfigError("unknown DVT variant '" + name + "' (known: t2t_vit_12, t2t_vit_14)");
}

DVTImpl::DVTImpl(const DVTOptions& options) : options_(options) { reset(); }

void DVTImpl::reset() {
  const auto& o = options_;
  members_.clear();
  const char* names[3] = {"less_less_token", "less_token", "normal_token"};
  const int64_t split[3][3] = {{14, 8, 3}, {11, 6, 5}, {7, 4, 2}};
  int64_t previous_grid = 0;
  for (int k = 0; k < 3; ++k) {
    T2TViTOptions m;
    m.kernel(split[k][0]).stride(split[k][1]).padding(split[k][2]);
    m.embed_dim(o.embed_dim())
        .token_dim(o.token_dim())
        .depth(o.depth())
        .num_heads(o.num_heads())
        .mlp_ratio(o.mlp_ratio());
    m.num_classes(o.num_classes())
        .drop_path_rate(o.drop_path_rate())
        .init_weights(o.init_weights());
    if (k > 0) {
      m.feature_reuse(o.feature_reuse()).relation_reuse(o.relation_reuse());
      m.upstream_grid(previous_grid).upstream_depth(o.depth());
    }
    previous_grid = m.grid();
    members_.push_back(register_module(names[k], T2TViT(m)));
  }
}

std::vector<torch::Tensor> DVTImpl::forward(const torch::Tensor& x) {
  ReuseState s1, s2;
  auto y1 = members_[0]->forward(x, nullptr, &s1);
  auto y2 = members_[1]->forward(x, &s1, &s2);
  auto y3 = members_[2]->forward(x, &s2, nullptr);
  return {y1, y2, y3};
}

std::pair<torch::Tensor, torch::Tensor> DVTImpl::early_exit(
    const torch::Tensor& x, const std::array<double, 3>& thresholds) {
  const int64_t B = x.size(0);
  auto prediction = torch::full({B}, -1, torch::kLong);
  auto exit = torch::full({B}, -1, torch::kLong);
  auto remaining = torch::arange(B, torch::kLong);  // indices into the batch
  ReuseState state;
  for (size_t k = 0; k < 3 && remaining.numel() > 0; ++k) {
    ReuseState next;
    auto input = k == 0 ? x : x.index_select(0, remaining.to(x.device()));
    auto logits = members_[k]
                      ->forward(input, k == 0 ? nullptr : &state, k < 2 ? &next : nullptr)
                      .to(torch::kCPU);
    auto [conf, pred] = logits.softmax(1).max(1);
    auto done = k == 2 ? torch::ones_like(conf, torch::kBool) : conf.ge(thresholds[k]);
    auto done_idx = done.nonzero().squeeze(1);
    prediction.index_put_({remaining.index_select(0, done_idx)}, pred.index_select(0, done_idx));
    exit.index_put_({remaining.index_select(0, done_idx)},
                    torch::full({done_idx.numel()}, static_cast<int64_t>(k), torch::kLong));
    auto keep = done.logical_not().nonzero().squeeze(1);
    if (k < 2 && keep.numel() > 0) state = next.select(keep.to(x.device()));
    remaining = remaining.index_select(0, keep);
  }
  return {prediction, exit};
}

std::array<double, 3> DVTImpl::cumulative_macs() const {
  std::array<double, 3> out{};
  double sum = 0;
  for (size_t k = 0; k < 3; ++k) out[k] = sum += members_[k]->macs();
  return out;
}

std::array<double, 3> exit_proportions(int p) {
  const double q = p / 20.0;
  std::array<double, 3> out{q, q * q, q * q * q};
  const double s = out[0] + out[1] + out[2];
  for (auto& v : out) v /= s;
  return out;
}

std::array<double, 3> fit_thresholds(const torch::Tensor& confidence,
                                     const std::array<double, 3>& proportions) {
  auto conf = confidence.to(torch::kFloat64).contiguous();
  const int64_t n = conf.size(1);
  std::array<double, 3> T{1e8, 1e8, -1e8};
  std::vector<bool> exited(static_cast<size_t>(n), false);
  auto a = conf.accessor<double, 2>();
  for (int k = 0; k < 2; ++k) {
    auto order = std::get<1>(conf[k].sort(/*dim=*/0, /*descending=*/true));
    auto o = order.accessor<int64_t, 1>();
    const auto out_n = static_cast<int64_t>(
        std::floor(static_cast<double>(n) * proportions[static_cast<size_t>(k)]));
    int64_t count = 0;
    for (int64_t i = 0; i < n && out_n > 0; ++i) {
      if (exited[static_cast<size_t>(o[i])]) continue;
      if (++count == out_n) {
        T[static_cast<size_t>(k)] = a[k][o[i]];
        break;
      }
    }
    for (int64_t i = 0; i < n; ++i)
      if (a[k][i] >= T[static_cast<size_t>(k)]) exited[static_cast<size_t>(i)] = true;
  }
  return T;
}

OperatingPoint evaluate_operating_point(const torch::Tensor& logits, const torch::Tensor& labels,
                                        const std::array<double, 3>& thresholds,
                                        const std::array<double, 3>& cumulative_gmacs) {
  auto [conf, pred] = logits.to(torch::kFloat32).softmax(2).max(2);  // [3, n]
  auto c = conf.to(torch::kFloat64).contiguous();
  auto p = pred.contiguous();
  auto y = labels.to(torch::kLong).contiguous();
  const int64_t n = c.size(1);
  auto ca = c.accessor<double, 2>();
  auto pa = p.accessor<int64_t, 2>();
  auto ya = y.accessor<int64_t, 1>();
  OperatingPoint op;
  op.thresholds = thresholds;
  int64_t correct = 0;
  for (int64_t i = 0; i < n; ++i) {
    int k = 0;
    while (k < 2 && ca[k][i] < thresholds[static_cast<size_t>(k)]) ++k;
    op.exit_fraction[static_cast<size_t>(k)] += 1.0 / static_cast<double>(n);
    correct += pa[k][i] == ya[i];
  }
  op.accuracy = static_cast<double>(correct) / static_cast<double>(n);
  for (size_t k = 0; k < 3; ++k) op.gmacs_per_image += op.exit_fraction[k] * cumulative_gmacs[k];
  return op;
}

}  // namespace det::nn
