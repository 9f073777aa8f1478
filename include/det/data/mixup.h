#pragma once
/// \file
/// Batch-level Mixup and CutMix with label smoothing, as timm.data.Mixup in 'batch' mode.

#include <cstdint>
#include <memory>

#include <torch/arg.h>
#include <torch/types.h>

#include "det/config/args.h"
#include "det/data/batch.h"

namespace det::data {

/// Mixup/CutMix options (timm's names and defaults; LibTorch's style:
/// `MixupOptions().cutmix_alpha(1.0).num_classes(10)`).
struct MixupOptions {
  /// Beta(alpha, alpha) for mixup; 0 disables it.
  TORCH_ARG(double, mixup_alpha) = 1.0;
  /// Beta(alpha, alpha) for cutmix; 0 disables it.
  TORCH_ARG(double, cutmix_alpha) = 0.0;
  /// Probability of mixing a batch at all.
  TORCH_ARG(double, prob) = 1.0;
  /// With both enabled: probability of cutmix instead of mixup.
  TORCH_ARG(double, switch_prob) = 0.5;
  /// Recompute lambda from the clipped cutmix box.
  TORCH_ARG(bool, correct_lam) = true;
  /// In [0, 1]: off-class targets get smoothing / num_classes.
  TORCH_ARG(double, label_smoothing) = 0.1;
  /// Width of the soft targets, >= 1 (required in the config).
  TORCH_ARG(int64_t, num_classes) = 1000;
};

/// Mixes a batch with its reverse: mixup blends images, cutmix pastes a box; targets become
/// smoothed one-hot vectors mixed with the same lambda: [B, num_classes] float.
class Mixup {
 public:
  /// Throws det::Error on a negative alpha or num_classes < 1.
  explicit Mixup(MixupOptions options);
  /// Applies to `batch` in place, drawing from `seed`. The batch size must be even.
  void apply(Batch& batch, uint64_t seed) const;
  /// The options it was built with.
  const MixupOptions& options() const { return options_; }
  /// From the config (e.g. `context.data()["mixup"]`): {mixup_alpha, cutmix_alpha, prob,
  /// switch_prob, correct_lam, label_smoothing, num_classes (required)}; null when the section
  /// is null; ConfigError naming the file position and key on a mistake.
  static std::shared_ptr<Mixup> from_json(const config::Args& spec);

 private:
  MixupOptions options_;
};

/// timm's mixup_target: smoothed one-hot of `target` mixed with that of the reversed batch.
torch::Tensor mixup_target(const torch::Tensor& target, int64_t num_classes, double lam,
                           double smoothing);

/// Cross-entropy against soft targets: mean over the batch of sum(-target * log_softmax(logits)).
torch::Tensor soft_target_cross_entropy(const torch::Tensor& logits, const torch::Tensor& target);

}  // namespace det::data
