#pragma once
// Internal to the core layer: a validation's metrics, from whichever evaluate method the trial
// overrides, reduced across batches and ranks; and the custom reducers' share of any report.

#include <cstdint>
#include <optional>

#include <nlohmann/json.hpp>

#include "metrics.h"
#include "trial_run.h"

namespace det::detail {

/// Runs the trial's evaluate method over the validation data.
class Evaluator {
 public:
  /// Evaluates `run`'s trial, which must outlive it.
  explicit Evaluator(TrialRun& run) : run_(run) {}
  /// The validation metrics. evaluate_full_dataset runs on the chief alone over the whole
  /// validation set (spec 1.3) and its metrics are broadcast; evaluate_batch runs on every rank
  /// over its shard and the metrics are reduced per the trial's evaluation_reducer().
  nlohmann::json evaluate();

 private:
  std::optional<nlohmann::json> full_dataset();
  nlohmann::json batches();
  int64_t collect(MetricValues& values);

  TrialRun& run_;
  /// Which evaluate method the trial overrides, learnt at its first validation.
  enum class Method { kUnknown, kFullDataset, kBatches } method_ = Method::kUnknown;
};

/// Resets the custom reducers wrapped for training (or validation).
void reset_reducers(TrialRun& run, bool training);
/// Adds the results of the custom reducers wrapped for training (or validation) to `metrics`.
void add_custom_reducers(TrialRun& run, nlohmann::json& metrics, bool training);

}  // namespace det::detail
