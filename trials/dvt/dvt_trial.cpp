// DVT (spec/models.md §4): the three-exit T2T-ViT cascade trained with the unweighted sum of the
// exits' cross-entropies. Validation runs all three exits over the validation set, fits the
// early-exit thresholds of the reference's 59 operating points on the even-numbered examples and
// reports accuracy and GFLOPs (multiply-adds) per image on the odd-numbered ones; the thresholds
// and per-exit costs are buffers of the model, so they are in every checkpoint. Input is 224 px
// (CIFAR is resized, as T2T's transfer recipe does).
//
// hyperparameters:
//   model: {variant: t2t_vit_12 | t2t_vit_14, drop_path_rate, feature_reuse, relation_reuse,
//           pretrained: a .safetensors file with the reference's state-dict names, or null;
//           embed_dim, depth, num_heads, mlp_ratio override the variant's}
//   optimizer: {name: adamw, lr, weight_decay, eps} (no decay on biases and 1-D parameters) or
//              {name: sgd, lr, momentum, weight_decay}
//   scheduler: timm cosine ({sched: cosine, epochs, warmup_epochs, ...}) or
//              {name: cosine_annealing, t_max, eta_min} (torch CosineAnnealingLR, per epoch)
//   report_operating_points: the p values (1..59) reported as metrics (default [5, 10, 20, 40])
// data.validation_batches: validate on the first n batches only (0, the default: all).
#include <cmath>
#include <filesystem>

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "../common/vision_data.h"
#include "det/core/registry.h"
#include "det/data/mnist.h"
#include "det/nn/dvt.h"
#include "det/nn/safetensors.h"
#include "det/optim/adamw.h"
#include "det/optim/lr_scheduler.h"
#include "det/util/error.h"
#include "det/util/strings.h"

namespace {

constexpr int kOperatingPoints = 59;

class DVTTrial : public det::Trial {
 public:
  /// The data settings, checked by validate-config and before every run.
  static void check_config(const det::TrialContext& context) {
    det::trials::VisionData::check(context);
  }

  explicit DVTTrial(det::TrialContext& ctx) : det::Trial(ctx), data_(ctx) {
    const auto m = ctx.hparam("model");
    m.check_keys({"variant", "drop_path_rate", "feature_reuse", "relation_reuse", "pretrained",
                  "embed_dim", "depth", "num_heads", "mlp_ratio"});
    det::nn::DVTOptions o;
    try {
      o = det::nn::DVTOptions::variant(m.get<std::string>("variant", "t2t_vit_12"));
    } catch (const det::ConfigError& e) {
      m["variant"].fail(det::util::shorten(e.what(), 200));
    }
    o.num_classes(data_.metadata().num_classes);
    o.drop_path_rate(m.get<double>("drop_path_rate", 0.1, det::config::Range{0, 1}));
    o.feature_reuse(m.get<bool>("feature_reuse", true));
    o.relation_reuse(m.get<bool>("relation_reuse", true));
    // Width and depth overrides make small cascades (tests, quick CPU runs).
    o.embed_dim(m.get<int64_t>("embed_dim", o.embed_dim(), det::config::Range{1, 65536}));
    o.depth(m.get<int64_t>("depth", o.depth(), det::config::Range{1, 1024}));
    o.num_heads(m.get<int64_t>("num_heads", o.num_heads(), det::config::Range{1, 1024}));
    o.mlp_ratio(m.get<double>("mlp_ratio", o.mlp_ratio(),
                              det::config::Range{0, 1024, /*min_excluded=*/true}));
    if (o.embed_dim() % o.num_heads() != 0)
      m["num_heads"].fail(std::to_string(o.num_heads()) + " does not divide embed_dim " +
                          std::to_string(o.embed_dim()));
    if (data_.metadata().in_chans != 3)
      ctx.data()["dataset_name"].fail("DVT takes RGB images; use cifar10 or imagenet");
    model_ = det::nn::DVT(o);
    // Checkpointed with the model: thresholds [59, 3] and cumulative GMACs [3].
    thresholds_ = model_->register_buffer(
        "dynamic_threshold", torch::full({kOperatingPoints, 3}, -1e8, torch::kFloat64));
    auto macs = model_->cumulative_macs();
    flops_ = model_->register_buffer(
        "flops", torch::tensor({macs[0] / 1e9, macs[1] / 1e9, macs[2] / 1e9}, torch::kFloat64));
    if (m.has("pretrained")) {
      std::filesystem::path p = m.get<std::string>("pretrained");
      auto weights = det::nn::read_safetensors(p).tensors;
      auto loaded = det::nn::load_state_dict(
          *model_, weights, p.string(),
          {"dynamic_threshold", "flops", "less_less_token.head.weight", "less_less_token.head.bias",
           "less_token.head.weight", "less_token.head.bias", "normal_token.head.weight",
           "normal_token.head.bias"},
          /*ignore_unexpected=*/true);
      spdlog::info("DVT: loaded {} tensors from {}", loaded.size(), p.string());
    }
    model_ = ctx.wrap_model(model_);
    build_optimizer(ctx.hparam("optimizer"));
    if (ctx.has_hparam("scheduler")) build_scheduler(ctx.hparam("scheduler"));
    max_validation_batches_ =
        ctx.data().get<int64_t>("validation_batches", 0, det::config::Range{0, 1e12});
    report_points_ = {5, 10, 20, 40};
    if (ctx.has_hparam("report_operating_points"))
      report_points_ = ctx.hparam("report_operating_points")
                           .as<std::vector<int>>(det::config::Range{1, kOperatingPoints});
  }

