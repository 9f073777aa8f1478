// The CIFAR-10 CNN of Determined's cifar10_pytorch example (spec/models.md 1.2): a Keras-style
// CNN trained with RMSprop(alpha=0.9, weight_decay=learning_rate_decay) and cross-entropy. The
// example never augmented or shuffled its data: ToTensor + Normalize(0.5, 0.5) only, which is the
// default here; `data.transforms.train` / `.validation` override it, `data.shuffle: true`
// shuffles the training set and `data.mixup` mixes training batches (docs/data.md). The last
// Dropout2d acts on a 2-D tensor, which PyTorch runs as element-wise dropout, so it is an
// nn::Dropout.
#include <torch/torch.h>

#include "../common/wiring.h"
#include "det/core/registry.h"
#include "det/data/cifar.h"
#include "det/data/loader.h"
#include "det/data/mnist.h"

namespace {

class CIFARTrial : public det::Trial {
 public:
  /// The data settings, checked by validate-config and before every run.
  static void check_config(const det::TrialContext& context) {
    det::trials::check_loader_settings(context.data());
  }

  explicit CIFARTrial(det::TrialContext& ctx) : det::Trial(ctx) {
    using namespace torch::nn;
    const det::config::Range dropout{0, 1};
    model_ = ctx.wrap_model(Sequential(
        Conv2d(Conv2dOptions(3, 32, 3)), ReLU(), Conv2d(Conv2dOptions(32, 32, 3)), ReLU(),
        MaxPool2d(2), Dropout2d(Dropout2dOptions(ctx.hparam("layer1_dropout").as<double>(dropout))),
        Conv2d(Conv2dOptions(32, 64, 3).padding(1)), ReLU(), Conv2d(Conv2dOptions(64, 64, 3)),
        ReLU(), MaxPool2d(2),
        Dropout2d(Dropout2dOptions(ctx.hparam("layer2_dropout").as<double>(dropout))),
        Flatten(),  // 32 -> 30 -> 28 -> 14 -> 14 -> 12 -> 6: 64 * 6 * 6 = 2304
        Linear(2304, 512), ReLU(),
        Dropout(DropoutOptions(ctx.hparam("layer3_dropout").as<double>(dropout))),
        Linear(512, 10)));
    optimizer_ = ctx.wrap_optimizer(std::make_shared<torch::optim::RMSprop>(
        model_->parameters(),
        torch::optim::RMSpropOptions(
            ctx.hparam("learning_rate").as<double>(det::config::Range::greater_than(0)))
            .alpha(0.9)
            .weight_decay(
                ctx.hparam("learning_rate_decay").as<double>(det::config::Range::at_least(0)))));
  }

  std::shared_ptr<det::data::DataLoader> build_training_data_loader() override {
    return loader(true);
  }
  std::shared_ptr<det::data::DataLoader> build_validation_data_loader() override {
    return loader(false);
  }

  det::Metrics train_batch(det::data::Batch& batch, int64_t, int64_t) override {
    auto output = model_->forward(batch.data);
    // With data.mixup the targets are soft [B, 10] label distributions.
    auto loss = batch.target.dim() == 2 ? det::data::soft_target_cross_entropy(output, batch.target)
                                        : torch::cross_entropy_loss(output, batch.target);
    context_.backward(loss);
    context_.step_optimizer(*optimizer_);
    auto accuracy = accuracy_of(output, batch.target);
    return {{"loss", loss}, {"train_error", 1 - accuracy}, {"train_accuracy", accuracy}};
  }

  det::Metrics evaluate_batch(det::data::Batch& batch, int64_t) override {
    auto accuracy = accuracy_of(model_->forward(batch.data), batch.target);
    return {{"validation_accuracy", accuracy}, {"validation_error", 1 - accuracy}};
  }

 private:
  static torch::Tensor accuracy_of(const torch::Tensor& output, const torch::Tensor& target) {
    auto labels =
        target.dim() == 2 ? target.argmax(1) : target;  // mixed targets: the dominant class
    return output.argmax(1).eq(labels).sum().to(torch::kDouble) /
           static_cast<double>(target.size(0));
  }

  std::shared_ptr<det::data::DataLoader> loader(bool train) {
    const auto data = context_.data();
    // The settings first: a config mistake is reported before any data file is read.
    const auto spec = det::trials::transforms_section(context_, train);
    det::data::Pipeline pipeline;
    if (!spec.is_null())
      pipeline = det::data::Pipeline::from_json(spec);
    else
      pipeline.normalize({0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f});
    std::shared_ptr<det::data::Mixup> mixup;
    if (train) mixup = det::data::Mixup::from_json(data["mixup"]);
    auto opts = det::trials::loader_options(context_, context_.per_slot_batch_size(), 2)
                    .shuffle(train && data.get<bool>("shuffle", false))
                    .drop_last(train && mixup != nullptr);  // mixup pairs examples: even batches
    auto cifar = std::make_shared<det::data::CifarDataset>(
        det::data::CifarOptions().root(det::data::data_root(data)).train(train));
    auto dataset = std::make_shared<det::data::ImageDataset>(cifar, pipeline, mixup);
    return std::make_shared<det::data::DataLoader>(dataset, opts);
  }

  torch::nn::Sequential model_{nullptr};
  std::shared_ptr<torch::optim::RMSprop> optimizer_;
};

}  // namespace

DET_REGISTER_TRIAL(CIFARTrial, "cifar10");
