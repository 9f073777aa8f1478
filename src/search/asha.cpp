#include <algorithm>
#include <cmath>
#include <limits>

#include "det/search/search_method.h"

namespace det::search {
namespace {
constexpr double kWorst = std::numeric_limits<double>::max();  // Go's math.MaxFloat64
}  // namespace

std::vector<int64_t> make_rungs(int num_rungs, int64_t max_length, double divisor) {
  std::vector<int64_t> out;
  for (int i = 0; i < num_rungs; ++i) {
    double rate = std::pow(divisor, static_cast<double>(num_rungs - i - 1));
    out.push_back(
        std::max<int64_t>(static_cast<int64_t>(static_cast<double>(max_length) / rate), 1));
  }
  return out;
}

double AsyncHalvingSearch::metric_in(const Rung& rung, const std::string& request_id) {
  for (const auto& m : rung.metrics)
    if (m.request_id == request_id) return m.metric;
  return kWorst;  // unreachable: a promoted trial was inserted in the rung it leaves
}

std::vector<std::string> AsyncHalvingSearch::Rung::promotions_async(const std::string& request_id,
                                                                    double metric, double divisor) {
  auto old_num = static_cast<size_t>(static_cast<double>(metrics.size()) / divisor);
  auto num = static_cast<size_t>(static_cast<double>(metrics.size() + 1) / divisor);
  // Insert after equal values: an earlier trial keeps its place on ties.
  auto it = std::upper_bound(metrics.begin(), metrics.end(), metric,
                             [](double m, const TrialMetric& t) { return m < t.metric; });
  auto idx = static_cast<size_t>(it - metrics.begin());
  bool promote_now = idx < num;
  metrics.insert(it, TrialMetric{request_id, metric, promote_now});
  if (promote_now) return {request_id};
  // A newly opened promotion slot goes to the best trial not yet promoted (read after insertion).
  if (num != old_num && !metrics[old_num].promoted) {
    metrics[old_num].promoted = true;
    return {metrics[old_num].request_id};
  }
  return {};
}

bool AsyncHalvingSearch::Rung::continue_training(const std::string& request_id, double metric,
                                                 double divisor) {
  // Insert before equal values: ties favour the newcomer.
  auto it = std::lower_bound(metrics.begin(), metrics.end(), metric,
                             [](const TrialMetric& t, double m) { return t.metric < m; });
  auto idx = static_cast<size_t>(it - metrics.begin());
  metrics.insert(it, TrialMetric{request_id, metric, false});
  auto num =
      std::max<size_t>(static_cast<size_t>(static_cast<double>(metrics.size()) / divisor), 1);
  return idx < num;
}

AsyncHalvingSearch::AsyncHalvingSearch(const AshaParams& params) : params_(params) {
  for (int64_t len : make_rungs(params.num_rungs, params.max_length, params.divisor)) {
    Rung r;
    r.units_needed = len;
    rungs_.push_back(r);
  }
}

void AsyncHalvingSearch::create_trial(SearchContext& ctx, std::vector<Operation>& ops) {
  Create c = make_create(ctx.hparams, ctx.rng);
  std::string id = c.request_id;
  trial_rungs_[id] = 0;
  ops.emplace_back(std::move(c));
  ops.emplace_back(ValidateAfter{id, rungs_[0].units_needed});
}

std::vector<Operation> AsyncHalvingSearch::initial_operations(SearchContext& ctx) {
  int initial;
  if (params_.max_concurrent_trials > 0) {
    initial = std::min(params_.max_concurrent_trials, params_.max_trials);
  } else {
    initial = std::max(std::min(static_cast<int>(std::pow(params_.divisor, params_.num_rungs - 1)),
                                params_.max_trials),
                       1);
  }
  std::vector<Operation> ops;
  for (int i = 0; i < initial; ++i) create_trial(ctx, ops);
  return ops;
}

std::vector<Operation> AsyncHalvingSearch::trial_created(SearchContext&,
                                                         const std::string& request_id) {
  if (!params_.stop_once) ++rungs_[0].outstanding_trials;
  trial_rungs_[request_id] = 0;
  return {};
}

std::vector<Operation> AsyncHalvingSearch::validation_completed(SearchContext& ctx,
                                                                const std::string& request_id,
                                                                double metric, int64_t) {
  if (!params_.smaller_is_better) metric = -metric;  // lower is always better inside the rungs
  return params_.stop_once ? promote_stopping(ctx, request_id, metric)
                           : promote_async(ctx, request_id, metric);
}

std::vector<Operation> AsyncHalvingSearch::promote_async(SearchContext& ctx,
                                                         const std::string& request_id,
                                                         double metric) {
  int r = trial_rungs_[request_id];
  Rung& rung = rungs_[static_cast<size_t>(r)];
  --rung.outstanding_trials;
  bool added_work = false;
  std::vector<Operation> ops;
  if (r == params_.num_rungs - 1) {
    rung.metrics.push_back(TrialMetric{request_id, metric, false});
    if (!early_exit_trials_.count(request_id)) {
      ops.emplace_back(Close{request_id});
      closed_trials_.insert(request_id);
    }
  } else {
    Rung& next = rungs_[static_cast<size_t>(r + 1)];
    for (const auto& p : rung.promotions_async(request_id, metric, params_.divisor)) {
      trial_rungs_[p] = r + 1;
      ++next.outstanding_trials;
      // A promoted trial that already exited reports the worst value in the next rung at once.
      if (early_exit_trials_.count(p)) return promote_async(ctx, p, kWorst);
      // Small max_length, large divisor: rung lengths can floor to the same value ([1, 1, 2]).
      // The trial has already trained that far, so it is judged in the next rung at once with
      // the metric it has (as Determined's asha_stopping.go walks every rung a validation
      // reaches), instead of being asked to validate again at a length it already reported.
      if (next.units_needed <= rung.units_needed) return promote_async(ctx, p, metric_in(rung, p));
      ops.emplace_back(ValidateAfter{p, next.units_needed});
      added_work = true;
    }
  }
  if (!added_work && valid_trials() < params_.max_trials) create_trial(ctx, ops);
  if (static_cast<int>(rungs_[0].metrics.size()) == params_.max_trials) {
    auto closes = close_out_rungs();
    ops.insert(ops.end(), closes.begin(), closes.end());
  }
  return ops;
}

std::vector<Operation> AsyncHalvingSearch::close_out_rungs() {
  std::vector<Operation> ops;
  for (auto& rung : rungs_) {
    if (rung.outstanding_trials > 0) break;
    for (const auto& m : rung.metrics) {
      if (m.promoted || closed_trials_.count(m.request_id) ||
          early_exit_trials_.count(m.request_id))
        continue;
      ops.emplace_back(Close{m.request_id});
      closed_trials_.insert(m.request_id);
    }
  }
  return ops;
}

std::vector<Operation> AsyncHalvingSearch::promote_stopping(SearchContext& ctx,
                                                            const std::string& request_id,
                                                            double metric) {
  int r = trial_rungs_[request_id];
  Rung& rung = rungs_[static_cast<size_t>(r)];
  bool exited = early_exit_trials_.count(request_id) > 0;
  bool added_work = false;
  std::vector<Operation> ops;
  if (r == params_.num_rungs - 1) {
    rung.continue_training(request_id, metric,
                           params_.divisor);  // recorded; the top rung always stops
    if (!exited) {
      ops.emplace_back(Close{request_id});
      closed_trials_.insert(request_id);
    }
  } else {
    bool go_on = rung.continue_training(request_id, metric, params_.divisor);
    if (!exited) {
      if (go_on) {
        trial_rungs_[request_id] = r + 1;
        // A next rung of the same length (lengths floored to equal values): the validation just
        // reported counts there too, as in asha_stopping.go's loop over the rungs it reaches.
        if (rungs_[static_cast<size_t>(r + 1)].units_needed <= rung.units_needed)
          return promote_stopping(ctx, request_id, metric);
        ops.emplace_back(
            ValidateAfter{request_id, rungs_[static_cast<size_t>(r + 1)].units_needed});
        added_work = true;
      } else {
        ops.emplace_back(Close{request_id});
        closed_trials_.insert(request_id);
      }
    }
  }
  if (!added_work && valid_trials() < params_.max_trials) create_trial(ctx, ops);
  return ops;
}

std::vector<Operation> AsyncHalvingSearch::trial_closed(SearchContext&, const std::string&) {
  ++trials_completed_;
  return {};
}

std::vector<Operation> AsyncHalvingSearch::trial_exited_early(SearchContext& ctx,
                                                              const std::string& request_id,
                                                              ExitedReason reason) {
  if (reason == ExitedReason::kInvalidHP) {
    std::vector<Operation> ops;
    early_exit_trials_.insert(request_id);
    ops.emplace_back(Close{request_id});
    closed_trials_.insert(request_id);
    ++invalid_trials_;
    int highest = trial_rungs_[request_id];
    if (!params_.stop_once) --rungs_[static_cast<size_t>(highest)].outstanding_trials;
    // Its metrics must not influence anyone's promotion.
    for (int i = 0; i <= highest; ++i) {
      auto& ms = rungs_[static_cast<size_t>(i)].metrics;
      auto it = std::find_if(ms.begin(), ms.end(),
                             [&](const TrialMetric& m) { return m.request_id == request_id; });
      if (it != ms.end()) ms.erase(it);
    }
    if (valid_trials() < params_.max_trials) create_trial(ctx, ops);
    return ops;
  }
  early_exit_trials_.insert(request_id);
  closed_trials_.insert(request_id);
  return params_.stop_once ? promote_stopping(ctx, request_id, kWorst)
                           : promote_async(ctx, request_id, kWorst);
}

double AsyncHalvingSearch::progress(const TrialProgress&, const std::set<std::string>&) const {
  auto in_rung0 = static_cast<double>(rungs_[0].metrics.size());
  double p = in_rung0 / (1.2 * params_.max_trials);
  if (static_cast<int>(rungs_[0].metrics.size()) == params_.max_trials)
    p = std::max(p, static_cast<double>(trials_completed_ - invalid_trials_) / params_.max_trials);
  return std::min(1.0, p);
}

nlohmann::json AsyncHalvingSearch::snapshot() const {
  nlohmann::json rungs = nlohmann::json::array();
  for (const auto& r : rungs_) {
    nlohmann::json ms = nlohmann::json::array();
    for (const auto& m : r.metrics)
      ms.push_back({{"request_id", m.request_id}, {"metric", m.metric}, {"promoted", m.promoted}});
    rungs.push_back({{"units_needed", r.units_needed},
                     {"metrics", ms},
                     {"outstanding_trials", r.outstanding_trials}});
  }
  return {{"rungs", rungs},
          {"trial_rungs", trial_rungs_},
          {"early_exit_trials", early_exit_trials_},
          {"closed_trials", closed_trials_},
          {"trials_completed", trials_completed_},
          {"invalid_trials", invalid_trials_}};
}

void AsyncHalvingSearch::restore(const nlohmann::json& state) {
  rungs_.clear();
  for (const auto& r : state.at("rungs")) {
    Rung rung;
    rung.units_needed = r.at("units_needed").get<int64_t>();
    rung.outstanding_trials = r.at("outstanding_trials").get<int>();
    for (const auto& m : r.at("metrics"))
      rung.metrics.push_back({m.at("request_id").get<std::string>(), m.at("metric").get<double>(),
                              m.at("promoted").get<bool>()});
    rungs_.push_back(std::move(rung));
  }
  trial_rungs_ = state.at("trial_rungs").get<std::map<std::string, int>>();
  early_exit_trials_ = state.at("early_exit_trials").get<std::set<std::string>>();
  closed_trials_ = state.at("closed_trials").get<std::set<std::string>>();
  trials_completed_ = state.at("trials_completed").get<int>();
  invalid_trials_ = state.at("invalid_trials").get<int>();
}

}  // namespace det::search
