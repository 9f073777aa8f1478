#include "det/core/context.h"

#include <gtest/gtest.h>

#include "det/config/experiment_config.h"
#include "det/core/registry.h"
#include "det/core/trial.h"
#include "det/util/error.h"
#include "support/test_support.h"
#include "test_trials.h"

namespace det {
namespace {
using testing::make_config;

TEST(Context, HparamErrorsNameKeyAndFile) {
  auto cfg = make_config("onevar", "", 4);
  TrialContext ctx(cfg, {{"lr", 0.1}, {"name", "x"}, {"model", {{"depth", 3}}}}, 1, 1, torch::kCPU,
                   nullptr);
  EXPECT_EQ(ctx.hparam("lr").as<double>(), 0.1);
  EXPECT_EQ(ctx.hparam("model.depth").as<int>(), 3);
  EXPECT_EQ(ctx.hparam("model").get<int>("depth"), 3);
  EXPECT_TRUE(ctx.has_hparam("model.depth"));
  EXPECT_FALSE(ctx.has_hparam("missing"));
  try {
    ctx.hparam("lrr");
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'lrr' is not defined in test.yaml"), std::string::npos) << m;
    EXPECT_NE(m.find("did you mean 'lr'"), std::string::npos) << m;
  }
  try {
    ctx.hparam("name").as<double>();
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("hyperparameters.name: expected a number, found 'x'"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ctx.hparam("lr").as<int>(), ConfigError);
}

TEST(Context, StopIsRequestedByAVerbAndReadByANoun) {
  auto cfg = make_config("onevar", "", 4);
  TrialContext ctx(cfg, {{"lr", 0.1}}, 1, 1, torch::kCPU, nullptr);
  EXPECT_FALSE(ctx.stop_requested());
  ctx.request_stop();
  EXPECT_TRUE(ctx.stop_requested());
}

}  // namespace
}  // namespace det

// hparam(name) and data(): the typed views of config sections a trial reads, and the trials'
// use of them (data.num_workers is bounded before any data file is read).
namespace det {
namespace {

const char* kConfig = R"(name: args
entrypoint: mnist
data:
  num_workers: 100000
  root: 7
hyperparameters:
  global_batch_size: 4
  optimizer:
    type: const
    val: {name: sgd, lr: fast}
  dropout: {type: double, minval: 0.1, maxval: 0.5}
searcher: {name: single, metric: loss, max_length: {batches: 1}}
)";

nlohmann::json sample(const config::ExperimentConfig& cfg) {
  util::NpRandom rng(1);
  return config::sample_hyperparameters(cfg.hyperparameters, rng);
}

TEST(ContextArgs, ViewsNameTheFilePosition) {
  auto cfg = config::parse_experiment_config(kConfig, "exp.yaml");
  TrialContext ctx(cfg, sample(cfg), 1, 1, torch::kCPU, nullptr);
  auto opt = ctx.hparam("optimizer");
  EXPECT_EQ(opt.path(), "hyperparameters.optimizer");
  EXPECT_EQ(opt.get<std::string>("name"), "sgd");
  EXPECT_EQ(test::error_of<ConfigError>([&] { opt.get<double>("lr"); }),
            "exp.yaml:10:26: hyperparameters.optimizer.lr: expected a number, found 'fast'");
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              ctx.hparam("dropout").as<double>(config::Range{0.6, 1});
            }).substr(0, 40),
            "exp.yaml:11:12: hyperparameters.dropout:");
  EXPECT_NE(
      test::error_of<ConfigError>([&] { ctx.hparam("optimzer"); }).find("did you mean 'optimizer'"),
      std::string::npos);
  auto data = ctx.data();
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              data.get<int>("num_workers", 2, config::Range{0, 256});
            }),
            "exp.yaml:4:16: data.num_workers: expected an integer from 0 to 256, found 100000");
}

TEST(ContextArgs, TrialsBoundNumWorkersBeforeReadingData) {
  // MNIST, CIFAR-10 and the vision trials (through trials/common/vision_data) read
  // data.num_workers with a range: 100000 threads are a ConfigError naming the line, not a crash.
  const std::vector<std::pair<std::string, std::string>> trials = {
      {"mnist",
       "  learning_rate: 1.0\n  n_filters1: 4\n  n_filters2: 4\n  dropout1: 0.1\n  dropout2: "
       "0.1\n"},
      {"cifar10",
       "  learning_rate: 0.001\n  learning_rate_decay: 0.0\n  layer1_dropout: 0.1\n  "
       "layer2_dropout: 0.1\n"
       "  layer3_dropout: 0.1\n"},
      {"shiftvit",
       "  model: {n_div: 4, patch_size: 2, embed_dim: 8, depths: [1, 1, 1, 1]}\n"
       "  optimizer: {opt: adamw, lr: 0.001}\n  scheduler: {sched: cosine, epochs: 2}\n"},
  };
  for (const auto& [entrypoint, hparams] : trials) {
    const std::string yaml =
        "entrypoint: " + entrypoint +
        "\ndata:\n  dataset_name: mnist\n  root: /nonexistent\n  num_workers: 100000\n"
        "hyperparameters:\n  global_batch_size: 4\n" +
        hparams + "searcher: {name: single, metric: loss, max_length: 1}\n";
    auto cfg = config::parse_experiment_config(yaml, "exp.yaml");
    TrialContext ctx(cfg, sample(cfg), 1, 1, torch::kCPU, nullptr);
    auto trial = TrialRegistry::instance().find(entrypoint)(ctx);
    EXPECT_EQ(test::error_of<ConfigError>([&] { trial->build_training_data_loader(); }),
              "exp.yaml:5:16: data.num_workers: expected an integer from 0 to 256, found 100000")
        << entrypoint;
  }
}

TEST(ContextArgs, DataRootMustBeAString) {
  auto cfg = config::parse_experiment_config(
      kConfig, "exp.yaml", {"data.num_workers=0", "hyperparameters.optimizer.val.lr=0.1"});
  auto hp = sample(cfg);
  hp["learning_rate"] = 1.0, hp["n_filters1"] = 4, hp["n_filters2"] = 4, hp["dropout1"] = 0.1,
  hp["dropout2"] = 0.1;
  TrialContext ctx(cfg, hp, 1, 1, torch::kCPU, nullptr);
  auto trial = TrialRegistry::instance().find("mnist")(ctx);
  EXPECT_EQ(test::error_of<ConfigError>([&] { trial->build_training_data_loader(); }),
            "exp.yaml:5:9: data.root: expected a string, found 7");
}

}  // namespace
}  // namespace det
