#pragma once
/// \file
/// timm's create_transform: the train and eval pipelines a timm user describes with
/// (input_size, is_training, mean, std, scale, ratio, hflip, vflip, color_jitter, auto_augment,
/// interpolation, re_prob, re_mode, re_count, crop_pct), as the ShiftViT example's `transform`
/// hyperparameters do.

#include <string>
#include <vector>

#include "det/config/args.h"
#include "det/data/transforms.h"

namespace det::data {

/// Builds timm.data.create_transform(input_size=img_size, is_training=training, mean, std,
/// **args):
///  - training: RandomResizedCropAndInterpolation(img_size, scale, ratio, interpolation),
///    RandomHorizontalFlip(hflip), RandomVerticalFlip(vflip), then RandAugment (auto_augment
///    "rand-...", filled with the mean colour) or else ColorJitter(color_jitter x3), then
///    ToTensor + Normalize, then RandomErasing(re_prob, re_mode, max_count=re_count);
///  - eval: Resize(floor(img_size / crop_pct), interpolation), CenterCrop(img_size), ToTensor +
///    Normalize.
/// `args` is the section (e.g. `context.hparam("transform")`; null: every default);
/// unknown keys and bad values are ConfigErrors naming its file position and key path. Defaults
/// are timm's
/// (scale [0.08, 1], ratio [3/4, 4/3], hflip 0.5, vflip 0, color_jitter 0.4, interpolation
/// bilinear, re_prob 0, re_mode const, re_count 1, crop_pct 0.875).
Pipeline make_timm_transform(const config::Args& args, int64_t img_size,
                             const std::vector<float>& mean, const std::vector<float>& std,
                             bool training);

}  // namespace det::data
