// A trial whose batches carry named tensors (two inputs and a mask) and a callback with state
// (early stopping). Part of the example user executable: my-trainer configs/example/two_inputs.yaml
#include <torch/torch.h>

#include <limits>

#include "det/core/registry.h"
#include "det/data/loader.h"

namespace {

// Stops the trial when validation_loss has not improved by `min_delta` for `patience`
// validations. Its state (best loss, validations without improvement) is checkpointed, so a
// resumed trial keeps counting where it stopped.
class EarlyStopping : public det::Callback {
 public:
  EarlyStopping(det::TrialContext& context, int patience, double min_delta)
      : context_(context), patience_(patience), min_delta_(min_delta) {}

  void on_validation_end(const det::Metrics& metrics) override {
    const double loss = metrics.at("validation_loss").item<double>();
    if (loss < best_ - min_delta_) {
      best_ = loss;
      stale_ = 0;
    } else if (++stale_ >= patience_) {
      context_.request_stop();  // checkpoint and stop after this batch
    }
  }
  nlohmann::json state_dict() const override { return {{"best", best_}, {"stale", stale_}}; }
  void load_state_dict(const nlohmann::json& state) override {
    best_ = state.at("best").get<double>();
    stale_ = state.at("stale").get<int>();
  }

 private:
  det::TrialContext& context_;
  int patience_;
  double min_delta_;
  double best_ = std::numeric_limits<double>::max();
  int stale_ = 0;
};

// Fits y = 3a - 2b from two inputs, each through its own linear layer. Half of the examples
// carry garbage targets and a mask of 0, which keeps them out of the loss.
class TwoInputsTrial : public det::Trial {
 public:
  explicit TwoInputsTrial(det::TrialContext& ctx) : det::Trial(ctx) {
    a_ = ctx.wrap_model(torch::nn::Linear(torch::nn::LinearOptions(1, 1).bias(false)));
    b_ = ctx.wrap_model(torch::nn::Linear(torch::nn::LinearOptions(1, 1).bias(false)));
    auto params = a_->parameters();
    for (auto& p : b_->parameters()) params.push_back(p);
    optimizer_ = ctx.wrap_optimizer(std::make_shared<torch::optim::SGD>(
        params, torch::optim::SGDOptions(ctx.hparam("learning_rate").as<double>())));
  }

  std::shared_ptr<det::data::DataLoader> build_training_data_loader() override {
    return loader(1024, 1);
  }
  std::shared_ptr<det::data::DataLoader> build_validation_data_loader() override {
    return loader(256, 2);
  }

  det::Callbacks build_callbacks() override {
    return {{"early_stopping", std::make_shared<EarlyStopping>(
                                   context_, context_.hparam("patience").as<int>(), 1e-4)}};
  }

  det::Metrics train_batch(det::data::Batch& batch, int64_t, int64_t) override {
    auto loss = masked_mse(batch);
    context_.backward(loss);
    context_.step_optimizer(*optimizer_);
    return {{"loss", loss}};
  }

  det::Metrics evaluate_batch(det::data::Batch& batch, int64_t) override {
    return {{"validation_loss", masked_mse(batch)}};
  }

 private:
  torch::Tensor masked_mse(det::data::Batch& batch) {
    auto prediction = a_->forward(batch.at("a")) + b_->forward(batch.at("b"));
    const auto& mask = batch.at("mask");
    return ((prediction - batch.target).pow(2) * mask).sum() / mask.sum();
  }

  std::shared_ptr<det::data::DataLoader> loader(int64_t n, uint64_t seed) {
    auto gen = at::detail::createCPUGenerator(seed);
    auto a = torch::randn({n, 1}, gen), b = torch::randn({n, 1}, gen);
    auto mask = (torch::arange(n) % 2).to(torch::kFloat).reshape({n, 1});
    auto y = torch::where(mask > 0, 3 * a - 2 * b, torch::full({n, 1}, 1e3));
    // Every name becomes a tensor of each batch: batch.at("a"), batch.at("mask"), batch.target.
    auto dataset = std::make_shared<det::data::TensorDataset>(
        std::map<std::string, torch::Tensor>{{"a", a}, {"b", b}, {"mask", mask}, {"target", y}});
    return std::make_shared<det::data::DataLoader>(dataset,
                                                   det::data::DataLoaderOptions()
                                                       .batch_size(context_.per_slot_batch_size())
                                                       .shuffle(seed == 1)
                                                       .seed(context_.trial_seed()));
  }

  torch::nn::Linear a_{nullptr}, b_{nullptr};
  std::shared_ptr<torch::optim::SGD> optimizer_;
};

}  // namespace

DET_REGISTER_TRIAL(TwoInputsTrial, "two_inputs_example");
