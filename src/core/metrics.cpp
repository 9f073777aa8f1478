#include "metrics.h"

#include <algorithm>
#include <cstdio>

#include "det/util/error.h"

namespace det::detail {

nlohmann::json reduce_tensors(
    const MetricValues& values,
    const std::function<double(const std::string&, const std::vector<double>&)>& reduce_fn) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, list] : values) {
    bool scalar = !list.empty();
    for (const auto& v : list) scalar = scalar && v.defined() && v.numel() == 1;
    if (!scalar) {
      out[key] = nullptr;
      continue;
    }
    std::vector<torch::Tensor> flat;
    flat.reserve(list.size());
    for (const auto& v : list) flat.push_back(v.reshape({}).to(torch::kDouble));
    auto cpu = torch::stack(flat).to(torch::kCPU).contiguous();
    const double* p = cpu.data_ptr<double>();
    out[key] = reduce_fn(key, std::vector<double>(p, p + cpu.numel()));
  }
  return out;
}

nlohmann::json average_across_ranks(distributed::DistributedContext& ranks,
                                    const nlohmann::json& mine) {
  if (ranks.size() == 1) return mine;
  auto all = ranks.allgather(mine);
  nlohmann::json out = nlohmann::json::object();
  for (auto it = mine.begin(); it != mine.end(); ++it) {
    std::vector<double> v;
    for (const auto& r : all)
      if (r.contains(it.key()) && r[it.key()].is_number()) v.push_back(r[it.key()].get<double>());
    out[it.key()] = v.empty() ? nlohmann::json(nullptr) : nlohmann::json(reduce(Reducer::kAvg, v));
  }
  return out;
}

nlohmann::json reduce_validation_across_ranks(distributed::DistributedContext& ranks,
                                              const nlohmann::json& mine, int64_t batches,
                                              const ReducerSpec& spec) {
  auto all = ranks.allgather(nlohmann::json{{"metrics", mine}, {"batches", batches}});
  nlohmann::json keys = nlohmann::json::object();
  int64_t total = 0;
  for (const auto& r : all) {
    total += r["batches"].get<int64_t>();
    for (auto it = r["metrics"].begin(); it != r["metrics"].end(); ++it) keys[it.key()] = true;
  }
  if (total == 0)
    throw DataError("the validation data loader is empty: validation needs at least one batch");
  nlohmann::json out = nlohmann::json::object();
  for (auto it = keys.begin(); it != keys.end(); ++it) {
    std::vector<double> v, w;
    for (const auto& r : all) {
      const auto& m = r["metrics"];
      if (r["batches"].get<int64_t>() == 0 || !m.contains(it.key()) || !m[it.key()].is_number())
        continue;
      v.push_back(m[it.key()].get<double>());
      w.push_back(static_cast<double>(r["batches"].get<int64_t>()));
    }
    out[it.key()] = v.empty() ? nlohmann::json(nullptr)
                              : nlohmann::json(reduce_weighted(spec.for_metric(it.key()), v, w));
  }
  return out;
}

bool any_rank(distributed::DistributedContext& ranks, bool flag, const torch::Device& device) {
  if (ranks.size() == 1) return flag;
  torch::Tensor t = torch::full({1}, flag ? 1.0f : 0.0f, torch::TensorOptions().device(device));
  ranks.allreduce(t, distributed::ReduceOp::kMax);
  return t.item<float>() > 0;
}

Metrics to_tensors(const nlohmann::json& metrics) {
  const auto f64 = torch::TensorOptions().dtype(torch::kDouble);
  Metrics out;
  for (auto it = metrics.begin(); it != metrics.end(); ++it) {
    const auto& v = it.value();
    const bool numbers = v.is_array() && std::all_of(v.begin(), v.end(),
                                                     [](const auto& e) { return e.is_number(); });
    if (v.is_number())
      out[it.key()] = torch::tensor(v.get<double>(), f64);
    else if (numbers)
      out[it.key()] = torch::tensor(v.get<std::vector<double>>(), f64);
    else
      out[it.key()] = torch::Tensor();
  }
  return out;
}

std::string format_metrics(const nlohmann::json& m) {
  std::string out;
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!out.empty()) out += " ";
    if (it.value().is_number()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6g", it.value().get<double>());
      out += it.key() + "=" + buf;
    } else {
      out += it.key() + "=" + it.value().dump();
    }
  }
  return out;
}

}  // namespace det::detail
