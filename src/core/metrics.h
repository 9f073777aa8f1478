#pragma once
// Internal to the core layer: metric reduction (spec 2.4) for the controller.

#include <functional>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "det/core/context.h"
#include "det/core/reducer.h"
#include "det/distributed/distributed_context.h"

namespace det::detail {

/// Metric values collected over batches, by name.
using MetricValues = std::map<std::string, std::vector<torch::Tensor>>;

/// Scalar metric tensors reduced to numbers with `reduce(name, values)`, one device sync per
/// name; a name with a non-scalar (or undefined) value becomes null.
nlohmann::json reduce_tensors(
    const MetricValues& values,
    const std::function<double(const std::string&, const std::vector<double>&)>& reduce);

/// Training metrics averaged across ranks (every rank trains the same number of batches; a null
/// on one rank is left out). Identity on one rank.
nlohmann::json average_across_ranks(distributed::DistributedContext& ranks,
                                    const nlohmann::json& mine);

/// Validation metrics of every rank reduced again: AVG weighted by each rank's batch count, the
/// other reducers plainly. Throws DataError when no rank had a batch.
nlohmann::json reduce_validation_across_ranks(distributed::DistributedContext& ranks,
                                              const nlohmann::json& mine, int64_t batches,
                                              const ReducerSpec& spec);

/// Whether `flag` is set on any rank (a collective on several ranks).
bool any_rank(distributed::DistributedContext& ranks, bool flag, const torch::Device& device);

/// Reduced metrics as callbacks receive them: a number becomes a float64 scalar tensor on the
/// CPU, a list of numbers a 1-D one (a custom reducer's), anything else an undefined tensor.
Metrics to_tensors(const nlohmann::json& metrics);

/// "loss=0.25 accuracy=0.9" for log lines.
std::string format_metrics(const nlohmann::json& metrics);

}  // namespace det::detail
