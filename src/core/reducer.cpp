#include "det/core/reducer.h"

#include <algorithm>
#include <numeric>

#include "det/util/error.h"
#include "det/util/strings.h"

namespace det {

Reducer ReducerSpec::for_metric(const std::string& metric) const {
  if (!is_map_) return all_;
  auto it = per_metric_.find(metric);
  if (it == per_metric_.end()) {
    std::vector<std::string> keys;
    for (const auto& kv : per_metric_) keys.push_back(kv.first);
    throw Error("evaluation_reducer() has no reducer for metric '" + metric +
                "' (it names: " + util::join(keys, ", ") +
                "); a per-metric reducer map must name every metric evaluate_batch returns");
  }
  return it->second;
}

double reduce(Reducer r, const std::vector<double>& v) {
  if (v.empty()) return 0;
  switch (r) {
    case Reducer::kAvg:
      return std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
    case Reducer::kSum:
      return std::accumulate(v.begin(), v.end(), 0.0);
    case Reducer::kMax:
      return *std::max_element(v.begin(), v.end());
    case Reducer::kMin:
      return *std::min_element(v.begin(), v.end());
  }
  return 0;
}

double reduce_weighted(Reducer r, const std::vector<double>& v, const std::vector<double>& w) {
  if (r != Reducer::kAvg) return reduce(r, v);
  double num = 0, den = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    num += v[i] * w[i];
    den += w[i];
  }
  return den > 0 ? num / den : 0;
}

void SimpleReducer::update(double value) {
  std::lock_guard<std::mutex> lock(mu_);
  values_.push_back(value);
}

void SimpleReducer::reset() {
  std::lock_guard<std::mutex> lock(mu_);
  values_.clear();
}

nlohmann::json SimpleReducer::per_slot_reduce() {
  std::lock_guard<std::mutex> lock(mu_);
  return values_;
}

nlohmann::json SimpleReducer::cross_slot_reduce(const std::vector<nlohmann::json>& per_slot) {
  // Interleave back into the original order: rank r held values r, r+n, r+2n, ...
  std::vector<double> all;
  size_t longest = 0;
  for (const auto& s : per_slot) longest = std::max(longest, s.size());
  for (size_t i = 0; i < longest; ++i)
    for (const auto& s : per_slot)
      if (i < s.size()) all.push_back(s[i].get<double>());
  return fn_(all);
}

}  // namespace det
