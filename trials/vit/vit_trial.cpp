// ViT (spec/models.md §3) on MNIST, CIFAR-10 or an ImageFolder tree, from scratch or fine-tuned
// from HF-layout .safetensors weights (`model.pretrained`, e.g. google/vit-base-patch16-224-in21k;
// the head is new when the classes differ, position embeddings are resized to the image size).
//
// hyperparameters:
//   model: ViTOptions keys (variant ti/s/b/l, patch_size, img_size, drop_rate, ...), pretrained
//   optimizer: {name: sgd, lr, momentum, weight_decay, clip_grad_norm} (Graphcore/Google: weight
//     decay on parameters of 2 or more dimensions only) or {name: adamw, lr, weight_decay, eps,
//     betas, clip_grad_norm} (timm's groups)
//   scheduler: {name: cosine_warmup, warmup_steps, total_steps} (HF get_cosine_schedule_with_warmup,
//     stepped per optimizer step) or timm's cosine ({sched: cosine, epochs, ...}, per epoch)
// data: as trials/common/vision_data.h; data.transforms.{train,validation} pipelines (docs/data.md),
//   else Resize to img_size when it differs from the data set's, then Normalize(0.5, 0.5).
// data.export_safetensors: a path; before every validation the chief writes the weights there in
//   HF layout (a callback).
#include <cmath>

#include <torch/torch.h>

