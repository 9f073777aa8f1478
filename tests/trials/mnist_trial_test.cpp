// The MNIST trial on the real data (label `data`).
#include <gtest/gtest.h>

#include <cstdlib>

#include "../core/test_trials.h"
#include "det/core/controller.h"

namespace det {
namespace {

TEST(MnistTrainingDataTest, ConstYamlReachesNinetyEightPercentInOneEpoch) {
  if (!std::getenv("DET_DATA_DIR")) GTEST_SKIP() << "DET_DATA_DIR not set";
  auto cfg =
      config::load_experiment_config(std::string(DET_SOURCE_DIR) + "/configs/mnist/const.yaml");
  testing::TempDir tmp;
  TrialRunOptions opt;
  opt.trial_dir = tmp.path;
  opt.trial_seed = 1;
  opt.hparams =
      config::sample_hyperparameters(cfg.hyperparameters, *std::make_unique<util::NpRandom>(1));
  opt.show_progress = false;
  TrialController controller(cfg, TrialRegistry::instance().find(cfg.entrypoint), opt);
  auto result = controller.run();
  EXPECT_EQ(result.state.batches_trained, 938);  // 60000 / 64, partial last batch included
  ASSERT_TRUE(result.last_validation.has_value());
  double accuracy = (*result.last_validation)["accuracy"].get<double>();
  std::printf("MNIST const.yaml, 1 epoch: accuracy %.4f, validation_loss %.4f\n", accuracy,
              (*result.last_validation)["validation_loss"].get<double>());
  EXPECT_GE(accuracy, 0.98);
}

}  // namespace
}  // namespace det
