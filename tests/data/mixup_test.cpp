#include "det/data/mixup.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "det/util/error.h"

namespace det::data {
namespace {

TEST(Mixup, TargetsAreSmoothedOneHotsMixedWithTheReversedBatch) {
  auto t = mixup_target(torch::tensor({0, 2}), 4, 0.7, 0.1);
  // off = 0.1/4 = 0.025, on = 0.925; row 0 = 0.7*onehot(0) + 0.3*onehot(2).
  EXPECT_NEAR(t[0][0].item<double>(), 0.7 * 0.925 + 0.3 * 0.025, 1e-6);
  EXPECT_NEAR(t[0][2].item<double>(), 0.7 * 0.025 + 0.3 * 0.925, 1e-6);
  EXPECT_NEAR(t[0][1].item<double>(), 0.025, 1e-6);
  EXPECT_NEAR(t.sum(1)[1].item<double>(), 1.0, 1e-6);
}

TEST(Mixup, MixupBlendsWithTheSameLambdaAsTheTargets) {
  Mixup m(MixupOptions().mixup_alpha(1.0).cutmix_alpha(0.0).label_smoothing(0.0).num_classes(3));
  Batch b{torch::stack({torch::zeros({1, 2, 2}), torch::ones({1, 2, 2})}), torch::tensor({0, 1})};
  m.apply(b, 42);
  double lam = b.target[0][0].item<double>();  // image 0 = lam * 0 + (1 - lam) * 1
  EXPECT_GT(lam, 0.0);
  EXPECT_LT(lam, 1.0);
  EXPECT_NEAR(b.data[0].mean().item<double>(), 1.0 - lam, 1e-6);
  EXPECT_NEAR(b.data[1].mean().item<double>(), lam, 1e-6);
  Batch again{torch::stack({torch::zeros({1, 2, 2}), torch::ones({1, 2, 2})}),
              torch::tensor({0, 1})};
  m.apply(again, 42);
  EXPECT_TRUE(torch::equal(again.data, b.data));
}

TEST(Mixup, CutmixPastesABoxAndCorrectsLambdaToItsArea) {
  Mixup m(MixupOptions().mixup_alpha(0.0).cutmix_alpha(1.0).label_smoothing(0.0).num_classes(2));
  int mixed = 0;
  for (uint64_t s = 0; s < 20; ++s) {
    Batch b{torch::stack({torch::zeros({1, 16, 16}), torch::ones({1, 16, 16})}),
            torch::tensor({0, 1})};
    m.apply(b, s);
    double pasted = b.data[0].sum().item<double>() / 256.0;  // fraction of image 0 from image 1
    EXPECT_NEAR(b.target[0][1].item<double>(), pasted, 1e-6) << "seed " << s;
    // Values are exactly 0 or 1: a box, not a blend.
    EXPECT_TRUE(torch::logical_or(b.data.eq(0), b.data.eq(1)).all().item<bool>());
    mixed += pasted > 0;
  }
  EXPECT_GT(mixed, 10);
}

TEST(Mixup, OddBatchAndConfigErrors) {
  Mixup m(MixupOptions().mixup_alpha(1.0).cutmix_alpha(0.0).label_smoothing(0.1).num_classes(3));
  Batch odd{torch::zeros({3, 1, 2, 2}), torch::tensor({0, 1, 2})};
  EXPECT_THROW(m.apply(odd, 1), DataError);
  auto err = [](const char* j) {
    try {
      Mixup::from_json({nlohmann::json::parse(j), "data.mixup"});
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(
      err(R"({"mixup_alpha": 0.8})")
          .find("data.mixup.num_classes: expected an integer from 1 to 10000000, found nothing"),
      std::string::npos);
  EXPECT_NE(err(R"({"mixup_alfa": 0.8, "num_classes": 3})").find("did you mean 'mixup_alpha'"),
            std::string::npos);
  EXPECT_EQ(
      Mixup::from_json({nlohmann::json::parse(R"({"cutmix_alpha": 1.0, "num_classes": 10})"), "x"})
          ->options()
          .cutmix_alpha(),
      1.0);
}

TEST(Mixup, SoftTargetCrossEntropyEqualsCrossEntropyOnOneHots) {
  auto logits = torch::randn({4, 5});
  auto labels = torch::tensor({0, 3, 1, 4});
  auto soft = mixup_target(labels, 5, 1.0, 0.0);
  EXPECT_NEAR(soft_target_cross_entropy(logits, soft).item<double>(),
              torch::cross_entropy_loss(logits, labels).item<double>(), 1e-5);
}

}  // namespace
}  // namespace det::data
