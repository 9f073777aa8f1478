// ShiftViT as Determined's shiftvit_pytorch example trains it (spec/models.md §2.5): the
// hyperparameter sections `model` (ShiftViT arguments), `optimizer` (timm create_optimizer:
// AdamW without weight decay on biases and 1-D parameters), `scheduler` (timm cosine with linear
// warmup, stepped once per epoch) and `transform` (timm create_transform), data sets MNIST,
// CIFAR-10 or an ImageFolder tree (data.dataset_name), cross-entropy without label smoothing.
#include <torch/torch.h>

#include "../common/vision_data.h"
#include "det/core/registry.h"
#include "det/data/timm_transform.h"
#include "det/nn/shiftvit.h"
#include "det/optim/adamw.h"
#include "det/optim/lr_scheduler.h"

namespace {

class ShiftViTTrial : public det::Trial {
 public:
  /// The data settings, checked by validate-config and before every run.
  static void check_config(const det::TrialContext& context) {
    det::trials::VisionData::check(context);
  }

  explicit ShiftViTTrial(det::TrialContext& ctx) : det::Trial(ctx), data_(ctx) {
    const auto& meta = data_.metadata();
    det::nn::ShiftViTOptions o;
    o.img_size(meta.img_size);
    o.in_chans(meta.in_chans);
    o.num_classes(meta.num_classes);
    o.update_from_json(ctx.hparam("model"));
    model_ = ctx.wrap_model(det::nn::ShiftViT(o));
    optimizer_ =
        ctx.wrap_optimizer(det::optim::make_adamw_from_json(*model_, ctx.hparam("optimizer")));
    // The example steps timm's scheduler with the epoch index when an epoch starts; stepping
    // after the last batch of every epoch gives each epoch the same rate.
    det::trials::wrap_timm_cosine(ctx, *optimizer_, ctx.hparam("scheduler"));
    // No `transform` section: timm's defaults.
    if (ctx.has_hparam("transform")) transform_ = ctx.hparam("transform");
  }

  std::shared_ptr<det::data::DataLoader> build_training_data_loader() override {
    return loader(true);
  }
  std::shared_ptr<det::data::DataLoader> build_validation_data_loader() override {
    return loader(false);
  }

  det::Metrics train_batch(det::data::Batch& batch, int64_t, int64_t) override {
    auto loss = torch::cross_entropy_loss(model_->forward(batch.data), batch.target);
    context_.backward(loss);
    context_.step_optimizer(*optimizer_);
    return {{"loss", loss}};
  }

  det::Metrics evaluate_batch(det::data::Batch& batch, int64_t) override {
    auto output = model_->forward(batch.data);
    auto correct = output.argmax(1).eq(batch.target).sum().to(torch::kDouble);
    return {{"validation_loss", torch::cross_entropy_loss(output, batch.target)},
            {"accuracy", correct / static_cast<double>(batch.size())}};
  }

 private:
  std::shared_ptr<det::data::DataLoader> loader(bool train) {
    const auto& m = data_.metadata();
    auto pipeline = det::data::make_timm_transform(transform_, m.img_size, m.mean, m.std, train);
    return data_.loader(train, std::move(pipeline));
  }

  det::trials::VisionData data_;
  det::nn::ShiftViT model_{nullptr};
  std::shared_ptr<torch::optim::AdamW> optimizer_;
  det::config::Args transform_{nullptr, "hyperparameters.transform"};
};

}  // namespace

DET_REGISTER_TRIAL(ShiftViTTrial, "shiftvit");