#include "../common/vision_data.h"
#include "det/core/registry.h"
#include "det/data/mnist.h"
#include "det/nn/vit.h"
#include "det/optim/adamw.h"
#include "det/optim/lr_scheduler.h"
#include "det/util/error.h"
#include <spdlog/spdlog.h>

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
  explicit ViTTrial(det::TrialContext& ctx) : det::Trial(ctx), data_(ctx) {
    const auto& meta = data_.metadata();
    auto model_cfg = ctx.get_hparam<nlohmann::json>("model");
    det::nn::ViTOptions o;
    o.img_size = meta.img_size;
    o.in_chans = meta.in_chans;
    o.num_classes = meta.num_classes;
    if (meta.img_size <= 64) o.patch_size = 4;  // 16 px patches would leave 2x2 tokens of a 32 px image
    o.update_from_json(model_cfg, "hyperparameters.model");
    model_ = det::nn::ViT(o);
    if (model_cfg.contains("pretrained") && !model_cfg["pretrained"].is_null()) {
      // Relative paths: the working directory, then data.root / $DET_DATA_DIR.
      std::filesystem::path p = model_cfg["pretrained"].get<std::string>();
      if (!std::filesystem::exists(p) && p.is_relative() && std::filesystem::exists(det::data::data_root(ctx.data_config()) / p))
        p = det::data::data_root(ctx.data_config()) / p;
      if (!std::filesystem::exists(p))
        throw det::ConfigError("hyperparameters.model.pretrained: " + p.string() + " does not exist (looked in the working directory and " +
                               det::data::data_root(ctx.data_config()).string() +
                               "); give the model.safetensors of an HF ViT such as google/vit-base-patch16-224-in21k, or null "
                               "to train from scratch");
      spdlog::info("ViT: {}", det::nn::load_hf_vit(*model_, p));
    }
    model_ = ctx.wrap_model(model_);
    build_optimizer(ctx.get_hparam<nlohmann::json>("optimizer"));
    build_scheduler(ctx.get_hparam<nlohmann::json>("scheduler", nlohmann::json()));
    export_path_ = ctx.data_config().value("export_safetensors", std::string());
  }

  std::shared_ptr<det::data::DataLoader> build_training_data_loader() override { return loader(true); }
  std::shared_ptr<det::data::DataLoader> build_validation_data_loader() override { return loader(false); }

  det::Metrics train_batch(det::data::Batch& batch, int64_t, int64_t) override {
    auto output = model_->forward(batch.data);
    auto loss = torch::cross_entropy_loss(output, batch.target);
    context_.backward(loss);
    context_.step_optimizer(*optimizer_, clip_);
    auto accuracy = output.argmax(1).eq(batch.target).sum().to(torch::kDouble) / static_cast<double>(batch.size());
    return {{"loss", loss}, {"train_accuracy", accuracy}};
  }

  det::Callbacks build_callbacks() override {
    if (export_path_.empty()) return {};
    return {{"export_safetensors", std::make_shared<ExportCallback>(model_, export_path_, context_.rank() == 0)}};
  }

  det::Metrics evaluate_batch(det::data::Batch& batch, int64_t) override {
    auto output = model_->forward(batch.data);
    auto correct = output.argmax(1).eq(batch.target).sum().to(torch::kDouble);
    return {{"validation_loss", torch::cross_entropy_loss(output, batch.target)},
            {"accuracy", correct / static_cast<double>(batch.size())}};
  }

 private:
  void build_optimizer(const nlohmann::json& s) {
    const std::string where = "hyperparameters.optimizer";
    std::string name = s.value("name", std::string("sgd"));
    double clip = s.value("clip_grad_norm", 0.0);
    if (clip > 0)
      clip_ = [clip](const std::vector<torch::Tensor>& params) { torch::nn::utils::clip_grad_norm_(params, clip); };
    if (name == "adamw") {
      auto rest = s;
      rest.erase("name");
      rest.erase("clip_grad_norm");
      if (rest.contains("eps")) rest["opt_eps"] = rest["eps"], rest.erase("eps");
      if (rest.contains("betas")) rest["opt_betas"] = rest["betas"], rest.erase("betas");
      optimizer_ = context_.wrap_optimizer(det::optim::make_adamw_from_json(*model_, rest, where, {"cls_token", "pos_embed"}));
    } else if (name == "sgd") {
      if (!s.contains("lr")) throw det::ConfigError(where + ".lr: missing; set the learning rate");
      auto base = torch::optim::SGDOptions(s["lr"].get<double>()).momentum(s.value("momentum", 0.9));
      auto groups = det::optim::weight_decay_groups(*model_);
      auto no_decay = std::make_unique<torch::optim::SGDOptions>(base);
      no_decay->weight_decay(0.0);
      auto decay = std::make_unique<torch::optim::SGDOptions>(base);
      decay->weight_decay(s.value("weight_decay", 0.0));
      std::vector<torch::optim::OptimizerParamGroup> pg;
      pg.emplace_back(groups.no_decay, std::move(no_decay));
      pg.emplace_back(groups.decay, std::move(decay));
      optimizer_ = context_.wrap_optimizer(std::make_shared<torch::optim::SGD>(std::move(pg), base));
    } else {
      throw det::ConfigError(where + ".name: '" + name + "' is not supported; use sgd or adamw");
    }
  }

  void build_scheduler(const nlohmann::json& s) {
    if (s.is_null()) return;
    const std::string where = "hyperparameters.scheduler";
    if (s.value("name", std::string()) == "cosine_warmup") {
      const int64_t warmup = s.value("warmup_steps", int64_t{0}), total = s.at("total_steps").get<int64_t>();
      if (total <= warmup) throw det::ConfigError(where + ".total_steps: must exceed warmup_steps");
      // HF get_cosine_schedule_with_warmup (num_cycles 0.5).
      auto factor = [warmup, total](int64_t step) {
        if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
        double progress = static_cast<double>(step - warmup) / static_cast<double>(std::max<int64_t>(1, total - warmup));
        return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * progress)));
      };
      context_.wrap_lr_scheduler(std::make_shared<det::optim::LambdaLR>(*optimizer_, factor), det::StepMode::kStepEveryOptimizerStep);
    } else {
      auto o = det::optim::CosineOptions::from_json(s, where);
      context_.wrap_lr_scheduler(std::make_shared<det::optim::CosineLRScheduler>(*optimizer_, o), det::StepMode::kStepEveryEpoch);
    }
  }

  std::shared_ptr<det::data::DataLoader> loader(bool train) {
    const auto& data = context_.data_config();
    const char* key = train ? "train" : "validation";
    det::data::Pipeline pipeline;
    if (data.contains("transforms") && data["transforms"].contains(key)) {
      pipeline = det::data::Pipeline::from_json(data["transforms"][key], std::string("data.transforms.") + key);
    } else {
      nlohmann::json spec = nlohmann::json::array();
      const auto& m = data_.metadata();
      const int64_t size = model_->options().img_size;
      const int64_t native = m.name == "mnist" ? 28 : m.name == "cifar10" ? 32 : -1;
      if (size != native) spec.push_back({{"resize", {{"size", {size, size}}, {"interpolation", "bilinear"}}}});
      std::vector<float> half(static_cast<size_t>(m.in_chans), 0.5f);
      spec.push_back({{"normalize", {{"mean", half}, {"std", half}}}});
      pipeline = det::data::Pipeline::from_json(spec, "ViT default transforms");
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
