#pragma once
// Internal to the data layer: each transforms source file adds its config names to the table.
#include <map>
#include <string>

#include "det/data/transforms.h"

namespace det::data::detail {

/// ColorJitter, RandAugment, RandomErasing (src/data/augment.cpp).
void add_augment_transforms(std::map<std::string, TransformFactory>& table);
/// Resize, RandomResizedCrop (src/data/resize.cpp).
void add_resize_transforms(std::map<std::string, TransformFactory>& table);

}  // namespace det::data::detail
