// Photometric and policy augmentations (ColorJitter, RandAugment, RandomErasing).
#include "transform_detail.h"

namespace det::data::detail {

void add_augment_transforms(std::map<std::string, TransformFactory>& /*table*/) {}

}  // namespace det::data::detail