  std::shared_ptr<det::data::DataLoader> build_training_data_loader() override {
    return loader(true);
  }
  std::shared_ptr<det::data::DataLoader> build_validation_data_loader() override {
    // A 224 px cascade is slow on a CPU: data.validation_batches cuts the pass short (the harness
    // does the same in test mode).
    auto l = loader(false);
    return max_validation_batches_ > 0 ? l->limited(max_validation_batches_) : l;
  }

  det::Metrics train_batch(det::data::Batch& batch, int64_t, int64_t) override {
    auto outs = model_->forward(batch.data);
    auto loss = torch::cross_entropy_loss(outs[0], batch.target) +
                torch::cross_entropy_loss(outs[1], batch.target) +
                torch::cross_entropy_loss(outs[2], batch.target);
    context_.backward(loss);
    context_.step_optimizer(*optimizer_);
    return {{"loss", loss}};
  }

  det::Metrics evaluate_full_dataset(det::data::DataLoader& loader) override {
    std::vector<torch::Tensor> logits, labels;
    torch::Tensor loss_sum = torch::zeros({}, torch::kFloat64);
    int64_t n = 0;
    {
      torch::NoGradGuard g;
      for (auto& batch : loader) {
        auto b = context_.to_device(batch);
        auto outs = model_->forward(b.data);
        for (const auto& o : outs)
          loss_sum += torch::cross_entropy_loss(o, b.target, {}, at::Reduction::Sum)
                          .cpu()
                          .to(torch::kFloat64);
        logits.push_back(torch::stack(outs).cpu());
        labels.push_back(b.target.cpu());
        n += b.target.size(0);
      }
    }
    auto all = torch::cat(logits, 1);  // [3, n, C]
    auto y = torch::cat(labels);
    det::Metrics out;
    out["validation_loss"] = loss_sum / static_cast<double>(std::max<int64_t>(n, 1));
    for (int k = 0; k < 3; ++k)
      out["accuracy_exit" + std::to_string(k + 1)] =
          all[k].argmax(1).eq(y).to(torch::kFloat64).mean();
    out["accuracy"] = out["accuracy_exit3"];
    // Fit on the even examples, report on the odd ones (the reference fits on training images).
    auto fit = torch::arange(0, n, 2, torch::kLong), held = torch::arange(1, n, 2, torch::kLong);
    auto fit_conf = std::get<0>(all.index_select(1, fit).softmax(2).max(2));
    auto held_logits = all.index_select(1, held);
    auto held_y = y.index_select(0, held);
    std::array<double, 3> gmacs{flops_[0].item<double>(), flops_[1].item<double>(),
                                flops_[2].item<double>()};
    for (int p = 1; p <= kOperatingPoints; ++p) {
      auto T = det::nn::fit_thresholds(fit_conf, det::nn::exit_proportions(p));
      for (int k = 0; k < 3; ++k) thresholds_[p - 1][k] = T[static_cast<size_t>(k)];
      if (std::find(report_points_.begin(), report_points_.end(), p) == report_points_.end() ||
          held.numel() == 0)
        continue;
      auto op = det::nn::evaluate_operating_point(held_logits, held_y, T, gmacs);
      const std::string tag = "op" + std::to_string(p);
      out[tag + "_accuracy"] = torch::tensor(op.accuracy, torch::kFloat64);
      out[tag + "_gflops"] = torch::tensor(op.gmacs_per_image, torch::kFloat64);
      spdlog::info(
          "DVT operating point {}: thresholds {:.4f} {:.4f}, exits {:.3f} {:.3f} {:.3f}, accuracy "
          "{:.4f}, {:.3f} GFLOPs/image",
          p, T[0], T[1], op.exit_fraction[0], op.exit_fraction[1], op.exit_fraction[2], op.accuracy,
          op.gmacs_per_image);
    }
    return out;
  }

