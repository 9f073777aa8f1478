#pragma once
/// \file
/// Metric reduction: the built-in reducers for validation metrics and user-defined ones.

#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace det {

/// How a validation metric is reduced over batches (and then across ranks).
enum class Reducer { kAvg = 1, kSum = 2, kMax = 3, kMin = 4 };

/// One reducer for every metric, or one per metric name (the keys must equal the metrics').
class ReducerSpec {
 public:
  /// The same reducer for every metric (implicit, so a trial may return Reducer::kSum).
  ReducerSpec(Reducer all = Reducer::kAvg) : all_(all) {}  // NOLINT: implicit by design
  /// A reducer per metric name (implicit, from a map literal).
  ReducerSpec(std::map<std::string, Reducer> per_metric)
      : per_metric_(std::move(per_metric)), is_map_(true) {}  // NOLINT
  /// Whether it was built from a per-metric map.
  bool is_map() const { return is_map_; }
  /// The per-metric map; empty unless is_map().
  const std::map<std::string, Reducer>& per_metric() const { return per_metric_; }
  /// The reducer for `metric`; throws det::Error if a per-metric map lacks it.
  Reducer for_metric(const std::string& metric) const;

 private:
  Reducer all_ = Reducer::kAvg;
  std::map<std::string, Reducer> per_metric_;
  bool is_map_ = false;
};

/// Reduces values with `r`: AVG is the unweighted mean (np.average), SUM, MAX, MIN.
double reduce(Reducer r, const std::vector<double>& values);
/// AVG weighted by `weights` (used across ranks, weighted by batch counts); others as `reduce`.
double reduce_weighted(Reducer r, const std::vector<double>& values,
                       const std::vector<double>& weights);

/// A user-defined metric reducer (Determined's MetricReducer). The harness calls `reset()`
/// before every training report period or validation, `per_slot_reduce()` on every rank, and
/// `cross_slot_reduce()` on the chief with every rank's result in rank order.
class MetricReducer {
 public:
  virtual ~MetricReducer() = default;
  /// Forgets every value (called before each training report period and each validation).
  virtual void reset() = 0;
  /// This rank's partial result (any JSON value).
  virtual nlohmann::json per_slot_reduce() = 0;
  /// The metric: a number (for a reducer wrapped with a name) or an object of named numbers.
  virtual nlohmann::json cross_slot_reduce(const std::vector<nlohmann::json>& per_slot) = 0;
};

/// A reducer from a function over all values passed to `update`, across every rank.
class SimpleReducer : public MetricReducer {
 public:
  /// `fn` gets every rank's values, interleaved back into batch order (rank r held r, r+n, ...).
  explicit SimpleReducer(std::function<double(const std::vector<double>&)> fn)
      : fn_(std::move(fn)) {}
  /// Adds a value (thread-safe).
  void update(double value);
  void reset() override;
  nlohmann::json per_slot_reduce() override;
  nlohmann::json cross_slot_reduce(const std::vector<nlohmann::json>& per_slot) override;

 private:
  std::function<double(const std::vector<double>&)> fn_;
  std::mutex mu_;
  std::vector<double> values_;
};

}  // namespace det
