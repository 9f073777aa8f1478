// ViT (spec/models.md §3) on MNIST, CIFAR-10 or an ImageFolder tree, from scratch or fine-tuned
// from HF-layout .safetensors weights (`model.pretrained`, e.g. google/vit-base-patch16-224-in21k;
// the head is new when the classes differ, position embeddings are resized to the image size).
//
// hyperparameters:
//   model: ViTOptions keys (variant ti/s/b/l, patch_size, img_size, drop_rate, ...), pretrained
//   optimizer: {name: sgd, lr, momentum, weight_decay, clip_grad_norm} (Graphcore/Google: weight
//     decay on parameters of 2 or more dimensions only) or {name: adamw, lr, weight_decay, eps,
//     betas, clip_grad_norm} (timm's groups)
//   scheduler: {name: cosine_warmup, warmup_steps, total_steps} (HF
//   get_cosine_schedule_with_warmup,
//     stepped per optimizer step) or timm's cosine ({sched: cosine, epochs, ...}, per epoch)
// data: as trials/common/vision_data.h; data.transforms.{train,validation} pipelines
// (docs/data.md),
//   else Resize to img_size when it differs from the data set's, then Normalize(0.5, 0.5).
// data.export_safetensors: a path; before every validation the chief writes the weights there in
//   HF layout (a callback).
#include <cmath>

#include <torch/torch.h>

#include <spdlog/spdlog.h>
#include "../common/vision_data.h"
#include "det/core/registry.h"
#include "det/data/mnist.h"
#include "det/nn/vit.h"
#include "det/optim/adamw.h"
#include "det/optim/lr_scheduler.h"
#include "det/util/error.h"
#include "det/util/strings.h"

namespace {

// Writes the model in HF layout before each validation (the chief only).
class ExportCallback : public det::Callback {
 public:
  ExportCallback(det::nn::ViT model, std::filesystem::path path, bool chief)
      : model_(std::move(model)), path_(std::move(path)), chief_(chief) {}
  void on_validation_start() override {
    if (chief_) det::nn::export_hf_vit(*model_, path_);
  }

 private:
  det::nn::ViT model_;
  std::filesystem::path path_;
  bool chief_;
};

class ViTTrial : public det::Trial {
 public:
  /// The data settings, checked by validate-config and before every run.
  static void check_config(const det::TrialContext& context) {
    det::trials::VisionData::check(context);
  }

  explicit ViTTrial(det::TrialContext& ctx) : det::Trial(ctx), data_(ctx) {
    const auto& meta = data_.metadata();
    const auto model_cfg = ctx.hparam("model");
    det::nn::ViTOptions o;
    o.img_size(meta.img_size);
    o.in_chans(meta.in_chans);
    o.num_classes(meta.num_classes);
    if (meta.img_size <= 64)
      o.patch_size(4);  // 16 px patches would leave 2x2 tokens of a 32 px image
    o.update_from_json(model_cfg);
    model_ = det::nn::ViT(o);
    if (model_cfg.has("pretrained")) {
      // Relative paths: the working directory, then data.root / $DET_DATA_DIR.
      const auto root = det::data::data_root(ctx.data());
      std::filesystem::path p = model_cfg.get<std::string>("pretrained");
      if (!std::filesystem::exists(p) && p.is_relative() && std::filesystem::exists(root / p))
        p = root / p;
      if (!std::filesystem::exists(p))
        model_cfg["pretrained"].fail(
            det::util::quote(p.string()) + " does not exist (looked in the working directory and " +
            det::util::quote(root.string()) +
            "); give the model.safetensors of an HF ViT such as "
            "google/vit-base-patch16-224-in21k, or null to train from scratch");
      spdlog::info("ViT: {}", det::nn::load_hf_vit(*model_, p));
    }
    model_ = ctx.wrap_model(model_);
    build_optimizer(ctx.hparam("optimizer"));
    if (ctx.has_hparam("scheduler")) build_scheduler(ctx.hparam("scheduler"));
    export_path_ = ctx.data().get<std::string>("export_safetensors", "");
  }

  std::shared_ptr<det::data::DataLoader> build_training_data_loader() override {
    return loader(true);
  }
  std::shared_ptr<det::data::DataLoader> build_validation_data_loader() override {
    return loader(false);
  }

  det::Metrics train_batch(det::data::Batch& batch, int64_t, int64_t) override {
    auto output = model_->forward(batch.data);
    auto loss = torch::cross_entropy_loss(output, batch.target);
    context_.backward(loss);
    context_.step_optimizer(*optimizer_, clip_);
    auto accuracy = output.argmax(1).eq(batch.target).sum().to(torch::kDouble) /
                    static_cast<double>(batch.size());
    return {{"loss", loss}, {"train_accuracy", accuracy}};
  }

  det::Callbacks build_callbacks() override {
    if (export_path_.empty()) return {};
    return {{"export_safetensors",
             std::make_shared<ExportCallback>(model_, export_path_, context_.rank() == 0)}};
  }

