// Geometric resampling transforms (Resize, RandomResizedCrop) with PIL's filters.
#include "transform_detail.h"

namespace det::data::detail {

void add_resize_transforms(std::map<std::string, TransformFactory>& /*table*/) {}

}  // namespace det::data::detail
