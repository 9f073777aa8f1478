#include "det/nn/shiftvit.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "det/nn/safetensors.h"
#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::nn {
namespace {

const std::string kShiftViTData = std::string(DET_TEST_DATA_DIR) + "/nn/";

TEST(ShiftFeat, MovesFourGroupsOnePixelWithZeroFill) {
  // C = 10, n_div 4: g = 2; channels 8, 9 stay.
  auto x = torch::arange(10 * 3 * 4, torch::kFloat32).reshape({1, 10, 3, 4}) + 1;
  auto y = shift_feat(x, 4);
  for (int c = 0; c < 10; ++c)
    for (int h = 0; h < 3; ++h)
      for (int w = 0; w < 4; ++w) {
        float expected;
        auto at = [&](int hh, int ww) {
          return (hh < 0 || hh >= 3 || ww < 0 || ww >= 4) ? 0.0f : x[0][c][hh][ww].item<float>();
        };
        if (c < 2)
          expected = at(h, w + 1);  // left
        else if (c < 4)
          expected = at(h, w - 1);  // right
        else if (c < 6)
          expected = at(h + 1, w);  // up
        else if (c < 8)
          expected = at(h - 1, w);  // down
        else
          expected = at(h, w);
        ASSERT_EQ(y[0][c][h][w].item<float>(), expected) << "c " << c << " h " << h << " w " << w;
      }
  // g is floored: C = 7, n_div 4 -> g = 1, channels 4..6 unchanged.
  auto z = torch::randn({2, 7, 5, 5});
  auto s = shift_feat(z, 4);
  EXPECT_TRUE(torch::equal(s.slice(1, 4), z.slice(1, 4)));
}

TEST(ShiftViT, ParameterCountsOfEveryRegistryVariant) {
  auto counts = nlohmann::json::parse(util::read_file(kShiftViTData + "shiftvit_params.json"));
  // The spec's rounded values (spec/models.md §2.3), so the generated file is checked too.
  const std::map<std::string, double> millions = {
      {"shiftvit_light_tiny", 19.61},  {"shiftvit_r4_tiny", 31.43},  {"shiftvit_r2_tiny", 28.57},
      {"shiftvit_light_small", 33.80}, {"shiftvit_r4_small", 51.52}, {"shiftvit_r2_small", 50.30},
      {"shiftvit_light_base", 59.71},  {"shiftvit_r4_base", 87.27},  {"shiftvit_r2_base", 89.03}};
  ASSERT_EQ(ShiftViTOptions::variant_names().size(), millions.size());
  for (const auto& name : ShiftViTOptions::variant_names()) {
    auto o = ShiftViTOptions::variant(name);
    o.init_weights(false);
    ShiftViT m(o);
    const int64_t n = count_parameters(*m);
    EXPECT_EQ(n, counts.at(name).get<int64_t>()) << name;
    EXPECT_NEAR(static_cast<double>(n) / 1e6, millions.at(name), 0.005) << name;
  }
  EXPECT_THROW(ShiftViTOptions::variant("shiftvit_huge"), ConfigError);
}

TEST(ShiftViT, DeterminedExampleModels) {
  auto counts = nlohmann::json::parse(util::read_file(kShiftViTData + "shiftvit_params.json"));
  nlohmann::json model = {{"n_div", 8},
                          {"patch_size", 2},
                          {"embed_dim", 96},
                          {"depths", {2, 2, 6, 2}},
                          {"mlp_ratio", 4.0},
                          {"drop_rate", 0.12},
                          {"drop_path_rate", 0.4},
                          {"norm_layer", "GN1"},
                          {"act_layer", "GELU"},
                          {"patch_norm", true},
                          {"use_checkpoint", false}};
  ShiftViTOptions mnist;
  mnist.img_size(28).in_chans(1).num_classes(10).init_weights(false);
  mnist.update_from_json({model, "hyperparameters.model"});
  ShiftViT m(mnist);
  EXPECT_EQ(count_parameters(*m), 18842794);
  EXPECT_EQ(count_parameters(*m), counts["determined_mnist"].get<int64_t>());
  m->eval();
  // 28 -> 14 -> 7 -> 3 -> 1 (odd sizes floor).
  EXPECT_EQ(m->forward_features(torch::zeros({1, 1, 28, 28})).sizes(),
            (std::vector<int64_t>{1, 768, 1, 1}));
  EXPECT_EQ(m->forward(torch::zeros({2, 1, 28, 28})).sizes(), (std::vector<int64_t>{2, 10}));
  ShiftViTOptions cifar;
  cifar.img_size(32).num_classes(10).init_weights(false);
  model["n_div"] = 12;
  cifar.update_from_json({model, "hyperparameters.model"});
  EXPECT_EQ(count_parameters(*ShiftViT(cifar)), 18843562);

  ShiftViTOptions bad;
  try {
    bad.update_from_json(
        config::Args(nlohmann::json{{"norm_layer", "BN"}}, "hyperparameters.model"));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("hyperparameters.model.norm_layer"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(bad.update_from_json(config::Args(nlohmann::json{{"depth", {1, 2}}}, "m")),
               ConfigError);
  ShiftViTOptions small;
  small.img_size(8).patch_size(2);  // 4 -> 2 -> 1 -> nothing left to merge
  EXPECT_THROW(ShiftViT{small}, Error);
}

TEST(ShiftViT, InitFollowsSpach) {
  torch::manual_seed(0);
  ShiftViTOptions o;
  o.img_size(32).patch_size(2).num_classes(10);
  ShiftViT m(o);
  auto p = m->named_parameters();
  EXPECT_NEAR(p["layers.2.blocks.3.mlp.fc1.weight"].std().item<double>(), 0.02, 1e-3);
  EXPECT_EQ(p["layers.2.blocks.3.mlp.fc1.bias"].abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::equal(p["norm.weight"], torch::ones({768})));
  EXPECT_EQ(p["layers.0.downsample.reduction.weight"].sizes(),
            (std::vector<int64_t>{192, 96, 2, 2}));
  EXPECT_EQ(p.find("layers.0.downsample.reduction.bias"), nullptr);
  EXPECT_EQ(p.find("layers.3.downsample.norm.weight"), nullptr);
}

// Logits of an independent plain-PyTorch ShiftViT on fixed weights
// (scripts/testdata/make_shiftvit_expected.py).
TEST(ShiftViT, ForwardMatchesPyTorch) {
  auto file = read_safetensors(kShiftViTData + "shiftvit_tiny.safetensors");
  ShiftViTOptions o;
  o.n_div(5).img_size(46).patch_size(2).in_chans(3).num_classes(5).embed_dim(8);
  o.depths({1, 2, 1, 1}).mlp_ratio(2.5).drop_rate(0.3).drop_path_rate(0.5);
  ShiftViT m(o);
  auto x = file.tensors.at("x"), expected = file.tensors.at("logits");
  file.tensors.erase("x");
  file.tensors.erase("logits");
  auto loaded = load_state_dict(*m, file.tensors, "shiftvit_tiny.safetensors");
  EXPECT_EQ(loaded.size(), file.tensors.size());
  m->eval();
  torch::NoGradGuard g;
  auto y = m->forward(x);
  EXPECT_LT((y - expected).abs().max().item<double>(), 1e-4) << y << expected;
  // The examples differ (a constant model would pass a one-example check).
  EXPECT_GT((expected[0] - expected[1]).abs().max().item<double>(), 1e-2);
  // In training, dropout and stochastic depth make it differ.
  m->train();
  EXPECT_GT((m->forward(x) - expected).abs().max().item<double>(), 1e-3);
}

TEST(ShiftViT, TrainsOnATinyProblem) {
  torch::manual_seed(0);
  ShiftViTOptions o;
  o.n_div(8).img_size(16).patch_size(2).in_chans(1).num_classes(2).embed_dim(8);
  o.depths({1, 1, 1, 1}).drop_path_rate(0.0);
  ShiftViT m(o);
  // Class 1 images are bright on the left half.
  auto x = torch::randn({32, 1, 16, 16});
  auto y = torch::randint(0, 2, {32}, torch::kLong);
  x.slice(3, 0, 8).add_(y.view({32, 1, 1, 1}).to(torch::kFloat32) * 2);
  torch::optim::AdamW opt(m->parameters(), torch::optim::AdamWOptions(3e-3));
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    auto loss = torch::cross_entropy_loss(m->forward(x), y);
    if (i == 0) first = loss.item<double>();
    last = loss.item<double>();
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  EXPECT_LT(last, first * 0.2) << "first " << first << " last " << last;
}

}  // namespace
}  // namespace det::nn
