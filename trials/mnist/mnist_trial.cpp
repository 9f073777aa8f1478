// The MNIST CNN of Determined's mnist_pytorch example (spec/models.md 1.1), with Adadelta and
// NLL loss. Traps kept faithful: the second dropout is nn.Dropout2d applied to a 2-D tensor,
// which PyTorch 1.13 runs as feature dropout over (N, C) -- element-wise dropout -- so it is an
// nn::Dropout here; nn.LogSoftmax() without dim picks dim 1 for 2-D input.
#include <torch/torch.h>

#include "../common/wiring.h"
#include "det/core/registry.h"
#include "det/data/loader.h"
#include "det/data/mnist.h"
#include "det/optim/adadelta.h"

namespace {

// The example's hyperparameters, each checked where it was written.
const det::config::Range kFilters{1, 4096}, kDropout{0, 1};

torch::nn::Sequential build_model(const det::TrialContext& ctx) {
  const auto n1 = ctx.hparam("n_filters1").as<int64_t>(kFilters);
  const auto n2 = ctx.hparam("n_filters2").as<int64_t>(kFilters);
  return torch::nn::Sequential(
      torch::nn::Conv2d(torch::nn::Conv2dOptions(1, n1, 3).stride(1)), torch::nn::ReLU(),
      torch::nn::Conv2d(torch::nn::Conv2dOptions(n1, n2, 3)), torch::nn::ReLU(),
      torch::nn::MaxPool2d(torch::nn::MaxPool2dOptions(2)),
      torch::nn::Dropout2d(
          torch::nn::Dropout2dOptions(ctx.hparam("dropout1").as<double>(kDropout))),
      torch::nn::Flatten(),  // 28 -> 26 -> 24 -> pool 12: 144 values per filter
      torch::nn::Linear(144 * n2, 128), torch::nn::ReLU(),
      torch::nn::Dropout(torch::nn::DropoutOptions(ctx.hparam("dropout2").as<double>(kDropout))),
      torch::nn::Linear(128, 10), torch::nn::LogSoftmax(torch::nn::LogSoftmaxOptions(1)));
}

class MnistTrial : public det::Trial {
 public:
  /// The data settings, checked by validate-config and before every run.
  static void check_config(const det::TrialContext& context) {
    det::trials::check_loader_settings(context.data());
  }

  explicit MnistTrial(det::TrialContext& ctx) : det::Trial(ctx) {
    model_ = ctx.wrap_model(build_model(ctx));
    optimizer_ = ctx.wrap_optimizer(std::make_shared<det::optim::Adadelta>(
        model_->parameters(),
        det::optim::AdadeltaOptions(
            ctx.hparam("learning_rate").as<double>(det::config::Range::greater_than(0)))));
  }

  std::shared_ptr<det::data::DataLoader> build_training_data_loader() override {
    return loader(true);
  }
  std::shared_ptr<det::data::DataLoader> build_validation_data_loader() override {
    return loader(false);
  }

  det::Metrics train_batch(det::data::Batch& batch, int64_t, int64_t) override {
    auto loss = torch::nll_loss(model_->forward(batch.data), batch.target);
    context_.backward(loss);
    context_.step_optimizer(*optimizer_);
    return {{"loss", loss}};
  }

  det::Metrics evaluate_batch(det::data::Batch& batch, int64_t) override {
    auto output = model_->forward(batch.data);
    auto loss = torch::nll_loss(output, batch.target);
    auto correct = output.argmax(1).eq(batch.target).sum().to(torch::kDouble);
    return {{"validation_loss", loss}, {"accuracy", correct / static_cast<double>(batch.size())}};
  }

 private:
  std::shared_ptr<det::data::DataLoader> loader(bool train) {
    const auto data = context_.data();
    // The example hard-codes a batch of 64; a global_batch_size hyperparameter overrides it.
    int64_t batch = context_.has_hparam("global_batch_size") ? context_.per_slot_batch_size()
                                                             : 64 / context_.size();
    // The settings first: a config mistake is reported before any data file is read.
    auto opts = det::trials::loader_options(context_, batch, 1)
                    .shuffle(train && data.get<bool>("shuffle", false));
    auto dataset = std::make_shared<det::data::MnistDataset>(
        det::data::MnistOptions().root(det::data::data_root(data)).train(train));
    return std::make_shared<det::data::DataLoader>(dataset, opts);
  }

  torch::nn::Sequential model_{nullptr};
  std::shared_ptr<det::optim::Adadelta> optimizer_;
};

}  // namespace

DET_REGISTER_TRIAL(MnistTrial, "mnist");
