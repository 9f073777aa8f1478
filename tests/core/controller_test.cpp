#include "det/core/controller.h"

#include <gtest/gtest.h>

#include <cmath>

#include "det/core/checkpoint.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "test_trials.h"

namespace det {
namespace {
using testing::NoisyTrial;
using testing::OneVarStep;
using testing::OneVarTrial;
using testing::read_reports;
using testing::TempDir;
namespace fs = std::filesystem;

DET_REGISTER_TRIAL(OneVarTrial, "onevar");
DET_REGISTER_TRIAL(NoisyTrial, "noisy");

config::ExperimentConfig make_config(const std::string& entrypoint, const std::string& extra, int64_t batches) {
  std::string yaml = "name: t\nentrypoint: " + entrypoint +
                     "\nhyperparameters:\n  global_batch_size: 4\nsearcher:\n  name: single\n  metric: validation_loss\n"
                     "  max_length:\n    batches: " + std::to_string(batches) + "\n" + extra;
  return config::parse_experiment_config(yaml, "test.yaml");
}

TrialResult run_trial(const config::ExperimentConfig& cfg, const fs::path& dir, TrialRunOptions opt = {}) {
  opt.trial_dir = dir;
  opt.trial_seed = opt.trial_seed ? opt.trial_seed : 17;
  opt.hparams = config::sample_hyperparameters(cfg.hyperparameters, *std::make_unique<util::NpRandom>(1));
  opt.show_progress = false;
  TrialController c(cfg, TrialRegistry::instance().find(cfg.entrypoint), opt);
  return c.run();
}

TEST(OneVar, LossAndWeightFollowTheClosedFormEveryBatch) {
  TempDir tmp;
  OneVarTrial::steps().clear();
  auto cfg = make_config("onevar", "scheduling_unit: 4\n", 20);
  auto result = run_trial(cfg, tmp.path);
  auto& steps = OneVarTrial::steps();
  ASSERT_EQ(steps.size(), 20u);
  double w = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    EXPECT_EQ(steps[i].batch_idx, static_cast<int64_t>(i));
    EXPECT_NEAR(steps[i].w_before, w, 1e-6);
    EXPECT_NEAR(steps[i].loss, (1 - w) * (1 - w), 1e-6);
    double w_exp = w + 2 * 0.001 * (1 - w);
    EXPECT_NEAR(steps[i].w_after, w_exp, 1e-6);
    if (i) {
      EXPECT_LE(steps[i].loss, steps[i - 1].loss);
    }
    w = w_exp;
  }
  // Reports every scheduling_unit batches, each the average of its batches.
  auto reports = read_reports(tmp.path, "training");
  ASSERT_EQ(reports.size(), 5u);
  for (size_t r = 0; r < reports.size(); ++r) {
    EXPECT_EQ(reports[r]["batches"], static_cast<int64_t>(4 * (r + 1)));
    double mean = 0;
    for (size_t i = 4 * r; i < 4 * r + 4; ++i) mean += steps[i].loss / 4;
    EXPECT_NEAR(reports[r]["metrics"]["loss"].get<double>(), mean, 1e-9);
    EXPECT_GT(reports[r]["throughput"]["samples_per_second"].get<double>(), 0);
    EXPECT_GE(reports[r]["throughput"]["data_wait_fraction"].get<double>(), 0);
  }
  EXPECT_EQ(result.state.batches_trained, 20);
  EXPECT_EQ(result.state.epochs_trained, 1);  // 16 batches per epoch
  // One validation at the end; reducers: AVG, SUM, and the custom TriangleLabelSum.
  auto val = read_reports(tmp.path, "validation");
  ASSERT_EQ(val.size(), 1u);
  EXPECT_NEAR(val[0]["metrics"]["validation_loss"].get<double>(), (1 - w) * (1 - w), 1e-6);
  EXPECT_EQ(val[0]["metrics"]["val_batch"].get<double>(), 120.0);  // SUM of batch indices 0..15
  EXPECT_EQ(val[0]["metrics"]["triangle_label_sum"].get<double>(), 4.0 * 120);
  ASSERT_EQ(result.checkpoints.size(), 1u);
  EXPECT_EQ(result.checkpoints[0].batches, 20);
}

TEST(OneVar, AggregationFrequencyTwoUpdatesEveryOtherBatch) {
  TempDir tmp;
  OneVarTrial::steps().clear();
  auto cfg = make_config("onevar", "optimizations:\n  aggregation_frequency: 2\n", 16);
  run_trial(cfg, tmp.path);
  auto& steps = OneVarTrial::steps();
  ASSERT_EQ(steps.size(), 16u);
  double w = 0;
  for (const auto& s : steps) {
    EXPECT_NEAR(s.loss, (1 - w) * (1 - w), 1e-6);
    if ((s.batch_idx + 1) % 2 == 0) {
      // Two accumulated gradients, averaged: the same update as one batch.
      double w_exp = w + 2 * 0.001 * (1 - w);
      EXPECT_NEAR(s.w_after, w_exp, 1e-6) << "batch " << s.batch_idx;
      w = w_exp;
    } else {
      EXPECT_EQ(s.w_after, s.w_before) << "no update at batch " << s.batch_idx;
    }
  }
}

TEST(OneVar, ValidationAndCheckpointPeriods) {
  TempDir tmp;
  auto cfg = make_config("onevar",
                         "min_validation_period: {batches: 5}\nmin_checkpoint_period: {epochs: 1}\ncheckpoint_policy: none\n"
                         "checkpoint_storage: {host_path: /unused, save_trial_latest: 10, save_trial_best: 0}\n",
                         34);
  auto result = run_trial(cfg, tmp.path);
  std::vector<int64_t> val_at, ckpt_at;
  for (auto& v : read_reports(tmp.path, "validation")) val_at.push_back(v["batches"]);
  for (auto& c : result.checkpoints) ckpt_at.push_back(c.batches);
  EXPECT_EQ(val_at, (std::vector<int64_t>{5, 10, 15, 20, 25, 30, 34}));
  EXPECT_EQ(ckpt_at, (std::vector<int64_t>{16, 32, 34}));  // epochs of 16 batches, then the end
  // Training reports fire at every boundary as well as every scheduling_unit.
  std::vector<int64_t> train_at;
  for (auto& t : read_reports(tmp.path, "training")) train_at.push_back(t["batches"]);
  EXPECT_EQ(train_at, (std::vector<int64_t>{5, 10, 15, 16, 20, 25, 30, 32, 34}));
}

TEST(OneVar, CheckpointPolicyAndGarbageCollection) {
  TempDir tmp;
  // Loss falls every validation, so "best" checkpoints at each one; GC keeps latest 1 + best 1.
  auto cfg = make_config("onevar", "min_validation_period: {batches: 4}\ncheckpoint_policy: best\n", 12);
  auto result = run_trial(cfg, tmp.path);
  ASSERT_EQ(result.checkpoints.size(), 1u);  // the newest is also the best
  EXPECT_EQ(result.checkpoints[0].batches, 12);
  size_t dirs = 0;
  for (auto& e : fs::directory_iterator(tmp.path / "checkpoints")) dirs += e.is_directory();
  EXPECT_EQ(dirs, 1u);

  TempDir tmp2;
  cfg = make_config("onevar", "min_validation_period: {batches: 4}\ncheckpoint_policy: none\n", 12);
  result = run_trial(cfg, tmp2.path);
  ASSERT_EQ(result.checkpoints.size(), 1u);  // only the final one
}

TEST(OneVar, PerformInitialValidationAndTestMode) {
  TempDir tmp;
  OneVarTrial::steps().clear();
  auto cfg = make_config("onevar", "perform_initial_validation: true\n", 100);
  TrialRunOptions opt;
  opt.test_mode = true;
  auto result = run_trial(cfg, tmp.path, opt);
  EXPECT_EQ(OneVarTrial::steps().size(), 1u);
  EXPECT_EQ(result.state.batches_trained, 1);
  auto val = read_reports(tmp.path, "validation");
  ASSERT_EQ(val.size(), 2u);  // initial (batch 0) and after the one batch
  EXPECT_EQ(val[0]["batches"], 0);
  EXPECT_EQ(val[1]["metrics"]["val_batch"].get<double>(), 0.0);  // one validation batch only
  EXPECT_EQ(result.checkpoints.size(), 1u);
}

std::vector<torch::Tensor> weights_of(const fs::path& ckpt_dir) {
  auto cfg = make_config("noisy", "", 1);
  TrialContext ctx(cfg, {{"global_batch_size", 4}}, 1, 1, torch::kCPU, nullptr);
  NoisyTrial t(ctx);
  checkpoint::load(ckpt_dir, ctx.models(), ctx.optimizers(), false);
  std::vector<torch::Tensor> out;
  for (auto& p : t.model()->parameters()) out.push_back(p.detach().clone());
  return out;
}

// Stops the run (as Ctrl-C does) once training reaches a given batch.
struct StopAt : TrialListener {
  std::atomic<bool> flag{false};
  int64_t at;
  explicit StopAt(int64_t b) : at(b) {}
  void on_training_metrics(int64_t batches, const nlohmann::json&) override {
    if (batches >= at) flag = true;
  }
};

TEST(Resume, InterruptedAndResumedEqualsStraightRun) {
  const std::string extra = "scheduling_unit: 5\nmin_validation_period: {batches: 10}\n";
  auto cfg = make_config("noisy", extra, 60);

  TempDir straight;
  auto a = run_trial(cfg, straight.path);

  TempDir interrupted;
  StopAt stop(25);
  TrialRunOptions opt;
  opt.listener = &stop;
  opt.stop_flag = &stop.flag;
  auto b1 = run_trial(cfg, interrupted.path, opt);
  ASSERT_EQ(b1.exit, TrialResult::Exit::kStopped);
  // A stop requested in the first report period after 25 (scheduling_unit 5): batch 25 is one.
  ASSERT_EQ(b1.state.batches_trained, 26);  // the flag is read after the batch following the report
  ASSERT_FALSE(b1.checkpoints.empty());
  TrialRunOptions resume;
  resume.resume_from = b1.checkpoints.back().path;
  auto b2 = run_trial(cfg, interrupted.path, resume);
  ASSERT_EQ(b2.exit, TrialResult::Exit::kCompleted);
  EXPECT_EQ(b2.state.batches_trained, 60);

  // Bit-identical weights and identical validation metrics.
  auto wa = weights_of(a.checkpoints.back().path), wb = weights_of(b2.checkpoints.back().path);
  ASSERT_EQ(wa.size(), wb.size());
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i])) << "parameter " << i;
  auto va = read_reports(straight.path, "validation"), vb = read_reports(interrupted.path, "validation");
  ASSERT_EQ(va.back()["batches"], vb.back()["batches"]);
  EXPECT_EQ(va.back()["metrics"], vb.back()["metrics"]);
  // Training metrics of every period after the resume match the straight run's.
  auto ta = read_reports(straight.path, "training"), tb = read_reports(interrupted.path, "training");
  std::map<int64_t, nlohmann::json> by_batch;
  for (auto& t : ta) by_batch[t["batches"]] = t["metrics"];
  int compared = 0;
  for (auto& t : tb) {
    int64_t at = t["batches"];
    if (at > 30 && by_batch.count(at)) {
      EXPECT_EQ(by_batch[at], t["metrics"]) << "batch " << at;
      ++compared;
    }
  }
  EXPECT_GE(compared, 5);
}