  det::Metrics evaluate_batch(det::data::Batch& batch, int64_t) override {
    auto output = model_->forward(batch.data);
    auto correct = output.argmax(1).eq(batch.target).sum().to(torch::kDouble);
    return {{"validation_loss", torch::cross_entropy_loss(output, batch.target)},
            {"accuracy", correct / static_cast<double>(batch.size())}};
  }

 private:
  void build_optimizer(const det::config::Args& s) {
    s.check_keys({"name", "lr", "momentum", "weight_decay", "eps", "betas", "clip_grad_norm"});
    const std::string name = s.get_enum("name", "sgd", {"sgd", "adamw"});
    const double clip = s.get<double>("clip_grad_norm", 0.0, det::config::Range::at_least(0));
    if (clip > 0)
      clip_ = [clip](const std::vector<torch::Tensor>& params) {
        torch::nn::utils::clip_grad_norm_(params, clip);
      };
    const double lr = s.get<double>("lr", det::config::Range::at_least(0));
    const double weight_decay = s.get<double>("weight_decay", 0.0, det::config::Range::at_least(0));
    if (name == "adamw") {
      // timm's create_optimizer arguments under the names this section uses.
      torch::optim::AdamWOptions o(lr);
      o.weight_decay(weight_decay).eps(s.get<double>("eps", 1e-8, det::config::Range::at_least(0)));
      if (s.has("betas")) {
        auto b = s.get<std::vector<double>>("betas",
                                            det::config::Range{0, 1, false, /*max_excluded=*/true});
        if (b.size() != 2) s["betas"].fail_expected("two numbers [beta1, beta2] or null");
        o.betas({b[0], b[1]});
      }
      optimizer_ =
          context_.wrap_optimizer(det::optim::make_adamw(*model_, o, {"cls_token", "pos_embed"}));
    } else {
      auto base = torch::optim::SGDOptions(lr).momentum(
          s.get<double>("momentum", 0.9, det::config::Range::at_least(0)));
      auto groups = det::optim::weight_decay_groups(*model_);
      auto no_decay = std::make_unique<torch::optim::SGDOptions>(base);
      no_decay->weight_decay(0.0);
      auto decay = std::make_unique<torch::optim::SGDOptions>(base);
      decay->weight_decay(weight_decay);
      std::vector<torch::optim::OptimizerParamGroup> pg;
      pg.emplace_back(groups.no_decay, std::move(no_decay));
      pg.emplace_back(groups.decay, std::move(decay));
      optimizer_ =
          context_.wrap_optimizer(std::make_shared<torch::optim::SGD>(std::move(pg), base));
    }
  }

  void build_scheduler(const det::config::Args& s) {
    if (s.is_null()) return;
    if (s.is_object() && s.has("name")) {
      s.check_keys({"name", "warmup_steps", "total_steps"});
      s.get_enum("name", {"cosine_warmup"});  // timm's sections name no schedule: they say `sched`
      const int64_t warmup = s.get<int64_t>("warmup_steps", 0, det::config::Range{0, 1e12});
      const int64_t total = s.get<int64_t>("total_steps", det::config::Range{1, 1e12});
      if (total <= warmup)
        s["total_steps"].fail("must exceed warmup_steps (" + std::to_string(warmup) + ")");
      // HF get_cosine_schedule_with_warmup (num_cycles 0.5).
      auto factor = [warmup, total](int64_t step) {
        if (step < warmup)
          return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
        double progress = static_cast<double>(step - warmup) /
                          static_cast<double>(std::max<int64_t>(1, total - warmup));
        return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
      };
      context_.wrap_lr_scheduler(std::make_shared<det::optim::LambdaLR>(*optimizer_, factor),
                                 det::StepMode::kStepEveryOptimizerStep);
    } else {
      det::trials::wrap_timm_cosine(context_, *optimizer_, s);
    }
  }

  std::shared_ptr<det::data::DataLoader> loader(bool train) {
    const auto spec = det::trials::transforms_section(context_, train);
    det::data::Pipeline pipeline;
    if (!spec.is_null()) {
      pipeline = det::data::Pipeline::from_json(spec);
    } else {
      nlohmann::json defaults = nlohmann::json::array();
      const auto& m = data_.metadata();
      const int64_t size = model_->options().img_size();
      const int64_t native = m.name == "mnist" ? 28 : m.name == "cifar10" ? 32 : -1;
      if (size != native)
        defaults.push_back({{"resize", {{"size", {size, size}}, {"interpolation", "bilinear"}}}});
      std::vector<float> half(static_cast<size_t>(m.in_chans), 0.5f);
      defaults.push_back({{"normalize", {{"mean", half}, {"std", half}}}});
      pipeline = det::data::Pipeline::from_json({defaults, "ViT default transforms"});
    }
    return data_.loader(train, std::move(pipeline));
  }

  det::trials::VisionData data_;
  det::nn::ViT model_{nullptr};
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  std::function<void(const std::vector<torch::Tensor>&)> clip_;
  std::string export_path_;
};

}  // namespace

DET_REGISTER_TRIAL(ViTTrial, "vit");