 private:
  void build_optimizer(const det::config::Args& s) {
    s.check_keys({"name", "lr", "weight_decay", "eps", "momentum"});
    const std::string name = s.get_enum("name", "adamw", {"adamw", "sgd"});
    const det::config::Range non_negative = det::config::Range::at_least(0);
    const double lr = s.get<double>("lr", non_negative);
    if (name == "adamw") {
      torch::optim::AdamWOptions o(lr);
      o.weight_decay(s.get<double>("weight_decay", 0.05, non_negative))
          .eps(s.get<double>("eps", 1e-8, non_negative));
      optimizer_ = context_.wrap_optimizer(det::optim::make_adamw(*model_, o));
    } else {
      optimizer_ = context_.wrap_optimizer(std::make_shared<torch::optim::SGD>(
          model_->parameters(),
          torch::optim::SGDOptions(lr)
              .momentum(s.get<double>("momentum", 0.9, non_negative))
              .weight_decay(s.get<double>("weight_decay", 0.0, non_negative))));
    }
  }

  void build_scheduler(const det::config::Args& s) {
    if (s.is_null()) return;
    if (s.is_object() && s.has("name")) {
      s.check_keys({"name", "t_max", "eta_min"});
      s.get_enum("name",
                 {"cosine_annealing"});  // timm's sections name no schedule: they say `sched`
      const double t_max = s.get<double>("t_max", det::config::Range::greater_than(0));
      const double eta_min = s.get<double>("eta_min", 0.0, det::config::Range::at_least(0));
      const double base = optimizer_->param_groups()[0].options().get_lr();
      auto factor = [=](int64_t e) {
        return (eta_min +
                (base - eta_min) *
                    (1 + std::cos(M_PI * std::min<double>(static_cast<double>(e), t_max) / t_max)) /
                    2) /
               base;
      };
      context_.wrap_lr_scheduler(std::make_shared<det::optim::LambdaLR>(*optimizer_, factor),
                                 det::StepMode::kStepEveryEpoch);
    } else {
      det::trials::wrap_timm_cosine(context_, *optimizer_, s);
    }
  }

  std::shared_ptr<det::data::DataLoader> loader(bool train) {
    const auto spec = det::trials::transforms_section(context_, train);
    if (spec.is_null())
      spec.fail(
          "missing; DVT needs 224 px inputs, e.g. [{resize: {size: 224}}, {normalize: {mean: "
          "[...], std: [...]}}]");
    return data_.loader(train, det::data::Pipeline::from_json(spec));
  }

  det::trials::VisionData data_;
  det::nn::DVT model_{nullptr};
  torch::Tensor thresholds_, flops_;
  std::shared_ptr<torch::optim::Optimizer> optimizer_;
  std::vector<int> report_points_;
  int64_t max_validation_batches_ = 0;  // 0: the whole validation set
};

}  // namespace

DET_REGISTER_TRIAL(DVTTrial, "dvt");
