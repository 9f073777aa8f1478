#include "det/core/trial.h"

#include "detail.h"

namespace det {

// The defaults mark "not overridden"; the controller tries the full-dataset form first.
Metrics Trial::evaluate_batch(data::Batch&, int64_t) { throw detail::NotOverridden(); }

Metrics Trial::evaluate_full_dataset(data::DataLoader&) { throw detail::NotOverridden(); }

}  // namespace det
