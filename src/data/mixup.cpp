#include "det/data/mixup.h"

#include <cmath>
#include <random>

#include "det/util/error.h"
#include "det/util/strings.h"

namespace det::data {

namespace {
double beta(std::mt19937_64& g, double a, double b) {
  double x = std::gamma_distribution<double>(a, 1.0)(g),
         y = std::gamma_distribution<double>(b, 1.0)(g);
  return x / (x + y);
}
}  // namespace

Mixup::Mixup(MixupOptions o) : options_(o) {
  if (o.mixup_alpha() < 0 || o.cutmix_alpha() < 0) throw Error("mixup: alphas must be >= 0");
  if (o.num_classes() < 1) throw Error("mixup: num_classes must be >= 1");
}

torch::Tensor mixup_target(const torch::Tensor& target, int64_t num_classes, double lam,
                           double smoothing) {
  const double off = smoothing / static_cast<double>(num_classes), on = 1.0 - smoothing + off;
  auto one_hot = [&](const torch::Tensor& t) {
    return torch::full({t.size(0), num_classes}, off, torch::kFloat32)
        .scatter_(1, t.view({-1, 1}).to(torch::kLong), on);
  };
  return one_hot(target) * lam + one_hot(target.flip(0)) * (1.0 - lam);
}

torch::Tensor soft_target_cross_entropy(const torch::Tensor& logits, const torch::Tensor& target) {
  return torch::sum(-target * torch::log_softmax(logits, -1), -1).mean();
}

void Mixup::apply(Batch& batch, uint64_t seed) const {
  const auto& o = options_;
  const int64_t n = batch.size();
  if (n % 2 != 0)
    throw DataError("mixup/cutmix needs an even batch size, got a batch of " + std::to_string(n) +
                    " (use an even batch size and drop_last for the training loader)");
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double lam = 1.0;
  bool cutmix = false;
  if ((o.mixup_alpha() > 0 || o.cutmix_alpha() > 0) && u(g) < o.prob()) {
    if (o.mixup_alpha() > 0 && o.cutmix_alpha() > 0) {
      cutmix = u(g) < o.switch_prob();
      lam = cutmix ? beta(g, o.cutmix_alpha(), o.cutmix_alpha())
                   : beta(g, o.mixup_alpha(), o.mixup_alpha());
    } else if (o.mixup_alpha() > 0) {
      lam = beta(g, o.mixup_alpha(), o.mixup_alpha());
    } else {
      cutmix = true;
      lam = beta(g, o.cutmix_alpha(), o.cutmix_alpha());
    }
  }
  if (lam != 1.0) {
    torch::NoGradGuard no_grad;
    auto& x = batch.data;
    if (cutmix) {
      const int64_t h = x.size(-2), w = x.size(-1);
      const double ratio = std::sqrt(1.0 - lam);
      const auto cut_h = static_cast<int64_t>(static_cast<double>(h) * ratio),
                 cut_w = static_cast<int64_t>(static_cast<double>(w) * ratio);
      const int64_t cy = std::uniform_int_distribution<int64_t>(0, h - 1)(g),
                    cx = std::uniform_int_distribution<int64_t>(0, w - 1)(g);
      const int64_t yl = std::clamp<int64_t>(cy - cut_h / 2, 0, h),
                    yh = std::clamp<int64_t>(cy + cut_h / 2, 0, h);
      const int64_t xl = std::clamp<int64_t>(cx - cut_w / 2, 0, w),
                    xh = std::clamp<int64_t>(cx + cut_w / 2, 0, w);
      using torch::indexing::Slice;
      x.index_put_({Slice(), Slice(), Slice(yl, yh), Slice(xl, xh)},
                   x.flip(0).index({Slice(), Slice(), Slice(yl, yh), Slice(xl, xh)}));
      if (o.correct_lam())
        lam = 1.0 - static_cast<double>((yh - yl) * (xh - xl)) / static_cast<double>(h * w);
    } else {
      auto flipped = x.flip(0).mul_(1.0 - lam);
      x.mul_(lam).add_(flipped);
    }
  }
  batch.target = mixup_target(batch.target, o.num_classes(), lam, o.label_smoothing());
}

std::shared_ptr<Mixup> Mixup::from_json(const config::Args& spec) {
  if (spec.is_null()) return nullptr;
  if (!spec.is_object()) spec.fail_expected("a mapping of mixup settings");
  spec.check_keys({"mixup_alpha", "cutmix_alpha", "prob", "switch_prob", "correct_lam",
                   "label_smoothing", "num_classes"});
  const config::Range alpha = config::Range::at_least(0), probability{0, 1};
  MixupOptions o;
  o.mixup_alpha(spec.get<double>("mixup_alpha", o.mixup_alpha(), alpha));
  o.cutmix_alpha(spec.get<double>("cutmix_alpha", o.cutmix_alpha(), alpha));
  o.prob(spec.get<double>("prob", o.prob(), probability));
  o.switch_prob(spec.get<double>("switch_prob", o.switch_prob(), probability));
  o.correct_lam(spec.get<bool>("correct_lam", o.correct_lam()));
  o.label_smoothing(spec.get<double>("label_smoothing", o.label_smoothing(), probability));
  o.num_classes(spec.get<int64_t>("num_classes", config::Range{1, 1e7}));
  return std::make_shared<Mixup>(o);
}

}  // namespace det::data
