// A user's own executable: link det::det, define and register a trial, and hand the command line
// to det::main. It then behaves exactly like det-run, with this trial available as
// `entrypoint: linear_regression` (try: my-trainer configs/example/linear.yaml).
#include <torch/torch.h>

#include "det/core/registry.h"
#include "det/data/loader.h"
#include "det/main.h"

namespace {

// Fits y = 3x - 1 on synthetic data.
class LinearRegressionTrial : public det::Trial {
 public:
  explicit LinearRegressionTrial(det::TrialContext& ctx) : det::Trial(ctx) {
    model_ = ctx.wrap_model(torch::nn::Linear(1, 1));
    optimizer_ = ctx.wrap_optimizer(std::make_shared<torch::optim::SGD>(
        model_->parameters(), torch::optim::SGDOptions(ctx.hparam("learning_rate").as<double>())));
  }

  std::shared_ptr<det::data::DataLoader> build_training_data_loader() override {
    return loader(1024, true);
  }
  std::shared_ptr<det::data::DataLoader> build_validation_data_loader() override {
    return loader(256, false);
  }

  det::Metrics train_batch(det::data::Batch& batch, int64_t, int64_t) override {
    auto loss = torch::mse_loss(model_->forward(batch.data), batch.target);
    context_.backward(loss);
    context_.step_optimizer(*optimizer_);
    return {{"loss", loss}};
  }

  det::Metrics evaluate_batch(det::data::Batch& batch, int64_t) override {
    return {{"validation_loss", torch::mse_loss(model_->forward(batch.data), batch.target)}};
  }

 private:
  std::shared_ptr<det::data::DataLoader> loader(int64_t n, bool train) {
    auto gen = at::detail::createCPUGenerator(train ? 1 : 2);
    auto x = torch::rand({n, 1}, gen) * 2 - 1;
    auto y = 3 * x - 1;
    auto ds = std::make_shared<det::data::TensorDataset>(x, y);
    return std::make_shared<det::data::DataLoader>(ds,
                                                   det::data::DataLoaderOptions()
                                                       .batch_size(context_.per_slot_batch_size())
                                                       .shuffle(train)
                                                       .seed(context_.trial_seed()));
  }

  torch::nn::Linear model_{nullptr};
  std::shared_ptr<torch::optim::SGD> optimizer_;
};

}  // namespace

DET_REGISTER_TRIAL(LinearRegressionTrial, "linear_regression");

int main(int argc, char** argv) { return det::main(argc, argv); }