TEST(Reproducibility, SameSeedSameMetrics) {
  auto cfg = make_config("noisy", "scheduling_unit: 5\nmin_validation_period: {batches: 20}\n", 40);
  TempDir x, y, z;
  run_trial(cfg, x.path);
  run_trial(cfg, y.path);
  TrialRunOptions other;
  other.trial_seed = 99;
  run_trial(cfg, z.path, other);
  auto strip = [](std::vector<nlohmann::json> v) {
    for (auto& j : v) {
      j.erase("time");
      j.erase("throughput");
      j.erase("seconds");
    }
    return v;
  };
  EXPECT_EQ(strip(read_reports(x.path, "training")), strip(read_reports(y.path, "training")));
  EXPECT_EQ(strip(read_reports(x.path, "validation")), strip(read_reports(y.path, "validation")));
  EXPECT_NE(strip(read_reports(x.path, "training")), strip(read_reports(z.path, "training")));
}

TEST(Checkpoint, CorruptTruncatedMissingAndMismatchedAreRefused) {
  TempDir tmp;
  auto cfg = make_config("noisy", "", 8);
  auto r = run_trial(cfg, tmp.path);
  fs::path ckpt = r.checkpoints.back().path;
  auto resume = [&](const fs::path& p, const config::ExperimentConfig& c) {
    TrialRunOptions o;
    o.resume_from = p;
    run_trial(c, tmp.path, o);
  };
  auto expect_error = [&](const fs::path& p, const config::ExperimentConfig& c, const std::string& needle) {
    try {
      resume(p, c);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(tmp.path / "nope", cfg, "no such checkpoint directory");
  expect_error(tmp.path, cfg, "not a det checkpoint");

  // A checkpoint of another trial type.
  auto other = make_config("onevar", "", 8);
  expect_error(ckpt, other, "written by trial 'noisy'");

  // Truncated state file.
  fs::path copy = tmp.path / "copy";
  fs::copy(ckpt, copy);
  fs::resize_file(copy / "state.pt", fs::file_size(copy / "state.pt") / 2);
  expect_error(copy, cfg, "truncated");

  // Same size, flipped bytes.
  fs::remove_all(copy);
  fs::copy(ckpt, copy);
  {
    std::fstream f(copy / "state.pt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.write("XXXX", 4);
  }
  expect_error(copy, cfg, "checksum");

  // Newer format.
  fs::remove_all(copy);
  fs::copy(ckpt, copy);
  auto meta = nlohmann::json::parse(util::read_file(copy / "metadata.json"));
  meta["format_version"] = 99;
  util::write_file_atomic(copy / "metadata.json", meta.dump());
  expect_error(copy, cfg, "format version 99");
}

TEST(Checkpoint, ShapeMismatchNamesTheParameter) {
  TempDir tmp;
  auto cfg = make_config("noisy", "", 4);
  auto r = run_trial(cfg, tmp.path);
  TrialContext ctx(cfg, {{"global_batch_size", 4}}, 1, 1, torch::kCPU, nullptr);
  auto wrong = ctx.wrap_model(torch::nn::Sequential(torch::nn::Linear(8, 32), torch::nn::ReLU(), torch::nn::Dropout(0.3),
                                                    torch::nn::Linear(32, 1)));
  try {
    checkpoint::load(r.checkpoints.back().path, {wrong.ptr()}, {}, false);
    ADD_FAILURE();
  } catch (const CheckpointError& e) {
    // Optimizer count is checked first; with the right count, the shape is named.
    EXPECT_NE(std::string(e.what()).find("optimizer"), std::string::npos) << e.what();
  }
  auto opt = std::make_shared<torch::optim::Adam>(wrong->parameters());
  try {
    checkpoint::load(r.checkpoints.back().path, {wrong.ptr()}, {opt}, false);
    ADD_FAILURE();
  } catch (const CheckpointError& e) {
    EXPECT_NE(std::string(e.what()).find("'0.weight' has shape [16, 8] in the checkpoint but [32, 8]"), std::string::npos)
        << e.what();
  }
}

TEST(Context, HparamErrorsNameKeyAndFile) {
  auto cfg = make_config("onevar", "", 4);
  TrialContext ctx(cfg, {{"lr", 0.1}, {"name", "x"}, {"model", {{"depth", 3}}}}, 1, 1, torch::kCPU, nullptr);
  EXPECT_EQ(ctx.get_hparam<double>("lr"), 0.1);
  EXPECT_EQ(ctx.get_hparam<int>("model.depth"), 3);
  EXPECT_EQ(ctx.get_hparam<int>("missing", 7), 7);
  try {
    ctx.get_hparam<double>("lrr");
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'lrr' is not defined in test.yaml"), std::string::npos) << m;
    EXPECT_NE(m.find("did you mean 'lr'"), std::string::npos) << m;
  }
  try {
    ctx.get_hparam<double>("name");
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'name' in test.yaml is \"x\", expected a number"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ctx.get_hparam<int>("lr"), ConfigError);
}

// Counts scheduler steps under each StepMode.
class CountingTrial : public Trial {
 public:
  static inline StepMode mode = StepMode::kStepEveryBatch;
  static inline int frequency = 1;
  static inline int64_t steps = 0;
  explicit CountingTrial(TrialContext& ctx) : Trial(ctx) {
    model_ = ctx.wrap_model(torch::nn::Linear(1, 1));
    opt_ = ctx.wrap_optimizer(std::make_shared<torch::optim::SGD>(model_->parameters(), torch::optim::SGDOptions(0.1)));
    sched_ = ctx.wrap_lr_scheduler(std::make_shared<optim::LambdaLR>(*opt_, [](int64_t e) {
      steps = e;
      return 1.0;
    }), mode, frequency);
  }
  std::shared_ptr<data::DataLoader> build_training_data_loader() override {
    auto ds = std::make_shared<data::TensorDataset>(torch::ones({16, 1}), torch::ones({16, 1}));
    return std::make_shared<data::DataLoader>(ds, data::DataLoaderOptions().batch_size(2));  // 8 batches/epoch
  }
  std::shared_ptr<data::DataLoader> build_validation_data_loader() override { return build_training_data_loader(); }
  Metrics train_batch(data::Batch& b, int64_t, int64_t) override {
    auto loss = torch::mse_loss(model_->forward(b.data), b.target);
    context_.backward(loss);
    context_.step_optimizer(*opt_);
    return {{"loss", loss}};
  }
  Metrics evaluate_full_dataset(data::DataLoader&) override { return {{"validation_loss", torch::tensor(1.0)}}; }

 private:
  torch::nn::Linear model_{nullptr};
  std::shared_ptr<torch::optim::SGD> opt_;
  std::shared_ptr<optim::LambdaLR> sched_;
};
DET_REGISTER_TRIAL(CountingTrial, "counting");

int64_t count_steps(StepMode mode, int frequency, int agg, int64_t batches) {
  CountingTrial::mode = mode;
  CountingTrial::frequency = frequency;
  CountingTrial::steps = 0;
  TempDir tmp;
  auto cfg = make_config("counting", "optimizations: {aggregation_frequency: " + std::to_string(agg) + "}\n", batches);
  run_trial(cfg, tmp.path);
  return CountingTrial::steps;
}

TEST(LRSchedulerAutoStep, DeterminedStepModes) {
  EXPECT_EQ(count_steps(StepMode::kStepEveryBatch, 1, 1, 24), 24);
  EXPECT_EQ(count_steps(StepMode::kStepEveryBatch, 3, 1, 24), 8);
  EXPECT_EQ(count_steps(StepMode::kStepEveryBatch, 1, 2, 24), 24);  // catches up at update batches
  EXPECT_EQ(count_steps(StepMode::kStepEveryOptimizerStep, 1, 2, 24), 12);
  EXPECT_EQ(count_steps(StepMode::kStepEveryOptimizerStep, 3, 2, 24), 4);  // batch_idx+1 divisible by 2 and 3
  EXPECT_EQ(count_steps(StepMode::kStepEveryEpoch, 1, 1, 24), 3);
  EXPECT_EQ(count_steps(StepMode::kStepEveryEpoch, 2, 1, 24), 1);
  EXPECT_EQ(count_steps(StepMode::kManualStep, 1, 1, 24), 0);
}

TEST(Reducers, BuiltInsMatchDetermined) {
  std::vector<double> m = {0.25, 0.5, 0.75, 1, 25.5, 1.9};
  EXPECT_NEAR(reduce(Reducer::kAvg, m), 4.983333, 1e-5);
  EXPECT_NEAR(reduce(Reducer::kSum, m), 29.9, 1e-9);
  EXPECT_EQ(reduce(Reducer::kMin, m), 0.25);
  EXPECT_EQ(reduce(Reducer::kMax, m), 25.5);
  EXPECT_NEAR(reduce_weighted(Reducer::kAvg, m, {1, 2, 5, 4, 5, 6}), 6.4304347826, 1e-6);
}

}  // namespace
}  // namespace det
