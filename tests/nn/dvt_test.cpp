#include "det/nn/dvt.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>

#include "det/nn/safetensors.h"
#include "det/util/error.h"

namespace det::nn {
namespace {

const std::string kDvtData = std::string(DET_TEST_DATA_DIR) + "/nn/";

DVTOptions tiny_dvt() {
  DVTOptions o;
  o.embed_dim(32).depth(2).num_heads(2).mlp_ratio(2.0).num_classes(5).drop_path_rate(0.0);
  return o;
}

TEST(TokenPerformer, MatchesTheFormula) {
  torch::manual_seed(0);
  TokenPerformer tp(12, 64);
  tp->eval();
  // w: 32 x 64, rows orthogonal with norm sqrt(32), not trainable but in the state dict.
  EXPECT_EQ(tp->w.sizes(), (std::vector<int64_t>{32, 64}));
  EXPECT_FALSE(tp->w.requires_grad());
  EXPECT_TRUE(torch::allclose(torch::matmul(tp->w, tp->w.t()), 32 * torch::eye(32), 1e-4, 1e-3));
  EXPECT_TRUE(tp->named_parameters().contains("w"));
  auto x = torch::randn({2, 5, 12});
  auto y = tp->forward(x);
  // Independent evaluation: y = v + proj(phi(q) (phi(k)^T v) / (phi(q) sum_t phi(k))); out = y +
  // mlp(LN(y)).
  auto p = tp->named_parameters();
  auto h = torch::layer_norm(x, {12}, p["norm1.weight"], p["norm1.bias"], 1e-5);
  auto kqv = torch::nn::functional::linear(h, p["kqv.weight"], p["kqv.bias"]);
  auto k = kqv.slice(2, 0, 64), q = kqv.slice(2, 64, 128), v = kqv.slice(2, 128, 192);
  auto phi = [&](const torch::Tensor& z) {
    return torch::exp(torch::einsum("bti,mi->btm", {z, tp->w}) - (z * z).sum(-1, true) / 2) /
           std::sqrt(32.0);
  };
  auto kp = phi(k), qp = phi(q);
  auto D = torch::einsum("bti,bi->bt", {qp, kp.sum(1)}).unsqueeze(2);
  auto kptv = torch::einsum("bin,bim->bnm", {v, kp});
  auto att = torch::einsum("bti,bni->btn", {qp, kptv}) / (D + 1e-8);
  auto yy = v + torch::nn::functional::linear(att, p["proj.weight"], p["proj.bias"]);
  auto m = torch::layer_norm(yy, {64}, p["norm2.weight"], p["norm2.bias"], 1e-5);
  m = torch::nn::functional::linear(
      torch::gelu(torch::nn::functional::linear(m, p["mlp.0.weight"], p["mlp.0.bias"])),
      p["mlp.2.weight"], p["mlp.2.bias"]);
  EXPECT_TRUE(torch::allclose(y, yy + m, 1e-4, 1e-5));
}

// Parameter counts from an analytic count over the reference's layer shapes (models/t2t_vit.py,
// transformer_block.py, token_performer.py); the spec's rounded README values where it has them.
TEST(DVT, ParameterCounts) {
  T2TViTOptions
      standalone;  // T2T-ViT-12: 6.9M in the README (the non-trainable w and pos_embed included)
  standalone.init_weights(false);
  EXPECT_EQ(count_parameters(*T2TViT(standalone)), 6941902);
  standalone.embed_dim(384).depth(14).num_heads(6).mlp_ratio(3);  // 21.5M
  EXPECT_EQ(count_parameters(*T2TViT(standalone)), 21545550);
  const std::vector<std::pair<std::string, std::array<int64_t, 3>>> cases = {
      {"t2t_vit_12", {6989824, 7744510, 7727182}}, {"t2t_vit_14", {21574656, 23156110, 23151070}}};
  for (const auto& [name, counts] : cases) {
    auto o = DVTOptions::variant(name);
    o.init_weights(false);
    DVT dvt(o);
    int64_t total = 0;
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(count_parameters(*dvt->member(k)), counts[k]) << name << " exit " << k;
      total += counts[k];
    }
    EXPECT_EQ(count_parameters(*dvt), total);
  }
  // spec §4.7 (rounded): 6.99M / 7.74M / 7.73M, total 22.5M; 21.6M / 23.2M / 23.2M, total 67.9M.
  EXPECT_NEAR((6989824 + 7744510 + 7727182) / 1e6, 22.5, 0.05);
  EXPECT_NEAR((21574656 + 23156110 + 23151070) / 1e6, 67.9, 0.05);
  EXPECT_THROW(DVTOptions::variant("t2t_vit_19"), ConfigError);
}

TEST(DVT, MultiplyAddsPerExitMatchTheSpec) {
  // spec/models.md §4.7: cumulative 0.47G / 1.45G / 3.46G (T2T-12), 1.20G / 3.82G / 9.26G (T2T-14);
  // standalone T2T-ViT-12 1.76G, T2T-ViT-14 4.78G.
  const std::vector<std::pair<std::string, std::array<double, 3>>> cases = {
      {"t2t_vit_12", {0.47, 1.45, 3.46}}, {"t2t_vit_14", {1.20, 3.82, 9.26}}};
  for (const auto& [name, expected] : cases) {
    auto o = DVTOptions::variant(name);
    o.init_weights(false);
    auto macs = DVT(o)->cumulative_macs();
    for (size_t k = 0; k < 3; ++k)
      EXPECT_NEAR(macs[k] / 1e9, expected[k], 0.005) << name << " exit " << k;
  }
  T2TViTOptions t12;
  t12.init_weights(false);
  EXPECT_NEAR(T2TViT(t12)->macs() / 1e9, 1.76, 0.005);
}

TEST(DVT, ThreeExitsWithReuse) {
  torch::manual_seed(1);
  DVT dvt(tiny_dvt());
  EXPECT_EQ(dvt->member(0)->options().grid(), 7);
  EXPECT_EQ(dvt->member(1)->options().grid(), 10);
  EXPECT_EQ(dvt->member(2)->options().grid(), 14);
  auto names = dvt->named_parameters();
  for (const char* key : {"less_less_token.tokens_to_token.attention1.kqv.weight",
                          "less_token.blocks.1.feature_resuse_mlp.1.fc2.weight",
                          "normal_token.relation_reuse_conv.2.weight", "normal_token.pos_embed",
                          "less_token.tokens_to_token.attention2.w"})
    EXPECT_TRUE(names.contains(key)) << key;
  EXPECT_FALSE(names.contains("less_less_token.relation_reuse_conv.0.weight"));
  EXPECT_EQ(names["less_token.tokens_to_token.attention1.kqv.weight"].size(1), 3 * 11 * 11);
  auto x = torch::randn({3, 3, 224, 224});
  auto outs = dvt->forward(x);
  ASSERT_EQ(outs.size(), 3u);
  for (const auto& o : outs) EXPECT_EQ(o.sizes(), (std::vector<int64_t>{3, 5}));
  // The summed loss trains all three members, the first through the reuse paths too.
  auto loss = torch::cross_entropy_loss(outs[2], torch::tensor({0, 1, 2}));
  loss.backward();
  EXPECT_GT(names["less_less_token.blocks.1.mlp.fc2.weight"].grad().abs().sum().item<double>(),
            0.0);
}

TEST(DVT, EarlyExitRunsLaterExitsOnlyWhereNeededAndAgreesWithTheFullCascade) {
  torch::manual_seed(2);
  DVT dvt(tiny_dvt());
  dvt->eval();
  torch::NoGradGuard g;
  auto x = torch::randn({8, 3, 224, 224});
  auto outs = dvt->forward(x);
  auto logits = torch::stack(outs);  // [3, 8, 5]
  auto conf = std::get<0>(logits.softmax(2).max(2));
  // Thresholds halfway between confidences, so no example sits on a threshold.
  auto mid = [&](int k, int j) {
    auto s = std::get<0>(conf[k].sort(0, true));
    return (s[j].item<double>() + s[j + 1].item<double>()) / 2;
  };
  std::array<double, 3> T{mid(0, 2), mid(1, 3), -1e8};
  auto [pred, exit] = dvt->early_exit(x, T);
  auto op = evaluate_operating_point(logits, torch::zeros({8}, torch::kLong), T, {1, 2, 3});
  for (int64_t i = 0; i < 8; ++i) {
    int k = 0;
    while (k < 2 && conf[k][i].item<double>() < T[static_cast<size_t>(k)]) ++k;
    EXPECT_EQ(exit[i].item<int64_t>(), k) << "example " << i;
    EXPECT_EQ(pred[i].item<int64_t>(), logits[k][i].argmax().item<int64_t>()) << "example " << i;
  }
  EXPECT_NEAR(op.exit_fraction[0], 3.0 / 8, 1e-12);
  // Everyone leaves at exit 1 / at exit 3.
  auto all_first = dvt->early_exit(x, {-1.0, -1.0, -1e8}).second;
  EXPECT_TRUE(torch::equal(all_first, torch::zeros({8}, torch::kLong)));
  auto [p3, e3] = dvt->early_exit(x, {2.0, 2.0, -1e8});
  EXPECT_TRUE(torch::equal(e3, torch::full({8}, 2, torch::kLong)));
  EXPECT_TRUE(torch::equal(p3, outs[2].argmax(1)));
}

// Logits of all three exits of an independent plain-PyTorch DVT on fixed weights
// (scripts/testdata/make_dvt_expected.py, written from spec/models.md §4): the real 224 px
// geometry (7x7, 10x10, 14x14 tokens, so the nearest upsample to 14x14 / 20x20 before the average
// pool is used) with feature and relationship reuse, on a narrow, shallow cascade.
TEST(DVT, ForwardMatchesPyTorch) {
  auto file = read_safetensors(kDvtData + "dvt_tiny.safetensors");
  DVTOptions o;
  o.embed_dim(16).depth(2).num_heads(2).mlp_ratio(2.0).num_classes(5).token_dim(8);
  DVT m(o);
  auto& t = file.tensors;
  // The fixed sinusoid position tables are the reference's, before anything is loaded.
  auto params = m->named_parameters();
  for (const char* name :
       {"less_less_token.pos_embed", "less_token.pos_embed", "normal_token.pos_embed"}) {
    ASSERT_EQ(params[name].sizes(), t.at(name).sizes()) << name;
    EXPECT_LT((params[name] - t.at(name)).abs().max().item<double>(), 1e-6) << name;
  }
  // The 224 px inputs are stored at 56 px (nearest upsample x4); weights as float16-exact F16.
  auto x = t.at("x_small").to(torch::kFloat32).repeat_interleave(4, 2).repeat_interleave(4, 3);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{3, 3, 224, 224}));
  std::vector<torch::Tensor> expected;
  for (int k = 0; k < 3; ++k) {
    expected.push_back(t.at("logits" + std::to_string(k)));
    t.erase("logits" + std::to_string(k));
  }
  t.erase("x_small");
  std::map<std::string, torch::Tensor> weights;
  for (const auto& [name, value] : t) weights[name] = value.to(torch::kFloat32);
  auto loaded = load_state_dict(*m, weights, "dvt_tiny.safetensors");
  EXPECT_EQ(loaded.size(), weights.size());
  EXPECT_EQ(loaded.size(), m->named_parameters().size() + m->named_buffers().size());
  m->eval();
  torch::NoGradGuard g;
  auto y = m->forward(x);
  ASSERT_EQ(y.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    ASSERT_EQ(y[k].sizes(), expected[k].sizes());
    const double diff = (y[k] - expected[k]).abs().max().item<double>();
    std::printf("[          ] DVT exit %zu: max |C++ - PyTorch| = %.3g\n", k + 1, diff);
    EXPECT_LT(diff, 1e-4) << "exit " << k + 1 << "\n" << y[k] << "\n" << expected[k];
    // The examples differ (a constant model would pass a one-example check).
    EXPECT_GT((expected[k][0] - expected[k][1]).abs().max().item<double>(), 1e-2)
        << "exit " << k + 1;
    EXPECT_GT((expected[k][1] - expected[k][2]).abs().max().item<double>(), 1e-2)
        << "exit " << k + 1;
  }
  // Never confident: everyone reaches exit 3 through the reuse paths with the same predictions.
  auto [pred, exit] = m->early_exit(x, {2.0, 2.0, -1e8});
  EXPECT_TRUE(torch::equal(exit, torch::full({3}, 2, torch::kLong)));
  EXPECT_TRUE(torch::equal(pred, expected[2].argmax(1)));
  // In training, stochastic depth and the performers' dropout make it differ.
  m->train();
  EXPECT_GT((m->forward(x)[2] - expected[2]).abs().max().item<double>(), 1e-3);
}

