#include "det/config/metric.h"

#include <cmath>
#include <limits>

namespace det::config {

bool is_better(double candidate, std::optional<double> incumbent, bool smaller_is_better) {
  if (std::isnan(candidate)) return false;
  if (!incumbent || std::isnan(*incumbent)) return true;
  return smaller_is_better ? candidate < *incumbent : candidate > *incumbent;
}

double worst_value(bool smaller_is_better) {
  return smaller_is_better ? std::numeric_limits<double>::infinity()
                           : -std::numeric_limits<double>::infinity();
}

}  // namespace det::config
