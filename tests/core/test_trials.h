#pragma once
// Trials used by the core tests, registered like any user trial.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "det/config/experiment_config.h"
#include "det/core/controller.h"
#include "det/core/registry.h"
#include "det/data/loader.h"
#include "det/util/fs.h"
#include "det/util/rng.h"

namespace det::testing {

/// One observation per training batch of the one-variable fixture.
struct OneVarStep {
  int64_t batch_idx;
  double loss, w_before, w_after;
};

/// Determined's pytorch_onevar_model fixture: y = w*x with x = y = 1, w0 = 0, SGD(lr=0.001),
/// MSE loss, 64 examples, so loss = (1-w)^2 and w' = w + 2*0.001*(1-w) at each update.
class OneVarTrial : public Trial {
 public:
  static std::vector<OneVarStep>& steps() {
    static std::vector<OneVarStep> s;
    return s;
  }
  explicit OneVarTrial(TrialContext& ctx) : Trial(ctx) {
    model_ = ctx.wrap_model(torch::nn::Linear(torch::nn::LinearOptions(1, 1).bias(false)));
    torch::NoGradGuard g;
    model_->weight.zero_();
    opt_ = ctx.wrap_optimizer(
        std::make_shared<torch::optim::SGD>(model_->parameters(), torch::optim::SGDOptions(0.001)));
    label_sum_ = ctx.wrap_reducer(
        [](const std::vector<double>& v) {
          double s = 0;
          for (double x : v) s += x;
          return s;
        },
        "triangle_label_sum", /*for_training=*/false);
  }
  std::shared_ptr<data::DataLoader> build_training_data_loader() override { return loader(); }
  std::shared_ptr<data::DataLoader> build_validation_data_loader() override { return loader(); }
  Metrics train_batch(data::Batch& b, int64_t, int64_t batch_idx) override {
    double w_before = model_->weight.item<double>();
    auto loss = torch::mse_loss(model_->forward(b.data), b.target);
    context_.backward(loss);
    context_.step_optimizer(*opt_);
    steps().push_back({batch_idx, loss.item<double>(), w_before, model_->weight.item<double>()});
    return {{"loss", loss}, {"weight", model_->weight.detach().reshape({})}};
  }
  Metrics evaluate_batch(data::Batch& b, int64_t batch_idx) override {
    label_sum_->update(static_cast<double>(b.size() * batch_idx));  // Determined's TriangleLabelSum
    auto loss = torch::mse_loss(model_->forward(b.data), b.target);
    return {{"validation_loss", loss},
            {"val_batch", torch::tensor(static_cast<double>(batch_idx))}};
  }
  ReducerSpec evaluation_reducer() const override {
    return std::map<std::string, Reducer>{{"validation_loss", Reducer::kAvg},
                                          {"val_batch", Reducer::kSum}};
  }

 private:
  std::shared_ptr<data::DataLoader> loader() {
    auto ds = std::make_shared<data::TensorDataset>(torch::ones({64, 1}), torch::ones({64, 1}));
    return std::make_shared<data::DataLoader>(
        ds, data::DataLoaderOptions().batch_size(context_.per_slot_batch_size()));
  }
  torch::nn::Linear model_{nullptr};
  std::shared_ptr<torch::optim::SGD> opt_;
  std::shared_ptr<SimpleReducer> label_sum_;
};

/// A small MLP with dropout, Adam, a per-batch LR schedule and shuffled random data: every
/// source of state a resume must restore.
class NoisyTrial : public Trial {
 public:
  explicit NoisyTrial(TrialContext& ctx) : Trial(ctx) {
    model_ =
        ctx.wrap_model(torch::nn::Sequential(torch::nn::Linear(8, 16), torch::nn::ReLU(),
                                             torch::nn::Dropout(0.3), torch::nn::Linear(16, 1)));
    opt_ = ctx.wrap_optimizer(std::make_shared<torch::optim::Adam>(
        model_->parameters(), torch::optim::AdamOptions(0.01)));
    sched_ = ctx.wrap_lr_scheduler(std::make_shared<optim::StepLR>(*opt_, 7, 0.5),
                                   StepMode::kStepEveryBatch);
  }
  std::shared_ptr<data::DataLoader> build_training_data_loader() override {
    return loader(96, 1, true);
  }
  std::shared_ptr<data::DataLoader> build_validation_data_loader() override {
    return loader(32, 2, false);
  }
  Metrics train_batch(data::Batch& b, int64_t, int64_t) override {
    auto loss = torch::mse_loss(model_->forward(b.data), b.target);
    context_.backward(loss);
    context_.step_optimizer(*opt_);
    return {{"loss", loss}};
  }
  Metrics evaluate_batch(data::Batch& b, int64_t) override {
    return {{"validation_loss", torch::mse_loss(model_->forward(b.data), b.target)}};
  }
  torch::nn::Sequential& model() { return model_; }

