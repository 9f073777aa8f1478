// The ViT trial (trials/vit) on the real CIFAR-10 (label `data`), with its safetensors export.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "det/core/controller.h"
#include "det/nn/safetensors.h"
#include "det/nn/vit.h"
#include "det/util/error.h"
#include "trial_test_helpers.h"

namespace det {
namespace {
using testing::make_tree;
using testing::run_trial_for;
using testing::TempDir;

TEST(ViTTrialDataTest, TinyViTLearnsCifarAndExportsSafetensors) {
  if (!std::getenv("DET_DATA_DIR")) GTEST_SKIP() << "DET_DATA_DIR not set";
  testing::TempDir tmp;
  auto exported = tmp.path / "vit.safetensors";
  auto cfg = config::load_experiment_config(
      std::string(DET_SOURCE_DIR) + "/configs/vit/scratch_cifar10.yaml",
      {"hyperparameters.model.embed_dim=48", "hyperparameters.model.num_heads=3",
       "hyperparameters.model.mlp_dim=96", "hyperparameters.model.depth=1",
       "hyperparameters.global_batch_size=64", "hyperparameters.scheduler.warmup_epochs=0",
       "data.export_safetensors=" + exported.string()});
  auto result = run_trial_for(cfg, tmp.path / "trial", 40);
  ASSERT_TRUE(result.last_validation.has_value());
  double accuracy = (*result.last_validation)["accuracy"].get<double>();
  std::printf("tiny ViT, 40 CIFAR-10 batches of 64: accuracy %.4f\n", accuracy);
  EXPECT_GE(accuracy, 0.15);  // chance is 0.10; this run reaches about 0.21
  nn::ViTOptions o;
  o.img_size(32).patch_size(4).num_classes(10).embed_dim(48).num_heads(3).mlp_dim(96).depth(1);
  nn::ViT vit(o);
  EXPECT_NE(nn::load_hf_vit(*vit, exported).find("including the head"), std::string::npos);
}

}  // namespace
}  // namespace det
