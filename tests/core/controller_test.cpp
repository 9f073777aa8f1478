#include "det/core/controller.h"

#include <gtest/gtest.h>

#include <cmath>

#include "det/core/checkpoint.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "test_trials.h"

namespace det {
namespace {
using testing::make_config;
using testing::MetricsFile;
using testing::NoisyTrial;
using testing::OneVarStep;
using testing::OneVarTrial;
using testing::read_reports;
using testing::run_trial;
using testing::TempDir;
namespace fs = std::filesystem;

DET_REGISTER_TRIAL(OneVarTrial, "onevar");
DET_REGISTER_TRIAL(NoisyTrial, "noisy");

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
  auto cfg = make_config(
      "onevar",
      "min_validation_period: {batches: 5}\nmin_checkpoint_period: {epochs: 1}\ncheckpoint_policy: "
      "none\n"
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
  auto cfg =
      make_config("onevar", "min_validation_period: {batches: 4}\ncheckpoint_policy: best\n", 12);
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
struct StopAt : MetricsFile {
  std::atomic<bool> flag{false};
  int64_t at;
  explicit StopAt(int64_t b) : at(b) {}
  void on_report(const record::MetricsReport& report) override {
    MetricsFile::on_report(report);
    if (report.kind == record::MetricsReport::Kind::kTraining && report.batches >= at) flag = true;
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
  for (size_t i = 0; i < wa.size(); ++i)
    EXPECT_TRUE(torch::equal(wa[i], wb[i])) << "parameter " << i;
  auto va = read_reports(straight.path, "validation"),
       vb = read_reports(interrupted.path, "validation");
  ASSERT_EQ(va.back()["batches"], vb.back()["batches"]);
  EXPECT_EQ(va.back()["metrics"], vb.back()["metrics"]);
  // Training metrics of every period after the resume match the straight run's.
  auto ta = read_reports(straight.path, "training"),
       tb = read_reports(interrupted.path, "training");
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

// searcher.source_trial_id / source_checkpoint_uuid (Determined's warm start): the new trial
// starts from the checkpoint's weight, with its own counters from 0.
TEST(WarmStart, StartsFromTheCheckpointsWeightsWithFreshCounters) {
  TempDir source, warm;
  OneVarTrial::steps().clear();
  auto cfg = make_config("onevar", "scheduling_unit: 4\n", 20);
  auto a = run_trial(cfg, source.path);
  ASSERT_EQ(a.checkpoints.size(), 1u);
  const double w20 = OneVarTrial::steps().back().w_after;
  ASSERT_GT(w20, 0.0);

  OneVarTrial::steps().clear();
  TrialRunOptions opt;
  opt.warm_start_from = a.checkpoints.back().path;
  auto b = run_trial(make_config("onevar", "scheduling_unit: 4\n", 8), warm.path, opt);
  const auto& steps = OneVarTrial::steps();
  ASSERT_EQ(steps.size(), 8u);
  EXPECT_EQ(steps[0].batch_idx, 0);           // its own data position
  EXPECT_NEAR(steps[0].w_before, w20, 1e-7);  // the source's weight
  EXPECT_NEAR(steps[0].loss, (1 - w20) * (1 - w20), 1e-6);
  EXPECT_EQ(b.state.batches_trained, 8);  // its own counters
  ASSERT_FALSE(b.checkpoints.empty());
  EXPECT_EQ(b.checkpoints.back().batches, 8);
  auto reports = read_reports(warm.path, "training");
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.front()["batches"], 4);

  // A checkpoint of another trial class is refused, naming both.
  TrialRunOptions other;
  other.warm_start_from = a.checkpoints.back().path;
  TempDir third;
  EXPECT_THROW(
      {
        try {
          run_trial(make_config("noisy", "", 8), third.path, other);
        } catch (const CheckpointError& e) {
          EXPECT_NE(std::string(e.what()).find("written by trial 'onevar'"), std::string::npos)
              << e.what();
          throw;
        }
      },
      CheckpointError);
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

// Counts scheduler steps under each StepMode.
class CountingTrial : public Trial {
 public:
  static inline StepMode mode = StepMode::kStepEveryBatch;
  static inline int frequency = 1;
  static inline int64_t steps = 0;
  explicit CountingTrial(TrialContext& ctx) : Trial(ctx) {
    model_ = ctx.wrap_model(torch::nn::Linear(1, 1));
    opt_ = ctx.wrap_optimizer(
        std::make_shared<torch::optim::SGD>(model_->parameters(), torch::optim::SGDOptions(0.1)));
    sched_ = ctx.wrap_lr_scheduler(std::make_shared<optim::LambdaLR>(*opt_,
                                                                     [](int64_t e) {
                                                                       steps = e;
                                                                       return 1.0;
                                                                     }),
                                   mode, frequency);
  }
  std::shared_ptr<data::DataLoader> build_training_data_loader() override {
    auto ds = std::make_shared<data::TensorDataset>(torch::ones({16, 1}), torch::ones({16, 1}));
    return std::make_shared<data::DataLoader>(
        ds, data::DataLoaderOptions().batch_size(2));  // 8 batches/epoch
  }
  std::shared_ptr<data::DataLoader> build_validation_data_loader() override {
    return build_training_data_loader();
  }
  Metrics train_batch(data::Batch& b, int64_t, int64_t) override {
    auto loss = torch::mse_loss(model_->forward(b.data), b.target);
    context_.backward(loss);
    context_.step_optimizer(*opt_);
    return {{"loss", loss}};
  }
  Metrics evaluate_full_dataset(data::DataLoader&) override {
    return {{"validation_loss", torch::tensor(1.0)}};
  }

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
  auto cfg = make_config(
      "counting", "optimizations: {aggregation_frequency: " + std::to_string(agg) + "}\n", batches);
  run_trial(cfg, tmp.path);
  return CountingTrial::steps;
}

TEST(LRSchedulerAutoStep, DeterminedStepModes) {
  EXPECT_EQ(count_steps(StepMode::kStepEveryBatch, 1, 1, 24), 24);
  EXPECT_EQ(count_steps(StepMode::kStepEveryBatch, 3, 1, 24), 8);
  EXPECT_EQ(count_steps(StepMode::kStepEveryBatch, 1, 2, 24), 24);  // catches up at update batches
  EXPECT_EQ(count_steps(StepMode::kStepEveryOptimizerStep, 1, 2, 24), 12);
  EXPECT_EQ(count_steps(StepMode::kStepEveryOptimizerStep, 3, 2, 24),
            4);  // batch_idx+1 divisible by 2 and 3
  EXPECT_EQ(count_steps(StepMode::kStepEveryEpoch, 1, 1, 24), 3);
  EXPECT_EQ(count_steps(StepMode::kStepEveryEpoch, 2, 1, 24), 1);
  EXPECT_EQ(count_steps(StepMode::kManualStep, 1, 1, 24), 0);
}

}  // namespace
}  // namespace det

namespace det {
namespace {

// ---- callbacks ----

/// Logs every hook it receives; its state counts the validations it has seen, across resumes.
class LoggingCallback : public Callback {
 public:
  static std::vector<std::string>& log() {
    static std::vector<std::string> l;
    return l;
  }
  void on_trial_startup(int64_t first, const std::optional<std::string>& uuid) override {
    log().push_back("startup " + std::to_string(first) + (uuid ? " resumed" : ""));
  }
  void on_trial_shutdown() override { log().push_back("shutdown"); }
  void on_training_start() override { log().push_back("training_start"); }
  void on_training_epoch_start(int64_t e) override {
    log().push_back("epoch_start " + std::to_string(e));
  }
  void on_training_epoch_end(int64_t e) override {
    log().push_back("epoch_end " + std::to_string(e));
  }
  void on_training_workload_end(const Metrics& m) override {
    log().push_back(std::string("workload_end") + (m.count("loss") ? " loss" : ""));
    if (m.count("loss")) loss_seen = m.at("loss");
  }
  void on_validation_start() override { log().push_back("validation_start"); }
  void on_validation_end(const Metrics& m) override {
    ++validations_;
    log().push_back(std::string("validation_end") +
                    (m.count("validation_loss") ? " validation_loss" : ""));
    if (m.count("validation_loss")) validation_loss_seen = m.at("validation_loss").item<double>();
  }
  void on_checkpoint_load_start(const record::CheckpointMetadata& m) override {
    log().push_back("load_start " + std::to_string(m.trial_state.batches_trained));
  }
  void on_checkpoint_save_start(record::CheckpointMetadata& m) override {
    log().push_back("save_start " + std::to_string(m.trial_state.batches_trained));
  }
  void on_checkpoint_write_end(const std::filesystem::path& dir) override {
    log().push_back(std::string("write_end") +
                    (fs::exists(dir / "metadata.json") ? " complete" : " incomplete"));
  }
  nlohmann::json state_dict() const override { return {{"validations", validations_}}; }
  void load_state_dict(const nlohmann::json& s) override {
    validations_ = s.at("validations").get<int>();
    log().push_back("load_state " + std::to_string(validations_));
  }
  int validations() const { return validations_; }
  torch::Tensor loss_seen;            // the last training report's loss
  double validation_loss_seen = NAN;  // the last validation's searcher metric

 private:
  int validations_ = 0;
};

class CallbackTrial : public OneVarTrial {
 public:
  static inline std::shared_ptr<LoggingCallback> last;
  using OneVarTrial::OneVarTrial;
  Callbacks build_callbacks() override {
    last = std::make_shared<LoggingCallback>();
    return {{"logger", last}};
  }
};
DET_REGISTER_TRIAL(CallbackTrial, "callbacks");

TEST(Callbacks, CalledInDeterminedsOrderAndTheirStateSurvivesResume) {
  // 16 batches per epoch (64 examples, batch 4); validation every 8 batches; stop at 10.
  auto cfg =
      make_config("callbacks", "scheduling_unit: 4\nmin_validation_period: {batches: 8}\n", 20);
  TempDir tmp;
  LoggingCallback::log().clear();
  StopAt stop(10);
  TrialRunOptions opt;
  opt.listener = &stop;
  opt.stop_flag = &stop.flag;
  auto first = run_trial(cfg, tmp.path, opt);
  ASSERT_EQ(first.exit, TrialResult::Exit::kStopped);
  // The report at batch 12 sets the stop flag; the loop sees it after the next batch.
  ASSERT_EQ(first.state.batches_trained, 13);
  std::vector<std::string> expected = {"startup 0",
                                       "training_start",
                                       "epoch_start 0",
                                       "workload_end loss",  // batch 4
                                       "workload_end loss",
                                       "validation_start",  // batch 8
                                       "validation_end validation_loss",
                                       "save_start 8",
                                       "write_end complete",
                                       "workload_end loss",  // batch 12
                                       "workload_end loss",
                                       "save_start 13",
                                       "write_end complete",  // 13: stop
                                       "shutdown"};
  EXPECT_EQ(LoggingCallback::log(), expected);
  EXPECT_EQ(CallbackTrial::last->validations(), 1);
  // Metrics reach callbacks as the trial returns them: tensors (reduced: float64 CPU scalars).
  const torch::Tensor loss = CallbackTrial::last->loss_seen;
  ASSERT_TRUE(loss.defined());
  EXPECT_EQ(loss.dim(), 0);
  EXPECT_EQ(loss.scalar_type(), torch::kDouble);
  EXPECT_TRUE(loss.device().is_cpu());
  EXPECT_GT(loss.item<double>(), 0);
  ASSERT_TRUE(first.last_validation);
  EXPECT_EQ(CallbackTrial::last->validation_loss_seen,
            (*first.last_validation)["validation_loss"].get<double>());

  LoggingCallback::log().clear();
  TrialRunOptions resume;
  resume.resume_from = first.checkpoints.back().path;
  auto second = run_trial(cfg, tmp.path, resume);
  ASSERT_EQ(second.exit, TrialResult::Exit::kCompleted);
  std::vector<std::string> after = {"startup 13 resumed",
                                    "load_start 13",
                                    "load_state 1",
                                    "training_start",
                                    "epoch_end 0",  // after batch 15
                                    "workload_end loss",
                                    "validation_start",  // batch 16
                                    "validation_end validation_loss",
                                    "save_start 16",
                                    "write_end complete",
                                    "epoch_start 1",
                                    "workload_end loss",  // batch 20
                                    "validation_start",
                                    "validation_end validation_loss",
                                    "save_start 20",
                                    "write_end complete",
                                    "shutdown"};
  EXPECT_EQ(LoggingCallback::log(), after);
  EXPECT_EQ(CallbackTrial::last->validations(), 3)
      << "the state restored from the checkpoint plus two validations";
  auto meta = checkpoint::read_metadata(second.checkpoints.back().path);
  EXPECT_EQ(meta.callbacks.at("logger")["validations"], 3);
}

class FailingTrial : public CallbackTrial {
 public:
  using CallbackTrial::CallbackTrial;
  Metrics train_batch(data::Batch& b, int64_t e, int64_t i) override {
    if (i == 2) throw Error("boom at batch 2");
    return CallbackTrial::train_batch(b, e, i);
  }
};
DET_REGISTER_TRIAL(FailingTrial, "failing_callbacks");

TEST(Callbacks, ShutdownRunsWhenTheTrialFails) {
  auto cfg = make_config("failing_callbacks", "", 10);
  TempDir tmp;
  LoggingCallback::log().clear();
  EXPECT_THROW(run_trial(cfg, tmp.path), Error);
  ASSERT_FALSE(LoggingCallback::log().empty());
  EXPECT_EQ(LoggingCallback::log().back(), "shutdown");
}

// ---- which evaluate method ----

class NoEvaluateTrial : public Trial {
 public:
  explicit NoEvaluateTrial(TrialContext& ctx) : Trial(ctx), inner_(ctx) {}
  std::shared_ptr<data::DataLoader> build_training_data_loader() override {
    return inner_.build_training_data_loader();
  }
  std::shared_ptr<data::DataLoader> build_validation_data_loader() override {
    return inner_.build_validation_data_loader();
  }
  Metrics train_batch(data::Batch& b, int64_t e, int64_t i) override {
    return inner_.train_batch(b, e, i);
  }

 private:
  OneVarTrial inner_;
};
DET_REGISTER_TRIAL(NoEvaluateTrial, "no_evaluate");

TEST(Evaluation, ATrialWithNeitherEvaluateMethodIsAClearError) {
  auto cfg = make_config("no_evaluate", "", 2);
  TempDir tmp;
  try {
    run_trial(cfg, tmp.path);
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must override evaluate_batch or evaluate_full_dataset"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace det

namespace det {
namespace {

// ---- named batches ----

/// y = 3*a - 2*b from two inputs, each through its own layer, with a mask that hides half the
/// examples from the loss (their targets are garbage).
class TwoInputTrial : public Trial {
 public:
  explicit TwoInputTrial(TrialContext& ctx) : Trial(ctx) {
    a_ = ctx.wrap_model(torch::nn::Linear(torch::nn::LinearOptions(1, 1).bias(false)));
    b_ = ctx.wrap_model(torch::nn::Linear(torch::nn::LinearOptions(1, 1).bias(false)));
    std::vector<torch::Tensor> params = a_->parameters();
    for (auto& p : b_->parameters()) params.push_back(p);
    opt_ = ctx.wrap_optimizer(
        std::make_shared<torch::optim::SGD>(params, torch::optim::SGDOptions(0.1)));
  }
  std::shared_ptr<data::DataLoader> build_training_data_loader() override { return loader(1); }
  std::shared_ptr<data::DataLoader> build_validation_data_loader() override { return loader(2); }
  Metrics train_batch(data::Batch& batch, int64_t, int64_t) override {
    auto loss = masked_loss(batch);
    context_.backward(loss);
    context_.step_optimizer(*opt_);
    return {{"loss", loss}};
  }
  Metrics evaluate_batch(data::Batch& batch, int64_t) override {
    return {{"validation_loss", masked_loss(batch)}};
  }

 private:
  torch::Tensor masked_loss(data::Batch& batch) {
    auto pred = a_->forward(batch.at("a")) + b_->forward(batch.at("b"));
    auto mask = batch.at("mask");
    return ((pred - batch.target).pow(2) * mask).sum() / mask.sum();
  }
  std::shared_ptr<data::DataLoader> loader(uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    auto a = torch::randn({64, 1}, gen), b = torch::randn({64, 1}, gen);
    auto mask = (torch::arange(64) % 2 == 0).to(torch::kFloat).reshape({64, 1});
    auto y = torch::where(mask > 0, 3 * a - 2 * b, torch::full({64, 1}, 1000.0f));
    auto ds = std::make_shared<data::TensorDataset>(
        std::map<std::string, torch::Tensor>{{"a", a}, {"b", b}, {"mask", mask}, {"target", y}});
    return std::make_shared<data::DataLoader>(
        ds, data::DataLoaderOptions().batch_size(context_.per_slot_batch_size()));
  }
  torch::nn::Linear a_{nullptr}, b_{nullptr};
  std::shared_ptr<torch::optim::SGD> opt_;
};
DET_REGISTER_TRIAL(TwoInputTrial, "two_inputs");

TEST(NamedBatches, ATrialWithTwoInputsAndAMaskTrains) {
  auto cfg = make_config("two_inputs",
                         "scheduling_unit: 16\nmin_validation_period: {batches: "
                         "16}\nperform_initial_validation: true\n",
                         160);
  TempDir tmp;
  auto result = run_trial(cfg, tmp.path);
  auto val = read_reports(tmp.path, "validation");
  ASSERT_GE(val.size(), 2u);
  // Learnt w_a = 3, w_b = -2 from the unmasked half: the masked garbage targets never count.
  EXPECT_LT(val.back()["metrics"]["validation_loss"].get<double>(), 1e-3);
  EXPECT_GT(val.front()["metrics"]["validation_loss"].get<double>(), 0.1)
      << "a test that could not fail";
  EXPECT_EQ(result.state.batches_trained, 160);
}

}  // namespace
}  // namespace det

namespace det {
namespace {

// ---- non-finite metrics ----

/// OneVar whose reported loss turns NaN from batch 4 on (a diverging run).
class DivergingTrial : public OneVarTrial {
 public:
  using OneVarTrial::OneVarTrial;
  Metrics train_batch(data::Batch& b, int64_t e, int64_t i) override {
    auto m = OneVarTrial::train_batch(b, e, i);
    if (i >= 4) m["loss"] = m["loss"] * std::nan("");
    return m;
  }
};
DET_REGISTER_TRIAL(DivergingTrial, "diverging");

TEST(NonFinite, ANaNLossIsRecordedAsNaNAndWarnedOrFailsTheTrial) {
  TempDir tmp;
  auto cfg = make_config("diverging", "scheduling_unit: 4\n", 12);
  auto result = run_trial(cfg, tmp.path);
  auto reports = read_reports(tmp.path, "training");
  ASSERT_EQ(reports.size(), 3u);
  EXPECT_TRUE(reports[0]["metrics"]["loss"].is_number());
  EXPECT_EQ(reports[1]["metrics"]["loss"], "NaN") << "not null: the record says what happened";
  EXPECT_EQ(result.state.batches_trained, 12) << "by default training goes on, as in Determined";

  TempDir strict;
  auto strict_cfg = make_config(
      "diverging", "scheduling_unit: 4\noptimizations: {fail_on_non_finite: true}\n", 12);
  try {
    run_trial(strict_cfg, strict.path);
    ADD_FAILURE() << "no error";
  } catch (const NonFiniteMetric& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite training metric(s) loss=NaN at batch 8"),
              std::string::npos)
        << e.what();
  }
}

// Which method a class overrides is known where it is registered: the member's class.
static_assert(detail::overrides_evaluate_batch<OneVarTrial>);
static_assert(!detail::overrides_evaluate_full_dataset<OneVarTrial>);
static_assert(!detail::overrides_evaluate_batch<NoEvaluateTrial>);

class BothEvaluationsTrial : public OneVarTrial {
 public:
  static inline bool built = false;
  explicit BothEvaluationsTrial(TrialContext& ctx) : OneVarTrial(ctx) { built = true; }
  Metrics evaluate_full_dataset(data::DataLoader&) override {
    return {{"validation_loss", torch::tensor(1.0)}};
  }
};
DET_REGISTER_TRIAL(BothEvaluationsTrial, "both_evaluations");
static_assert(detail::overrides_evaluate_batch<BothEvaluationsTrial> &&
              detail::overrides_evaluate_full_dataset<BothEvaluationsTrial>);

// An override declared private cannot be named from outside the class, and still counts.
class PrivateEvaluateTrial : public OneVarTrial {
 public:
  using OneVarTrial::OneVarTrial;

 private:
  Metrics evaluate_full_dataset(data::DataLoader&) override { return {}; }
};
static_assert(detail::overrides_evaluate_full_dataset<PrivateEvaluateTrial>);
static_assert(detail::overrides_evaluate_batch<PrivateEvaluateTrial>);

TEST(Evaluation, ATrialOverridingBothEvaluateMethodsIsRefusedBeforeItIsBuilt) {
  auto cfg = make_config("both_evaluations", "", 2);
  const std::string expected =
      "trial 'both_evaluations' overrides both evaluate_batch and evaluate_full_dataset; keep one";
  TempDir tmp;
  BothEvaluationsTrial::built = false;
  try {
    run_trial(cfg, tmp.path);
    ADD_FAILURE() << "a trial overriding both evaluate methods ran";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(expected, 0), 0u) << e.what();
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << "one line";
  }
  EXPECT_FALSE(BothEvaluationsTrial::built);
  // validate-config's path (the settings check, without building the trial) refuses it too.
  TrialContext ctx(cfg, {{"global_batch_size", 4}}, 1, 0, torch::kCPU, nullptr);
  EXPECT_THROW(TrialRegistry::instance().check_config("both_evaluations", ctx), Error);
  EXPECT_NO_THROW(TrialRegistry::instance().check_config("onevar", ctx));
}

}  // namespace
}  // namespace det