 private:
  std::shared_ptr<data::DataLoader> loader(int64_t n, uint64_t data_seed, bool shuffle) {
    auto gen = at::detail::createCPUGenerator(data_seed);
    auto x = torch::randn({n, 8}, gen);
    auto y = x.sum(1, true) + 0.1 * torch::randn({n, 1}, gen);
    return std::make_shared<data::DataLoader>(std::make_shared<data::TensorDataset>(x, y),
                                              data::DataLoaderOptions()
                                                  .batch_size(context_.per_slot_batch_size())
                                                  .shuffle(shuffle)
                                                  .seed(context_.trial_seed())
                                                  .num_workers(2));
  }
  torch::nn::Sequential model_{nullptr};
  std::shared_ptr<torch::optim::Adam> opt_;
  std::shared_ptr<optim::StepLR> sched_;
};

/// A fresh temporary directory, removed at destruction.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    path = std::filesystem::temp_directory_path() /
           ("det-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  static int& counter() {
    static int c = 0;
    return c;
  }
};

/// Writes each report to <trial_dir>/metrics.jsonl, as the experiment recorder does in a real run
/// (the controller itself writes no records).
struct MetricsFile : TrialListener {
  std::filesystem::path trial_dir;
  void on_report(const record::MetricsReport& report) override {
    util::append_line(trial_dir / "metrics.jsonl", report.to_json().dump());
  }
};

/// A MetricsFile for `dir` that lives as long as the test program.
inline MetricsFile* metrics_file(const std::filesystem::path& dir) {
  static std::map<std::string, std::unique_ptr<MetricsFile>> files;
  auto& f = files[dir.string()];
  if (!f) {
    f = std::make_unique<MetricsFile>();
    f->trial_dir = dir;
  }
  return f.get();
}

/// A config of `entrypoint` with global_batch_size 4, the single searcher on validation_loss for
/// `batches` batches, and `extra` YAML lines.
inline config::ExperimentConfig make_config(const std::string& entrypoint, const std::string& extra,
                                            int64_t batches) {
  std::string yaml = "name: t\nentrypoint: " + entrypoint +
                     "\nhyperparameters:\n  global_batch_size: 4\nsearcher:\n  name: single\n  "
                     "metric: validation_loss\n"
                     "  max_length:\n    batches: " +
                     std::to_string(batches) + "\n" + extra;
  return config::parse_experiment_config(yaml, "test.yaml");
}

/// Runs a trial in `dir` (seed 17 unless given), its reports written to dir/metrics.jsonl
/// unless the options bring their own listener.
inline TrialResult run_trial(const config::ExperimentConfig& cfg, const std::filesystem::path& dir,
                             TrialRunOptions opt = {}) {
  MetricsFile file;
  file.trial_dir = dir;
  if (!opt.listener) opt.listener = &file;
  if (auto* f = dynamic_cast<MetricsFile*>(opt.listener)) f->trial_dir = dir;
  opt.trial_dir = dir;
  opt.trial_seed = opt.trial_seed ? opt.trial_seed : 17;
  util::NpRandom rng(1);
  opt.hparams = config::sample_hyperparameters(cfg.hyperparameters, rng);
  opt.show_progress = false;
  TrialController c(cfg, TrialRegistry::instance().find(cfg.entrypoint), opt);
  return c.run();
}

/// Reads metrics.jsonl lines of one kind ("training" or "validation").
inline std::vector<nlohmann::json> read_reports(const std::filesystem::path& trial_dir,
                                                const std::string& kind) {
  std::vector<nlohmann::json> out;
  std::ifstream in(trial_dir / "metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    if (j["kind"] == kind) out.push_back(j);
  }
  return out;
}

}  // namespace det::testing
