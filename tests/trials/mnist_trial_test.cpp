// The MNIST trial on the real data (label `data`).
#include <gtest/gtest.h>

#include <cstdlib>

#include "../core/test_trials.h"
#include "det/core/controller.h"

namespace det {
namespace {

// configs/mnist/const.yaml with `overrides`, trial seed 1, in a temporary directory.
TrialResult train_const_yaml(const std::vector<std::string>& overrides) {
  auto cfg = config::load_experiment_config(
      std::string(DET_SOURCE_DIR) + "/configs/mnist/const.yaml", overrides);
  testing::TempDir tmp;
  TrialRunOptions opt;
  opt.trial_dir = tmp.path;
  opt.trial_seed = 1;
  util::NpRandom rng(1);
  opt.hparams = config::sample_hyperparameters(cfg.hyperparameters, rng);
  opt.show_progress = false;
  TrialController controller(cfg, TrialRegistry::instance().find(cfg.entrypoint), opt);
  return controller.run();
}

TEST(MnistTrainingDataTest, ConstYamlReachesNinetyEightPercentInOneEpoch) {
  if (!std::getenv("DET_DATA_DIR")) GTEST_SKIP() << "DET_DATA_DIR not set";
  auto result = train_const_yaml({});
  EXPECT_EQ(result.state.batches_trained, 938);  // 60000 / 64, partial last batch included
  ASSERT_TRUE(result.last_validation.has_value());
  double accuracy = (*result.last_validation)["accuracy"].get<double>();
  std::printf("MNIST const.yaml, 1 epoch: accuracy %.4f, validation_loss %.4f\n", accuracy,
              (*result.last_validation)["validation_loss"].get<double>());
  EXPECT_GE(accuracy, 0.98);
}

// bf16 autocast on the CPU (optimizations.mixed_precision: bf16): convolutions and linear layers
// run in bf16, the loss in FP32. Slow (label `slow`) on a CPU without bf16 instructions, where
// LibTorch emulates bf16 arithmetic; MixedPrecision.Bf16HarnessRun* covers the path in CI.
TEST(MnistBf16SlowTest, Bf16AutocastTrainsOnTheCpu) {
  if (!std::getenv("DET_DATA_DIR")) GTEST_SKIP() << "DET_DATA_DIR not set";
  auto result =
      train_const_yaml({"optimizations.mixed_precision=bf16", "searcher.max_length.batches=300",
                        "min_validation_period.batches=300"});
  EXPECT_EQ(result.state.batches_trained, 300);
  ASSERT_TRUE(result.last_validation.has_value());
  double accuracy = (*result.last_validation)["accuracy"].get<double>();
  std::printf("MNIST const.yaml, bf16 autocast, 300 batches: accuracy %.4f\n", accuracy);
  EXPECT_GE(accuracy, 0.95);
}

}  // namespace
}  // namespace det
