#include "evaluation.h"

#include <string>

#include "det/record/rank_broadcast.h"
#include "det/util/error.h"
#include "det/util/strings.h"
#include "device.h"

namespace det::detail {
namespace {
using nlohmann::json;

bool not_overridden(const Metrics& m) { return m.size() == 1 && m.count(kNotOverridden); }
}  // namespace

json Evaluator::evaluate() {
  torch::NoGradGuard no_grad;
  if (method_ != Method::kBatches) {
    std::optional<json> full = full_dataset();
    method_ = full ? Method::kFullDataset : Method::kBatches;
    if (full) return *full;
  }
  return batches();
}

// The chief's evaluate_full_dataset metrics, shared with every rank; nullopt when the trial does
// not override it.
std::optional<json> Evaluator::full_dataset() {
  json metrics;
  bool full = false;
  if (run_.chief()) {
    Metrics m =
        run_.run_autocast([&] { return run_.trial->evaluate_full_dataset(*run_.val_loader); });
    full = !not_overridden(m);
    if (full) {
      MetricValues one;
      for (auto& [k, v] : m) one[k].push_back(v);
      metrics = reduce_tensors(
          one, [](const std::string&, const std::vector<double>& v) { return v[0]; });
    }
  }
  record::FullValidationBroadcast shared{full, metrics};
  if (run_.world() > 1)
    shared = record::FullValidationBroadcast::from_json(
        run_.h->distributed->broadcast(shared.to_json()));
  if (!shared.full) return std::nullopt;
  return shared.metrics;
}

// evaluate_batch over this rank's shard: the values of every batch, by name; returns the number
// of batches.
int64_t Evaluator::collect(MetricValues& values) {
  const auto& cfg = run_.cfg();
  auto stream = run_.val_shard->stream(0, run_.val_shard->batches_in_one_pass());
  int64_t n = 0;
  for (; !stream->done(); ++n) {
    data::Batch batch = run_.ctx->to_device(stream->next());
    if (cfg.optimizations.channels_last) batch = to_channels_last(std::move(batch));
    Metrics m = run_.run_autocast([&] { return run_.trial->evaluate_batch(batch, n); });
    if (n == 0 && not_overridden(m))
      throw Error("trial '" + cfg.entrypoint +
                  "' must override evaluate_batch or evaluate_full_dataset");
    if (n > 0 && m.size() != values.size())
      throw Error("evaluate_batch returned different metric names at batch " + std::to_string(n) +
                  "; every batch must return the same metrics");
    for (auto& [k, v] : m) {
      if (n > 0 && !values.count(k))
        throw Error("evaluate_batch returned metric '" + k + "' at batch " + std::to_string(n) +
                    " but not at batch 0");
      values[k].push_back(v.defined() ? v.detach() : v);
    }
  }
  return n;
}

json Evaluator::batches() {
  MetricValues values;
  const int64_t n = collect(values);
  if (n == 0 && run_.world() == 1)
    throw DataError("the validation data loader is empty: validation needs at least one batch");
  ReducerSpec spec = run_.trial->evaluation_reducer();
  if (spec.is_map() && n > 0) {
    for (const auto& kv : spec.per_metric())
      if (!values.count(kv.first))
        throw Error("evaluation_reducer() names metric '" + kv.first +
                    "' that evaluate_batch does not return");
  }
  json mine = reduce_tensors(values, [&](const std::string& k, const std::vector<double>& v) {
    return reduce(spec.for_metric(k), v);
  });
  if (run_.world() == 1) return mine;
  return reduce_validation_across_ranks(*run_.h->distributed, mine, n, spec);
}

void reset_reducers(TrialRun& run, bool training) {
  for (auto& r : run.h->reducers)
    if (training ? r.for_training : r.for_validation) r.reducer->reset();
}

void add_custom_reducers(TrialRun& run, json& metrics, bool training) {
  for (auto& r : run.h->reducers) {
    if (!(training ? r.for_training : r.for_validation)) continue;
    auto gathered = run.h->distributed->allgather(r.reducer->per_slot_reduce());
    json value = r.reducer->cross_slot_reduce(gathered);
    if (!r.name.empty()) {
      metrics[r.name] = value;
    } else if (value.is_object()) {
      for (auto it = value.begin(); it != value.end(); ++it) metrics[it.key()] = it.value();
    } else {
      throw Error("a reducer wrapped without a name must return an object of metrics, got " +
                  util::shorten(value.dump()));
    }
  }
}

}  // namespace det::detail
