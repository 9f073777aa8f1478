#include "det/nn/layers.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace det::nn {
namespace {

TEST(DropPath, IdentityInEvalAndAtZero) {
  auto x = torch::randn({8, 3, 4, 4});
  DropPath dp(0.5);
  dp->eval();
  EXPECT_TRUE(torch::equal(dp->forward(x), x));
  DropPath zero(0.0);
  zero->train();
  EXPECT_TRUE(torch::equal(zero->forward(x), x));
}

TEST(DropPath, DropsWholeSamplesAndRescalesTheKeptOnes) {
  torch::manual_seed(3);
  auto x = torch::rand({4000, 2, 3}) + 1.0;  // strictly positive
  DropPath dp(0.25);
  dp->train();
  auto y = dp->forward(x);
  int64_t dropped = 0;
  for (int64_t i = 0; i < x.size(0); ++i) {
    auto yi = y[i], xi = x[i];
    if (yi.abs().sum().item<float>() == 0.0f) {
      ++dropped;
    } else {
      ASSERT_TRUE(torch::allclose(yi, xi / 0.75))
          << "sample " << i << " kept but not scaled by 1/keep";
    }
  }
  // Binomial(4000, 0.25): mean 1000, sd ~27; 6 sd either side.
  EXPECT_NEAR(static_cast<double>(dropped), 1000.0, 165.0);
  // Gradients flow only through the kept samples.
  auto xg = torch::ones({16, 3}, torch::requires_grad());
  dp->forward(xg).sum().backward();
  auto g = xg.grad();
  for (int64_t i = 0; i < 16; ++i) {
    auto v = g[i][0].item<float>();
    EXPECT_TRUE(v == 0.0f || std::abs(v - 1.0f / 0.75f) < 1e-6f);
  }
}

TEST(DropPath, RatesAreLinspace) {
  auto r = drop_path_rates(0.1, 12);
  ASSERT_EQ(r.size(), 12u);
  EXPECT_EQ(r.front(), 0.0);
  EXPECT_NEAR(r.back(), 0.1, 1e-7);
  EXPECT_NEAR(r[5], 0.1 * 5 / 11, 1e-7);
}

TEST(TruncNormal, MomentsAndBounds) {
  torch::manual_seed(0);
  auto t = trunc_normal_(torch::empty({200000}), 0.0, 0.02);
  EXPECT_NEAR(t.mean().item<double>(), 0.0, 5e-4);
  EXPECT_NEAR(t.std().item<double>(), 0.02, 5e-4);
  // Narrow bounds do truncate: N(0,1) on [-0.5, 1].
  auto u = trunc_normal_(torch::empty({100000}), 0.0, 1.0, -0.5, 1.0);
  EXPECT_GE(u.min().item<double>(), -0.5);
  EXPECT_LE(u.max().item<double>(), 1.0);
  // Mean of N(0,1) truncated to [-0.5, 1]: (phi(-0.5) - phi(1)) / (Phi(1) - Phi(-0.5)).
  auto phi = [](double x) { return std::exp(-x * x / 2) / std::sqrt(2 * M_PI); };
  auto Phi = [](double x) { return 0.5 * (1 + std::erf(x / std::sqrt(2.0))); };
  EXPECT_NEAR(u.mean().item<double>(), (phi(-0.5) - phi(1.0)) / (Phi(1.0) - Phi(-0.5)), 0.01);
}

TEST(InitTruncNormal, WeightsBiasesAndNorms) {
  torch::nn::Sequential s(torch::nn::Linear(64, 512), layer_norm(512, 1e-6), group_norm1(4),
                          torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 256, 3)));
  init_trunc_normal(*s.ptr(), 0.02);
  auto lin = s[0]->as<torch::nn::Linear>();
  EXPECT_NEAR(lin->weight.std().item<double>(), 0.02, 1e-3);
  EXPECT_EQ(lin->bias.abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(s[1]->as<torch::nn::LayerNorm>()->weight, torch::ones({512})));
  EXPECT_EQ(s[1]->as<torch::nn::LayerNorm>()->options.eps(), 1e-6);
  EXPECT_TRUE(torch::equal(s[2]->as<torch::nn::GroupNorm>()->weight, torch::ones({4})));
  EXPECT_NEAR(s[3]->as<torch::nn::Conv2d>()->weight.std().item<double>(), 0.02, 1e-3);
}

