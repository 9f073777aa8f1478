// The ShiftViT and ViT trials end to end: a tiny ImageFolder tree (unit), the real MNIST and
// CIFAR-10 (label `data`), and one epoch of the example's MNIST recipe (label `slow`).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "det/core/controller.h"
#include "det/nn/dvt.h"
#include "det/nn/safetensors.h"
#include "det/nn/vit.h"
#include "det/util/error.h"
#include "test_trials.h"

namespace det {
namespace {

TrialResult run_trial(const config::ExperimentConfig& cfg, const std::filesystem::path& dir, std::optional<int64_t> batches = {}) {
  TrialRunOptions opt;
  opt.trial_dir = dir;
  opt.trial_seed = 1;
  opt.hparams = config::sample_hyperparameters(cfg.hyperparameters, *std::make_unique<util::NpRandom>(1));
  opt.show_progress = false;
  opt.max_length_batches = batches;
  TrialController controller(cfg, TrialRegistry::instance().find(cfg.entrypoint), opt);
  return controller.run();
}

// Two classes of real JPEG/PNG files from tests/testdata/images, one corrupt file.
std::filesystem::path make_tree(const std::filesystem::path& root) {
  const std::filesystem::path images = std::string(DET_TEST_DATA_DIR) + "/images";
  for (const char* split : {"train", "val"}) {
    std::filesystem::create_directories(root / split / "a");
    std::filesystem::create_directories(root / split / "b");
    int i = 0;
    for (const char* f : {"rgb.png", "gray.png", "rgb420.jpg", "palette.png"})
      std::filesystem::copy_file(images / f, root / split / "a" / (std::to_string(i++) + "_" + f));
    for (const char* f : {"rgba.png", "gray.jpg", "rgb444.jpg", "big420.jpg"})
      std::filesystem::copy_file(images / f, root / split / "b" / (std::to_string(i++) + "_" + f));
  }
  std::ofstream(root / "train" / "b" / "broken.jpg") << "not a jpeg";
  return root;
}

const char* kTinyShiftViT = R"(
name: shiftvit_tiny
entrypoint: model_def:ShiftViTTrial
data:
  dataset_name: imagenet
  img_size: 32
  num_workers: 0
records_per_epoch: 8
hyperparameters:
  global_batch_size: 4
  model: {n_div: 4, patch_size: 4, embed_dim: 8, depths: [1, 1, 1, 1], mlp_ratio: 2.0, drop_rate: 0.1, drop_path_rate: 0.1,
          norm_layer: GN1, act_layer: GELU, patch_norm: true, use_checkpoint: false}
  optimizer: {opt: adamw, lr: 1.0e-3, opt_eps: 1.0e-8, opt_betas: null, clip_grad: null, momentum: 0.9, weight_decay: 0.05}
  scheduler: {sched: cosine, epochs: 2, lr_noise: null, warmup_lr: 1.0e-6, min_lr: 1.0e-5, warmup_epochs: 1, cooldown_epochs: 0}
  transform: {scale: [0.5, 1.0], ratio: [0.75, 1.33], hflip: 0.5, vflip: 0.0, color_jitter: 0.4, auto_augment: rand-m9-mstd0.5-inc1,
              interpolation: bicubic, re_prob: 0.25, re_mode: pixel, re_count: 1}
searcher:
  name: single
  metric: validation_loss
  max_length:
    epochs: 2
)";

TEST(ShiftViTTrial, TrainsOnAnImageFolderTreeSkippingUndecodableFiles) {
  testing::TempDir tmp;
  auto root = make_tree(tmp.path / "data");
  auto cfg = config::parse_experiment_config(kTinyShiftViT, "tiny.yaml",
                                             {"data.root=" + root.string(), "data.train_dir=train", "data.validation_dir=val",
                                              "data.skip_undecodable=true"});
  auto result = run_trial(cfg, tmp.path / "trial");
  EXPECT_EQ(result.state.batches_trained, 4);  // 2 epochs of 8 records at batch 4
  ASSERT_TRUE(result.last_validation.has_value());
  EXPECT_TRUE((*result.last_validation).contains("accuracy"));
  EXPECT_TRUE((*result.last_validation).contains("validation_loss"));

  // Without skip_undecodable the broken file is an error naming it when it is read.
  auto strict = config::parse_experiment_config(kTinyShiftViT, "tiny.yaml",
                                                {"data.root=" + root.string(), "data.train_dir=train", "data.validation_dir=val",
                                                 "data.skip_undecodable=false", "records_per_epoch=9"});
  try {
    run_trial(strict, tmp.path / "trial2");
    ADD_FAILURE() << "expected a DataError for broken.jpg";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("broken.jpg"), std::string::npos) << e.what();
  }
}

