#include "det/core/amp.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "det/core/checkpoint.h"
#include "det/core/controller.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "test_trials.h"

namespace det {
namespace {
using json = nlohmann::json;
using testing::make_config;
using testing::run_trial;
using testing::TempDir;

json trace() {
  return json::parse(
      util::read_file(std::string(DET_TEST_DATA_DIR) + "/amp/grad_scaler_trace.json"));
}

torch::Tensor tensor_of(const json& rows) {
  std::vector<float> v;
  int64_t r = 0, c = 0;
  for (const auto& row : rows) {
    ++r;
    c = static_cast<int64_t>(row.size());
    for (const auto& x : row) v.push_back(x.get<float>());
  }
  return torch::tensor(v).reshape({r, c});
}

float injected(const std::string& s) {
  if (s == "inf") return std::numeric_limits<float>::infinity();
  if (s == "-inf") return -std::numeric_limits<float>::infinity();
  return std::numeric_limits<float>::quiet_NaN();
}

// Replays PyTorch's GradScaler trace (tests/testdata/amp/make_grad_scaler_trace.py): skipped
// steps on inf/NaN, backoff, growth after growth_interval finite steps, unscale_ before clipping,
// and the state carried through state_dict() halfway (a resume).
TEST(GradScaler, FollowsPyTorchsGradScalerStepByStep) {
  const json t = trace();
  const auto& o = t["options"];
  GradScalerOptions options;
  options.init_scale = o["init_scale"];
  options.growth_factor = o["growth_factor"];
  options.backoff_factor = o["backoff_factor"];
  options.growth_interval = o["growth_interval"];
  auto lin = torch::nn::Linear(torch::nn::LinearOptions(3, 2).bias(false));
  {
    torch::NoGradGuard g;
    lin->weight.copy_(tensor_of(t["w0"]));
  }
  torch::optim::SGD opt(lin->parameters(), torch::optim::SGDOptions(t["lr"].get<double>()));
  auto scaler = std::make_unique<GradScaler>(options);
  const auto x = tensor_of(t["x"]), y = tensor_of(t["y"]);
  const auto& steps = t["steps"];
  std::set<int> unscale_first;
  for (const auto& i : t["unscale_first"]) unscale_first.insert(i.get<int>());
  int skipped = 0;
  for (size_t i = 0; i < steps.size(); ++i) {
    SCOPED_TRACE("iteration " + std::to_string(i));
    if (i == 7) {  // a resume: a new scaler from the old one's state
      auto state = scaler->state_dict();
      scaler = std::make_unique<GradScaler>(options);
      scaler->load_state_dict(state);
    }
    opt.zero_grad();
    auto loss = (lin->forward(x) - y).pow(2).mean();
    scaler->scale(loss).backward();
    const std::string key = std::to_string(i);
    if (t["inject"].contains(key)) {
      torch::NoGradGuard g;
      lin->weight.mutable_grad()[0][1] = injected(t["inject"][key]);
    }
    if (unscale_first.count(static_cast<int>(i))) {
      scaler->unscale_(opt);
      torch::nn::utils::clip_grad_norm_(lin->parameters(), t["clip_norm"].get<double>());
    }
    const bool stepped = scaler->step(opt);
    scaler->update();
    const auto& want = steps[i];
    EXPECT_EQ(stepped, want["stepped"].get<bool>());
    skipped += !stepped;
    EXPECT_EQ(scaler->get_scale(), want["scale"].get<double>());
    EXPECT_EQ(scaler->growth_tracker(), want["growth_tracker"].get<int64_t>());
    EXPECT_NEAR(loss.item<float>(), want["loss"].get<float>(), 1e-5);
    EXPECT_TRUE(torch::allclose(lin->weight, tensor_of(want["weight"]), 1e-5, 1e-6))
        << lin->weight << "\nwant\n"
        << tensor_of(want["weight"]);
  }
  EXPECT_EQ(skipped, static_cast<int>(t["inject"].size()));
}

TEST(GradScaler, MisuseAndBadStateAreClearErrors) {
  auto lin = torch::nn::Linear(2, 1);
  torch::optim::SGD opt(lin->parameters(), torch::optim::SGDOptions(0.1));
  GradScaler s;
  EXPECT_THROW(s.update(), Error);  // nothing recorded yet, as PyTorch
  lin->forward(torch::ones({1, 2})).sum().backward();
  s.unscale_(opt);
  EXPECT_THROW(s.unscale_(opt), Error);  // twice before update
  s.step(opt);
  EXPECT_THROW(s.step(opt), Error);
  s.update();
  EXPECT_THROW(s.load_state_dict(json{{"scale", -1.0}, {"_growth_tracker", 0}}), CheckpointError);
  EXPECT_THROW(s.load_state_dict(json::object()), CheckpointError);
  GradScalerOptions bad;
  bad.growth_factor = 0.5;
  EXPECT_THROW(GradScaler{bad}, ConfigError);
  GradScalerOptions off;
  off.enabled = false;
  GradScaler disabled(off);
  EXPECT_EQ(disabled.get_scale(), 1.0);
  EXPECT_TRUE(disabled.state_dict().empty());
}

TEST(Autocast, Bf16OnTheCpuCastsMatmulsAndRestoresOnExit) {
  const torch::Device cpu(torch::kCPU);
  auto a = torch::randn({4, 4}), b = torch::randn({4, 4});
  EXPECT_FALSE(Autocast::is_enabled(cpu));
  {
    Autocast outer(cpu, Precision::kBFloat16);
    EXPECT_TRUE(Autocast::is_enabled(cpu));
    EXPECT_EQ(torch::mm(a, b).scalar_type(),
              torch::kBFloat16);  // on LibTorch's lower-precision list
    {
      Autocast off(cpu, Precision::kFloat32);
      EXPECT_FALSE(Autocast::is_enabled(cpu));
      EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
    }
    EXPECT_TRUE(Autocast::is_enabled(cpu));
  }
  EXPECT_FALSE(Autocast::is_enabled(cpu));
  EXPECT_EQ(torch::mm(a, b).scalar_type(), torch::kFloat);
}

TEST(MixedPrecision, ValuesAndDevicesAreCheckedLoudly) {
  EXPECT_EQ(parse_precision("O0"), Precision::kFloat32);
  EXPECT_EQ(parse_precision("O1"), Precision::kFloat16);
  EXPECT_EQ(parse_precision("O2"), Precision::kFloat16);
  EXPECT_EQ(parse_precision("fp16"), Precision::kFloat16);
  EXPECT_EQ(parse_precision("bf16"), Precision::kBFloat16);
  EXPECT_THROW(parse_precision("O3"), ConfigError);
  try {
    check_precision_supported(Precision::kFloat16, torch::Device(torch::kCPU));
    FAIL() << "fp16 on the CPU must be refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("use bf16 on the CPU"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(check_precision_supported(Precision::kBFloat16, torch::Device(torch::kCPU)));
  try {
    make_config("onevar", "optimizations: {mixed_precision: O3}\n", 4);
    FAIL() << "O3 must be refused";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("O3"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("test.yaml:"), std::string::npos) << e.what();
  }
  if (!torch::cuda::is_available()) {
    TempDir tmp;
    auto cfg = make_config("onevar", "optimizations: {mixed_precision: fp16}\n", 4);
    EXPECT_THROW(run_trial(cfg, tmp.path), ConfigError);  // never a silent FP32 run
  }
}

// A trial that owns its scaler (Determined's wrap_scaler) and turns its loss to NaN on chosen
// batches: the harness steps through the scaler, skips those steps, updates the scale once per
// update batch and checkpoints it.
class ScaledTrial : public Trial {
 public:
  explicit ScaledTrial(TrialContext& ctx) : Trial(ctx) {
    model_ = ctx.wrap_model(torch::nn::Linear(4, 1));
    opt_ = ctx.wrap_optimizer(
        std::make_shared<torch::optim::SGD>(model_->parameters(), torch::optim::SGDOptions(0.05)));
    GradScalerOptions o;
    o.init_scale = 256;
    o.growth_interval = 3;
    scaler_ = ctx.wrap_scaler(std::make_shared<GradScaler>(o));
  }
  std::shared_ptr<data::DataLoader> build_training_data_loader() override { return loader(64); }
  std::shared_ptr<data::DataLoader> build_validation_data_loader() override { return loader(16); }
  Metrics train_batch(data::Batch& b, int64_t, int64_t batch_idx) override {
    auto loss = torch::mse_loss(model_->forward(b.data), b.target);
    if (batch_idx == 5 || batch_idx == 6 || batch_idx == 13) loss = loss * NAN;
    context_.backward(scaler_->scale(loss));
    context_.step_optimizer(*opt_);
    return {{"loss", loss}, {"scale", torch::tensor(scaler_->get_scale())}};
  }
  Metrics evaluate_batch(data::Batch& b, int64_t) override {
    return {{"validation_loss", torch::mse_loss(model_->forward(b.data), b.target)}};
  }

 private:
  std::shared_ptr<data::DataLoader> loader(int64_t n) {
    auto gen = at::detail::createCPUGenerator(3);
    auto x = torch::randn({n, 4}, gen);
    auto y = x.sum(1, true);
    return std::make_shared<data::DataLoader>(
        std::make_shared<data::TensorDataset>(x, y),
        data::DataLoaderOptions().batch_size(context_.per_slot_batch_size()));
  }
  torch::nn::Linear model_{nullptr};
  std::shared_ptr<torch::optim::SGD> opt_;
  std::shared_ptr<GradScaler> scaler_;
};
DET_REGISTER_TRIAL(ScaledTrial, "scaled");

json metadata_of(const std::filesystem::path& ckpt) {
  return json::parse(util::read_file(ckpt / "metadata.json"));
}

TEST(GradScaler, AWrappedScalerSkipsNonFiniteStepsAndItsStateSurvivesResume) {
  const std::string extra =
      "scheduling_unit: 1\nmin_checkpoint_period: {batches: 8}\n"
      "checkpoint_storage: {host_path: /unused, save_trial_latest: 5, save_trial_best: 0}\n";
  auto cfg = make_config("scaled", extra, 16);
  TempDir straight;
  auto a = run_trial(cfg, straight.path);
  // Per batch (aggregation 1): three finite steps (0-2) grow 256 to 512; NaN at 5 and 6 halves it
  // twice; three finite steps (7-9) grow it to 256, three more (10-12) to 512; NaN at 13 halves.
  std::vector<double> scales;
  for (auto& r : testing::read_reports(straight.path, "training"))
    scales.push_back(r["metrics"]["scale"].get<double>());
  ASSERT_EQ(scales.size(), 16u);
  // The metric is read inside train_batch, before that batch's update.
  EXPECT_EQ(scales, (std::vector<double>{256, 256, 256, 512, 512, 512, 256, 128, 128, 128, 256, 256,
                                         256, 512, 256, 256}));
  auto reports = testing::read_reports(straight.path, "training");
  EXPECT_EQ(reports.back()["throughput"]["skipped_steps"], 3);
  EXPECT_EQ(reports.back()["throughput"]["loss_scale"], 256.0);
  ASSERT_EQ(a.checkpoints.size(), 2u);
  auto mid = metadata_of(a.checkpoints[0].path);
  EXPECT_EQ(mid["format_version"], 3);
  EXPECT_EQ(mid["grad_scaler"]["scale"], 128.0);
  EXPECT_EQ(mid["grad_scaler"]["_growth_tracker"], 1);  // batch 7 was finite

  TempDir resumed;
  TrialRunOptions opt;
  opt.resume_from = a.checkpoints[0].path;
  auto b = run_trial(cfg, resumed.path, opt);
  EXPECT_EQ(metadata_of(b.checkpoints.back().path)["grad_scaler"],
            metadata_of(a.checkpoints.back().path)["grad_scaler"]);
  auto ra = testing::read_reports(straight.path, "validation"),
       rb = testing::read_reports(resumed.path, "validation");
  ASSERT_FALSE(rb.empty());
  EXPECT_EQ(ra.back()["metrics"], rb.back()["metrics"]);  // bit-identical after the resume
}

// Reports whether train_batch and evaluate_batch ran under autocast (the model's output dtype).
class DtypeProbeTrial : public Trial {
 public:
  explicit DtypeProbeTrial(TrialContext& ctx) : Trial(ctx) {
    model_ = ctx.wrap_model(torch::nn::Linear(4, 1));
    opt_ = ctx.wrap_optimizer(
        std::make_shared<torch::optim::SGD>(model_->parameters(), torch::optim::SGDOptions(0.05)));
  }
  std::shared_ptr<data::DataLoader> build_training_data_loader() override { return loader(64); }
  std::shared_ptr<data::DataLoader> build_validation_data_loader() override { return loader(16); }
  Metrics train_batch(data::Batch& b, int64_t, int64_t) override {
    auto out = model_->forward(b.data);
    auto loss = torch::mse_loss(out.to(torch::kFloat), b.target);
    context_.backward(loss);
    context_.step_optimizer(*opt_);
    return {{"loss", loss},
            {"bf16", torch::tensor(out.scalar_type() == torch::kBFloat16 ? 1.0 : 0.0)}};
  }
  Metrics evaluate_batch(data::Batch& b, int64_t) override {
    auto out = model_->forward(b.data);
    return {{"validation_loss", torch::mse_loss(out.to(torch::kFloat), b.target)},
            {"val_bf16", torch::tensor(out.scalar_type() == torch::kBFloat16 ? 1.0 : 0.0)}};
  }

 private:
  std::shared_ptr<data::DataLoader> loader(int64_t n) {
    auto gen = at::detail::createCPUGenerator(4);
    auto x = torch::randn({n, 4}, gen);
    return std::make_shared<data::DataLoader>(
        std::make_shared<data::TensorDataset>(x, x.sum(1, true)),
        data::DataLoaderOptions().batch_size(context_.per_slot_batch_size()));
  }
  torch::nn::Linear model_{nullptr};
  std::shared_ptr<torch::optim::SGD> opt_;
};
DET_REGISTER_TRIAL(DtypeProbeTrial, "dtype_probe");

// optimizations.mixed_precision: bf16 through the harness on the CPU: train_batch and
// evaluate_batch run under bf16 autocast, weights and gradients stay FP32, the loss falls, no
// scaler is checkpointed, and a resume ends bit-identical to the straight run.
TEST(MixedPrecision, Bf16HarnessRunTrainsUnderAutocastAndResumesExactly) {
  const std::string extra =
      "scheduling_unit: 4\nmin_validation_period: {batches: 8}\nmin_checkpoint_period: {batches: "
      "8}\ncheckpoint_storage: {host_path: /unused, save_trial_latest: 5, save_trial_best: 0}\n";
  TempDir fp32_dir, straight, resumed;
  auto fp32 = run_trial(make_config("dtype_probe", extra, 24), fp32_dir.path);
  auto cfg = make_config("dtype_probe", extra + "optimizations: {mixed_precision: bf16}\n", 24);
  auto a = run_trial(cfg, straight.path);
  auto t32 = testing::read_reports(fp32_dir.path, "training");
  auto t16 = testing::read_reports(straight.path, "training");
  EXPECT_EQ(t32.front()["metrics"]["bf16"], 0.0);
  EXPECT_EQ(t16.front()["metrics"]["bf16"], 1.0);  // every batch: the average is exactly 1
  auto v16 = testing::read_reports(straight.path, "validation");
  ASSERT_EQ(v16.size(), 3u);
  EXPECT_EQ(v16.back()["metrics"]["val_bf16"], 1.0);
  EXPECT_LT(v16.back()["metrics"]["validation_loss"].get<double>(),
            v16.front()["metrics"]["validation_loss"].get<double>());
  ASSERT_EQ(a.checkpoints.size(), 3u);
  EXPECT_FALSE(metadata_of(a.checkpoints.back().path).contains("grad_scaler"));
  TrialRunOptions opt;
  opt.resume_from = a.checkpoints[0].path;
  run_trial(cfg, resumed.path, opt);
  auto vr = testing::read_reports(resumed.path, "validation");
  ASSERT_FALSE(vr.empty());
  EXPECT_EQ(vr.back()["metrics"], v16.back()["metrics"]);
}

TEST(GradScaler, AHarnessScalerAndAWrappedOneAreNotBothAllowed) {
  TrialContext ctx(make_config("scaled", "", 4), json{{"global_batch_size", 4}}, 1, 1,
                   torch::Device(torch::kCPU), nullptr);
  ctx.wrap_scaler(std::make_shared<GradScaler>());
  EXPECT_THROW(ctx.wrap_scaler(std::make_shared<GradScaler>()), Error);  // only once
  EXPECT_NE(ctx.scaler(), nullptr);
  EXPECT_EQ(ctx.precision(), Precision::kFloat32);
}

}  // namespace
}  // namespace det