TEST(Gelu, IsTheExactErfForm) {
  auto x = torch::linspace(-4, 4, 81, torch::kFloat64);
  auto expected = x * 0.5 * (1 + torch::erf(x / std::sqrt(2.0)));
  EXPECT_LT((det::nn::gelu(x) - expected).abs().max().item<double>(), 1e-12);
  // The tanh approximation differs by ~1e-3 around |x| = 2: make sure that is not what we run.
  auto tanh_form = 0.5 * x * (1 + torch::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x.pow(3))));
  EXPECT_GT((det::nn::gelu(x) - tanh_form).abs().max().item<double>(), 1e-5);
}

TEST(GroupNorm1, NormalizesOverChannelsAndSpace) {
  auto x = torch::randn({2, 6, 5, 5}) * 3 + 1;
  auto gn = group_norm1(6);
  auto y = gn->forward(x);
  auto flat = y.reshape({2, -1});
  EXPECT_LT(flat.mean(1).abs().max().item<double>(), 1e-5);
  EXPECT_NEAR(flat.var(1, /*unbiased=*/false).mean().item<double>(), 1.0, 1e-3);
  EXPECT_EQ(gn->options.eps(), 1e-5);
}

TEST(SinusoidTable, MatchesTheFormula) {
  auto t = sinusoid_table(50, 64);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{1, 50, 64}));
  EXPECT_EQ(t[0][0][0].item<float>(), 0.0f);
  EXPECT_EQ(t[0][0][1].item<float>(), 1.0f);
  EXPECT_NEAR(t[0][7][10].item<double>(), std::sin(7 / std::pow(10000.0, 10.0 / 64)), 1e-6);
  EXPECT_NEAR(t[0][7][11].item<double>(), std::cos(7 / std::pow(10000.0, 10.0 / 64)), 1e-6);
}

TEST(Mlp, LinearAndConvFormsAgree) {
  torch::manual_seed(1);
  Mlp lin(MlpOptions(6, 10));
  Mlp conv(MlpOptions(6, 10).conv(true));
  {
    torch::NoGradGuard g;
    auto lp = lin->named_parameters(), cp = conv->named_parameters();
    for (const auto& name : {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"})
      cp[name].copy_(lp[name].view_as(cp[name]));
  }
  auto x = torch::randn({2, 6, 3, 4});
  auto a = lin->forward(x.permute({0, 2, 3, 1})).permute({0, 3, 1, 2});
  auto b = conv->forward(x);
  EXPECT_TRUE(torch::allclose(a, b, 1e-5, 1e-6));
  EXPECT_EQ(count_parameters(*lin), 6 * 10 + 10 + 10 * 6 + 6);
}

TEST(Attention, MatchesAHandWrittenSoftmaxAttention) {
  torch::manual_seed(2);
  Attention attn(AttentionOptions(8, 2).qkv_bias(true));
  attn->eval();
  auto x = torch::randn({3, 5, 8});
  torch::Tensor logits;
  auto y = attn->forward_with_logits(x, {}, &logits);
  // Reference: head h uses rows [h*4, h*4+4) of q, k and v.
  auto qkv = torch::nn::functional::linear(x, attn->qkv->weight, attn->qkv->bias);
  auto q = qkv.slice(2, 0, 8), k = qkv.slice(2, 8, 16), v = qkv.slice(2, 16, 24);
  std::vector<torch::Tensor> heads;
  for (int h = 0; h < 2; ++h) {
    auto qh = q.slice(2, h * 4, h * 4 + 4), kh = k.slice(2, h * 4, h * 4 + 4),
         vh = v.slice(2, h * 4, h * 4 + 4);
    auto a = torch::softmax(torch::bmm(qh, kh.transpose(1, 2)) / 2.0, -1);
    heads.push_back(torch::bmm(a, vh));
    EXPECT_TRUE(
        torch::allclose(logits.select(1, h), torch::bmm(qh, kh.transpose(1, 2)) / 2.0, 1e-5, 1e-6));
  }
  auto expected = attn->proj->forward(torch::cat(heads, 2));
  EXPECT_TRUE(torch::allclose(y, expected, 1e-5, 1e-6));
  // A logit bias shifts the pre-softmax logits.
  auto bias = torch::randn({3, 2, 5, 5});
  torch::Tensor logits2;
  attn->forward_with_logits(x, bias, &logits2);
  EXPECT_TRUE(torch::allclose(logits2, logits + bias, 1e-5, 1e-6));
  EXPECT_THROW(Attention(AttentionOptions(10, 3)), std::exception);
}

}  // namespace
}  // namespace det::nn