TEST(ShiftViTTrial, ConfigMistakesNameTheKey) {
  testing::TempDir tmp;
  auto root = make_tree(tmp.path / "data");
  auto expect_error = [&](const std::vector<std::string>& overrides, const std::string& needle) {
    std::vector<std::string> all = {"data.root=" + root.string(), "data.train_dir=train", "data.validation_dir=val",
                                    "data.skip_undecodable=true"};
    all.insert(all.end(), overrides.begin(), overrides.end());
    auto cfg = config::parse_experiment_config(kTinyShiftViT, "tiny.yaml", all);
    try {
      run_trial(cfg, tmp.path / "t");
      ADD_FAILURE() << "expected an error naming " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error({"data.dataset_name=svhn"}, "data.dataset_name");
  expect_error({"hyperparameters.optimizer.opt=lamb"}, "hyperparameters.optimizer.opt");
  expect_error({"hyperparameters.scheduler.sched=step"}, "hyperparameters.scheduler.sched");
  expect_error({"hyperparameters.model.act_layer=RELU"}, "hyperparameters.model.act_layer");
  expect_error({"hyperparameters.transform.hfilp=0.5"}, "hyperparameters.transform");
}

const char* kTinyDVT = R"(
name: dvt_tiny
entrypoint: dvt
data:
  dataset_name: imagenet
  num_workers: 0
  transforms:
    train: [{resize: {size: [224, 224]}}, random_horizontal_flip, {normalize: {mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}}]
    validation: [{resize: {size: [224, 224]}}, {normalize: {mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}}]
records_per_epoch: 8
hyperparameters:
  global_batch_size: 4
  model: {variant: t2t_vit_12, embed_dim: 32, depth: 2, num_heads: 2, mlp_ratio: 2.0}
  optimizer: {name: adamw, lr: 1.0e-3, weight_decay: 0.05}
  scheduler: {sched: cosine, epochs: 2, warmup_epochs: 0, min_lr: 1.0e-5, cooldown_epochs: 0}
  report_operating_points: [5, 20]
searcher:
  name: single
  metric: accuracy
  smaller_is_better: false
  max_length:
    batches: 2
)";

TEST(DVTTrial, TrainsAndReportsOperatingPoints) {
  testing::TempDir tmp;
  auto root = make_tree(tmp.path / "data");
  auto cfg = config::parse_experiment_config(kTinyDVT, "dvt.yaml",
                                             {"data.root=" + root.string(), "data.train_dir=train", "data.validation_dir=val",
                                              "data.skip_undecodable=true"});
  auto result = run_trial(cfg, tmp.path / "trial");
  EXPECT_EQ(result.state.batches_trained, 2);
  ASSERT_TRUE(result.last_validation.has_value());
  const auto& v = *result.last_validation;
  for (const char* key : {"accuracy", "accuracy_exit1", "accuracy_exit2", "accuracy_exit3", "validation_loss", "op5_accuracy",
                          "op5_gflops", "op20_accuracy", "op20_gflops"})
    EXPECT_TRUE(v.contains(key)) << key << " in " << v.dump();
  // Costs lie between the first exit's and all three exits' (the tiny cascade: 3 x 2 blocks of width 32).
  auto o = nn::DVTOptions::variant("t2t_vit_12");
  o.embed_dim = 32, o.depth = 2, o.num_heads = 2, o.num_classes = 2, o.init_weights = false;
  auto macs = nn::DVT(o)->cumulative_macs();
  for (const char* key : {"op5_gflops", "op20_gflops"}) {
    EXPECT_GE(v[key].get<double>(), macs[0] / 1e9 - 1e-9) << key;
    EXPECT_LE(v[key].get<double>(), macs[2] / 1e9 + 1e-9) << key;
  }
  ASSERT_FALSE(result.checkpoints.empty());
}

TEST(ShiftViTTrialDataTest, TinyModelLearnsMnist) {
  if (!std::getenv("DET_DATA_DIR")) GTEST_SKIP() << "DET_DATA_DIR not set";
  auto cfg = config::load_experiment_config(std::string(DET_SOURCE_DIR) + "/configs/shiftvit/const_mnist.yaml",
                                            {"hyperparameters.model.embed_dim=16", "hyperparameters.model.depths=[1, 1, 1, 1]",
                                             "hyperparameters.global_batch_size=64", "hyperparameters.scheduler.warmup_epochs=0",
                                             "hyperparameters.model.drop_path_rate=0.0", "hyperparameters.model.drop_rate=0.0"});
  testing::TempDir tmp;
  auto result = run_trial(cfg, tmp.path, 60);
  ASSERT_TRUE(result.last_validation.has_value());
  double accuracy = (*result.last_validation)["accuracy"].get<double>();
  std::printf("tiny ShiftViT, 60 MNIST batches of 64: accuracy %.4f\n", accuracy);
  EXPECT_GE(accuracy, 0.5);
}

TEST(ViTTrialDataTest, TinyViTLearnsCifarAndExportsSafetensors) {
  if (!std::getenv("DET_DATA_DIR")) GTEST_SKIP() << "DET_DATA_DIR not set";
  testing::TempDir tmp;
  auto exported = tmp.path / "vit.safetensors";
  auto cfg = config::load_experiment_config(
      std::string(DET_SOURCE_DIR) + "/configs/vit/scratch_cifar10.yaml",
      {"hyperparameters.model.embed_dim=48", "hyperparameters.model.num_heads=3", "hyperparameters.model.mlp_dim=96",
       "hyperparameters.model.depth=1", "hyperparameters.global_batch_size=64", "hyperparameters.scheduler.warmup_epochs=0",
       "data.export_safetensors=" + exported.string()});
  auto result = run_trial(cfg, tmp.path / "trial", 40);
  ASSERT_TRUE(result.last_validation.has_value());
  double accuracy = (*result.last_validation)["accuracy"].get<double>();
  std::printf("tiny ViT, 40 CIFAR-10 batches of 64: accuracy %.4f\n", accuracy);
  EXPECT_GE(accuracy, 0.15);  // chance is 0.10; this run reaches about 0.21
  nn::ViTOptions o;
  o.img_size = 32, o.patch_size = 4, o.num_classes = 10, o.embed_dim = 48, o.num_heads = 3, o.mlp_dim = 96, o.depth = 1;
  nn::ViT vit(o);
  EXPECT_NE(nn::load_hf_vit(*vit, exported).find("including the head"), std::string::npos);
}

// One epoch of configs/shiftvit/const_mnist.yaml with the warmup removed (the recipe's epoch 0
// runs at warmup_lr 1e-6, so one faithful epoch learns next to nothing) and batches of 128 (468
// steps instead of 117; at 512 one epoch reached 94.8%). About 15 minutes on 2 shared cores
// (docs/performance.md).
TEST(ShiftViTSlowTest, ConstMnistOneEpochReachesNinetyFivePercent) {
  if (!std::getenv("DET_DATA_DIR")) GTEST_SKIP() << "DET_DATA_DIR not set";
  auto cfg = config::load_experiment_config(std::string(DET_SOURCE_DIR) + "/configs/shiftvit/const_mnist.yaml",
                                            {"searcher.max_length.epochs=1", "hyperparameters.scheduler.warmup_epochs=0",
                                             "hyperparameters.global_batch_size=128"});
  testing::TempDir tmp;
  auto start = std::chrono::steady_clock::now();
  auto result = run_trial(cfg, tmp.path);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(result.last_validation.has_value());
  double accuracy = (*result.last_validation)["accuracy"].get<double>();
  std::printf("ShiftViT const_mnist, 1 epoch (no warmup): accuracy %.4f, validation_loss %.4f, %.0f s\n", accuracy,
              (*result.last_validation)["validation_loss"].get<double>(), seconds);
  EXPECT_GE(accuracy, 0.95);
}

}  // namespace
}  // namespace det
