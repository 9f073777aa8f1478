#include "det/optim/adamw.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "det/optim/lr_scheduler.h"
#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::optim {
namespace {

nlohmann::json expected() {
  return nlohmann::json::parse(
      util::read_file(std::string(DET_TEST_DATA_DIR) + "/nn/optim_expected.json"));
}

torch::Tensor vec(const nlohmann::json& j, const std::vector<int64_t>& shape) {
  return torch::tensor(j.get<std::vector<float>>()).reshape(shape);
}

struct TwoParams : torch::nn::Module {
  TwoParams() {
    weight = register_parameter("weight", torch::zeros({3, 4}));
    bias = register_parameter("bias", torch::zeros({4}));
  }
  torch::Tensor weight, bias;
};

// Expected values from torch.optim.AdamW with timm's two groups
// (scripts/testdata/make_optim_expected.py).
TEST(AdamW, MatchesPyTorchWithNoDecayGroups) {
  auto doc = expected();
  ASSERT_EQ(doc["adamw"].size(), 2u);
  for (const auto& c : doc["adamw"]) {
    TwoParams m;
    {
      torch::NoGradGuard g;
      m.weight.copy_(vec(c["weight"], {3, 4}));
      m.bias.copy_(vec(c["bias"], {4}));
    }
    auto betas = c["betas"].get<std::vector<double>>();
    auto opt = make_adamw(m, torch::optim::AdamWOptions(c["lr"].get<double>())
                                 .betas({betas[0], betas[1]})
                                 .eps(c["eps"].get<double>())
                                 .weight_decay(c["weight_decay"].get<double>()));
    ASSERT_EQ(opt->param_groups().size(), 2u);
    EXPECT_EQ(
        static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[0].options()).weight_decay(),
        0.0);
    for (size_t i = 0; i < c["grads"].size(); ++i) {
      m.weight.mutable_grad() = vec(c["grads"][i]["weight"], {3, 4});
      m.bias.mutable_grad() = vec(c["grads"][i]["bias"], {4});
      opt->step();
      EXPECT_LT(
          (m.weight.detach() - vec(c["after"][i]["weight"], {3, 4})).abs().max().item<double>(),
          1e-6)
          << "step " << i;
      EXPECT_LT((m.bias.detach() - vec(c["after"][i]["bias"], {4})).abs().max().item<double>(),
                1e-6)
          << "step " << i;
    }
  }
}

TEST(AdamW, GroupsFollowTimm) {
  torch::nn::Sequential s(torch::nn::Linear(3, 4),
                          torch::nn::LayerNorm(torch::nn::LayerNormOptions({4})),
                          torch::nn::Conv2d(torch::nn::Conv2dOptions(4, 2, 1).bias(false)));
  s->register_parameter("cls_token", torch::zeros({1, 1, 4}));
  s->register_parameter("frozen", torch::zeros({2, 2}), /*requires_grad=*/false);
  auto g = weight_decay_groups(*s.ptr(), {"cls_token"});
  EXPECT_EQ(g.decay.size(), 2u);     // linear and conv weights
  EXPECT_EQ(g.no_decay.size(), 4u);  // linear bias, LN weight and bias, cls_token
}

TEST(AdamW, FromTheExampleSection) {
  torch::nn::Linear lin(2, 2);
  auto opt = make_adamw_from_json(*lin.ptr(), config::Args(nlohmann::json{{"opt", "adamw"},
                                                                          {"lr", 3e-4},
                                                                          {"opt_eps", 1e-8},
                                                                          {"opt_betas", nullptr},
                                                                          {"clip_grad", nullptr},
                                                                          {"momentum", 0.9},
                                                                          {"weight_decay", 0.05}},
                                                           "hyperparameters.optimizer"));
  auto& decay = static_cast<torch::optim::AdamWOptions&>(opt->param_groups()[1].options());
  EXPECT_EQ(decay.weight_decay(), 0.05);
  EXPECT_EQ(decay.lr(), 3e-4);
  EXPECT_EQ(decay.eps(), 1e-8);
  try {
    make_adamw_from_json(*lin.ptr(), config::Args(nlohmann::json{{"opt", "sgd"}, {"lr", 0.1}},
                                                  "hyperparameters.optimizer"));
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("hyperparameters.optimizer.opt"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(make_adamw_from_json(*lin.ptr(),
                                    config::Args(nlohmann::json{{"lr", 0.1}, {"betas", 1}}, "o")),
               ConfigError);
}

TEST(CosineLRScheduler, MatchesTimmPerEpoch) {
  const auto data = expected();  // the range-for must not iterate into a destroyed temporary
  for (const auto& c : data["cosine"]) {
    auto p = torch::ones({1}).requires_grad_(true);
    torch::optim::SGD sgd({p}, torch::optim::SGDOptions(c["base_lr"].get<double>()));
    const auto o = CosineOptions()
                       .t_initial(c["epochs"].get<int64_t>())
                       .lr_min(c["min_lr"].get<double>())
                       .warmup_t(c["warmup_epochs"].get<int64_t>())
                       .warmup_lr_init(c["warmup_lr"].get<double>());
    CosineLRScheduler s(sgd, o);
    const auto lrs = c["lrs"].get<std::vector<double>>();
    for (size_t e = 0; e < lrs.size(); ++e) {
      if (e > 0) s.step();
      EXPECT_NEAR(s.get_last_lr()[0], lrs[e], 1e-15 + 1e-12 * lrs[e])
          << "epoch " << e << " base_lr " << c["base_lr"];
    }
    // Restoring the step count restores the rate.
    torch::optim::SGD sgd2({p}, torch::optim::SGDOptions(c["base_lr"].get<double>()));
    CosineLRScheduler s2(sgd2, o);
    s2.load_state_dict(s.state_dict());
    EXPECT_EQ(s2.get_last_lr()[0], s.get_last_lr()[0]);
  }
}

TEST(CosineLRScheduler, FromTheExampleSection) {
  auto o = CosineOptions::from_json(config::Args(nlohmann::json{{"sched", "cosine"},
                                                                {"epochs", 10},
                                                                {"lr_noise", nullptr},
                                                                {"lr_noise_pct", 0.67},
                                                                {"lr_noise_std", 1.0},
                                                                {"warmup_lr", 1e-6},
                                                                {"min_lr", 0.0},
                                                                {"warmup_epochs", 20},
                                                                {"cooldown_epochs", 20}},
                                                 "hyperparameters.scheduler"));
  EXPECT_EQ(o.total_epochs(), 30);
  EXPECT_EQ(o.warmup_t(), 20);
  auto cosine = [](const nlohmann::json& j) {
    return CosineOptions::from_json(config::Args(j, "s"));
  };
  EXPECT_THROW(cosine({{"sched", "step"}, {"epochs", 3}}), ConfigError);
  EXPECT_THROW(cosine({{"epochs", 3}, {"lr_noise", 0.5}}), ConfigError);
  EXPECT_THROW(cosine({{"warmup_lr", 0.1}}), ConfigError);
}

}  // namespace
}  // namespace det::optim
