#include "det/experiment/tensorboard_log.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "det/util/fs.h"

namespace det::experiment {
namespace {
using json = nlohmann::json;
using Info = record::tensorboard::hparams::HParamInfo;

TEST(TensorBoardLog, FlattensHyperparametersIntoColumnsWithTheirDomains) {
  config::HyperparameterSpace space;
  space["lr"].type = config::Hyperparameter::Type::kLog;
  space["lr"].minval = -4;
  space["lr"].maxval = -1;
  space["lr"].base = 10;
  space["layers"].type = config::Hyperparameter::Type::kInt;
  space["layers"].minval = 1;
  space["layers"].maxval = 4;
  space["act"].type = config::Hyperparameter::Type::kCategorical;
  space["act"].vals = {"relu", 3};
  space["opt"].type = config::Hyperparameter::Type::kNested;
  space["opt"].nested["beta"].val = 0.9;
  space["opt"].nested["amsgrad"].val = true;
  const auto infos = hparam_infos(space);
  ASSERT_EQ(infos.size(), 5u);
  EXPECT_EQ(infos[0].name, "act");
  EXPECT_EQ(infos[0].type, Info::Type::kString);  // mixed values: shown as text
  EXPECT_EQ(infos[0].discrete, (std::vector<json>{"relu", "3"}));
  EXPECT_EQ(infos[1].name, "layers");
  EXPECT_EQ(*infos[1].interval, std::make_pair(1.0, 4.0));
  EXPECT_EQ(infos[2].name, "lr");
  EXPECT_DOUBLE_EQ(infos[2].interval->first, 1e-4);
  EXPECT_DOUBLE_EQ(infos[2].interval->second, 0.1);
  EXPECT_EQ(infos[3].name, "opt.amsgrad");
  EXPECT_EQ(infos[3].type, Info::Type::kBool);
  EXPECT_EQ(infos[4].name, "opt.beta");
  EXPECT_EQ(flat_hparams(json{{"lr", 0.01},
                              {"opt", {{"beta", 0.9}, {"amsgrad", true}}},
                              {"shape", json::array({1, 2})}}),
            (json{{"lr", 0.01}, {"opt.beta", 0.9}, {"opt.amsgrad", true}, {"shape", "[1,2]"}}));
}

TEST(TensorBoardLog, ReportsBecomeTaggedScalars) {
  record::MetricsReport r;
  r.kind = record::MetricsReport::Kind::kTraining;
  r.metrics = {{"loss", 0.5}, {"note", "text"}, {"bad", "NaN"}};
  r.learning_rates = {{"lr", 0.1}};
  r.throughput = {{"samples_per_second", 100.0}};
  const auto s = tensorboard_scalars(r);
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s[0].first, "training/bad");
  EXPECT_TRUE(std::isnan(s[0].second));
  EXPECT_EQ(s[1], std::make_pair(std::string("training/loss"), 0.5));
  EXPECT_EQ(s[2], std::make_pair(std::string("learning_rate"), 0.1));
  EXPECT_EQ(s[3], std::make_pair(std::string("throughput/samples_per_second"), 100.0));
  r.kind = record::MetricsReport::Kind::kValidation;
  EXPECT_EQ(tensorboard_scalars(r).size(), 2u);  // metrics only: validation/bad, validation/loss
}

}  // namespace
}  // namespace det::experiment

namespace det::experiment {
namespace {
namespace fs = std::filesystem;
namespace tb = record::tensorboard;

// A trial's run begins with a SessionLog START (TensorBoard's Python loader takes the first for
// the run's beginning, the later ones for restarts), then its hyperparameters as its columns hold
// them; a restart appends a START at the checkpoint's batch + 1.
TEST(TensorBoardLog, ATrialBeginsWithAStartAndItsValuesAsItsColumnsHoldThem) {
  const fs::path dir = fs::temp_directory_path() / ("det-tblog-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto config = config::parse_experiment_config(
      "name: e\nentrypoint: x\nhyperparameters:\n  act:\n    type: categorical\n"
      "    vals: [relu, 3]\n  lr: 0.1\nsearcher:\n  name: random\n  metric: loss\n"
      "  max_trials: 2\n  max_length: 10\n",
      "e.yaml");
  TensorBoardLog log(dir);
  log.experiment(config, 1.0);
  log.trial_started(1, {{"act", 3}, {"lr", 0.1}}, 2.0, "uri");
  log.restart(1, 8, 3.0);
  std::vector<std::string> records;
  for (const auto& f : fs::directory_iterator(dir / "trial-1"))
    records = tb::read_records(util::read_file(f.path()), f.path().string());
  ASSERT_EQ(records.size(), 4u);
  EXPECT_EQ(records[1], tb::event::session_log(2.0, 0, tb::SessionStatus::kStart));
  EXPECT_EQ(records[2], tb::event::plugin_summary(
                            2.0, 0, tb::hparams::kSessionStartTag, tb::hparams::kPluginName,
                            tb::hparams::session_start({{"act", "3"}, {"lr", 0.1}}, 2.0, "uri")));
  EXPECT_EQ(records[3], tb::event::session_log(3.0, 9, tb::SessionStatus::kStart));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace det::experiment
