// The DVT trial (trials/dvt) end to end on a tiny ImageFolder tree.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "det/core/controller.h"
#include "det/nn/dvt.h"
#include "det/util/error.h"
#include "trial_test_helpers.h"

namespace det {
namespace {
using testing::make_tree;
using testing::run_trial_for;
using testing::TempDir;

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
  auto cfg =
      config::parse_experiment_config(kTinyDVT, "dvt.yaml",
                                      {"data.root=" + root.string(), "data.train_dir=train",
                                       "data.validation_dir=val", "data.skip_undecodable=true"});
  auto result = run_trial_for(cfg, tmp.path / "trial");
  EXPECT_EQ(result.state.batches_trained, 2);
  ASSERT_TRUE(result.last_validation.has_value());
  const auto& v = *result.last_validation;
  for (const char* key :
       {"accuracy", "accuracy_exit1", "accuracy_exit2", "accuracy_exit3", "validation_loss",
        "op5_accuracy", "op5_gflops", "op20_accuracy", "op20_gflops"})
    EXPECT_TRUE(v.contains(key)) << key << " in " << v.dump();
  // Costs lie between the first exit's and all three exits' (the tiny cascade: 3 x 2 blocks of
  // width 32).
  auto o = nn::DVTOptions::variant("t2t_vit_12");
  o.embed_dim(32).depth(2).num_heads(2).num_classes(2).init_weights(false);
  auto macs = nn::DVT(o)->cumulative_macs();
  for (const char* key : {"op5_gflops", "op20_gflops"}) {
    EXPECT_GE(v[key].get<double>(), macs[0] / 1e9 - 1e-9) << key;
    EXPECT_LE(v[key].get<double>(), macs[2] / 1e9 + 1e-9) << key;
  }
  ASSERT_FALSE(result.checkpoints.empty());
}

}  // namespace
}  // namespace det
