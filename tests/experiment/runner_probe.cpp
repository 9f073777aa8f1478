// det-probe: a tiny trial for testing the experiment runner (tests/experiment/runner_test.cpp).
// Its validation metric is its hyperparameter `x`, so what the searcher decides is predictable;
// it trains a real (tiny) model so checkpoints and resume are real. Misbehaviour on demand, set
// through the environment the runner passes on to its workers:
//   DET_PROBE_CRASH="T:B[:always],..."  trial T kills itself (SIGKILL) at batch B, once (a marker
//                                         file in DET_PROBE_MARKERS remembers) or every time
//   DET_PROBE_STOP="T:B"                 trial T asks to stop (request_stop) at batch B
//   DET_PROBE_SLEEP_MS=N                 every batch sleeps N ms (for the Ctrl-C test)
//   DET_PROBE_NAN=T                      trial T's validation metric is NaN (a diverged trial)
//   DET_PROBE_HANG="T:B"                 trial T stops itself (SIGSTOP: hung, not dead) at batch B,
//   once DET_PROBE_RANK=R                     crashes and hangs happen on rank R only (else every
//   rank)
// and x > 0.9 makes the trial reject its hyperparameters (InvalidHP).
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "det/core/registry.h"
#include "det/data/loader.h"
#include "det/main.h"
#include "det/util/error.h"
#include "det/util/strings.h"

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

class ProbeTrial : public det::Trial {
 public:
  explicit ProbeTrial(det::TrialContext& ctx) : det::Trial(ctx) {
    x_ = ctx.hparam("x").as<double>();
    if (x_ > 0.9) throw det::InvalidHP("x = " + std::to_string(x_) + " is above 0.9");
    model_ = ctx.wrap_model(torch::nn::Linear(1, 1));
    optimizer_ = ctx.wrap_optimizer(
        std::make_shared<torch::optim::SGD>(model_->parameters(), torch::optim::SGDOptions(0.05)));
    sleep_ms_ = std::atoi(env("DET_PROBE_SLEEP_MS").c_str());
  }

  std::shared_ptr<det::data::DataLoader> build_training_data_loader() override {
    return loader(64, true);
  }
  std::shared_ptr<det::data::DataLoader> build_validation_data_loader() override {
    return loader(16, false);
  }

  det::Metrics train_batch(det::data::Batch& batch, int64_t, int64_t batch_idx) override {
    misbehave(batch_idx);
    if (sleep_ms_ > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms_));
    auto loss = torch::mse_loss(model_->forward(batch.data), batch.target);
    context_.backward(loss);
    context_.step_optimizer(*optimizer_);
    return {{"loss", loss}};
  }

  det::Metrics evaluate_batch(det::data::Batch& batch, int64_t) override {
    const bool nan =
        !env("DET_PROBE_NAN").empty() && std::stoll(env("DET_PROBE_NAN")) == context_.trial_id();
    // What the worker process was given: LibTorch's intra-op threads and the BLAS threads its
    // environment asked for (-1: not set).
    const std::string blas = env("OPENBLAS_NUM_THREADS");
    return {{"validation_loss", torch::tensor(nan ? std::nan("") : x_, torch::kDouble)},
            {"mse", torch::mse_loss(model_->forward(batch.data), batch.target)},
            {"intra_op_threads", torch::tensor(static_cast<double>(torch::get_num_threads()))},
            {"blas_threads", torch::tensor(blas.empty() ? -1.0 : std::stod(blas))}};
  }

 private:
  void misbehave(int64_t batch_idx) {
    const int64_t trial = context_.trial_id();
    if (!env("DET_PROBE_RANK").empty() && std::stoi(env("DET_PROBE_RANK")) != context_.rank())
      return;
    auto hang = det::util::split(env("DET_PROBE_HANG"), ':');
    if (hang.size() == 2 && std::stoll(hang[0]) == trial && std::stoll(hang[1]) == batch_idx) {
      std::filesystem::path marker =
          std::filesystem::path(env("DET_PROBE_MARKERS")) / ("hung-" + hang[0]);
      if (!std::filesystem::exists(marker)) {
        std::ofstream(marker) << batch_idx << "\n";
        std::raise(SIGSTOP);
      }
    }
    for (const auto& spec : det::util::split(env("DET_PROBE_CRASH"), ',')) {
      auto f = det::util::split(spec, ':');
      if (f.size() < 2 || std::stoll(f[0]) != trial || std::stoll(f[1]) != batch_idx) continue;
      std::filesystem::path marker =
          std::filesystem::path(env("DET_PROBE_MARKERS")) / ("crashed-" + f[0]);
      if (f.size() > 2 && f[2] == "always") std::raise(SIGKILL);
      if (!std::filesystem::exists(marker)) {
        std::ofstream(marker) << batch_idx << "\n";
        std::raise(SIGKILL);
      }
    }
    auto stop = det::util::split(env("DET_PROBE_STOP"), ':');
    if (stop.size() == 2 && std::stoll(stop[0]) == trial && std::stoll(stop[1]) == batch_idx)
      context_.request_stop();
  }

  std::shared_ptr<det::data::DataLoader> loader(int64_t n, bool train) {
    auto gen = at::detail::createCPUGenerator(train ? 1 : 2);
    auto x = torch::rand({n, 1}, gen) * 2 - 1;
    auto ds = std::make_shared<det::data::TensorDataset>(x, 3 * x - 1);
    return std::make_shared<det::data::DataLoader>(ds,
                                                   det::data::DataLoaderOptions()
                                                       .batch_size(context_.per_slot_batch_size())
                                                       .shuffle(train)
                                                       .seed(context_.trial_seed()));
  }

  double x_ = 0;
  int sleep_ms_ = 0;
  torch::nn::Linear model_{nullptr};
  std::shared_ptr<torch::optim::SGD> optimizer_;
};

}  // namespace

DET_REGISTER_TRIAL(ProbeTrial, "probe");

int main(int argc, char** argv) { return det::main(argc, argv); }