TEST(DVT, ThresholdFittingAsTheReference) {
  auto p = exit_proportions(20);
  EXPECT_NEAR(p[0], 1.0 / 3, 1e-12);
  auto p40 = exit_proportions(40);  // q = 2: 2, 4, 8 over 14
  EXPECT_NEAR(p40[0], 2.0 / 14, 1e-12);
  EXPECT_NEAR(p40[2], 8.0 / 14, 1e-12);
  // 10 examples; half should leave at exit 1, 30% at exit 2.
  auto conf = torch::tensor({{0.95, 0.2, 0.9, 0.3, 0.85, 0.4, 0.8, 0.5, 0.75, 0.1},
                             {0.5, 0.9, 0.5, 0.8, 0.5, 0.7, 0.99, 0.6, 0.5, 0.65}},
                            torch::kFloat64);
  conf = torch::cat({conf, torch::zeros({1, 10}, torch::kFloat64)});
  auto T = fit_thresholds(conf, {0.5, 0.3, 0.2});
  EXPECT_DOUBLE_EQ(T[0], 0.75);  // the 5th most confident at exit 1: examples 0, 2, 4, 6, 8 exit
  // Remaining 1, 3, 5, 7, 9 with exit-2 confidences 0.9, 0.8, 0.7, 0.6, 0.65: the 3rd is 0.7
  // (example 6's 0.99 has already exited).
  EXPECT_DOUBLE_EQ(T[1], 0.7);
  EXPECT_EQ(T[2], -1e8);
  // A proportion that rounds to no example keeps everyone.
  EXPECT_EQ(fit_thresholds(conf, {0.05, 0.05, 0.9})[0], 1e8);
}

TEST(DVT, OperatingPointAccuracyAndCost) {
  // 4 examples, 2 classes; logits chosen so exit confidences are clear.
  auto logits = torch::zeros({3, 4, 2});
  logits[0][0][0] = 5;    // ex 0: exit 1 confident, correct (label 0)
  logits[0][1][1] = 5;    // ex 1: exit 1 confident, wrong (label 0)
  logits[1][2][1] = 5;    // ex 2: exit 2 confident, correct (label 1)
  logits[2][3][0] = 0.1;  // ex 3: falls to exit 3, predicts 0, label 1: wrong
  auto op = evaluate_operating_point(logits, torch::tensor({0, 0, 1, 1}), {0.9, 0.9, -1e8},
                                     {1.0, 2.0, 4.0});
  EXPECT_DOUBLE_EQ(op.exit_fraction[0], 0.5);
  EXPECT_DOUBLE_EQ(op.exit_fraction[1], 0.25);
  EXPECT_DOUBLE_EQ(op.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(op.gmacs_per_image, 0.5 * 1 + 0.25 * 2 + 0.25 * 4);
}

}  // namespace
}  // namespace det::nn
