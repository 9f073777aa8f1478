#pragma once
// Internal to the data layer: each transforms source file adds its config names to the table.
#include <map>
#include <string>

#include "det/data/transforms.h"

namespace det::data::detail {

/// Bounds of the transforms' size arguments (pixels): no image a transform makes is larger.
inline const config::Range kSizeRange{1, 65536};
/// Bounds of padding (pixels).
inline const config::Range kPaddingRange{0, 65536};
/// A probability.
inline const config::Range kProbabilityRange{0, 1};

/// ColorJitter, RandAugment, RandomErasing (src/data/augment.cpp).
void add_augment_transforms(std::map<std::string, TransformFactory>& table);
/// Resize, RandomResizedCrop (src/data/resize.cpp).
void add_resize_transforms(std::map<std::string, TransformFactory>& table);

}  // namespace det::data::detail
