#include <algorithm>
#include <cmath>
#include <functional>

#include "det/search/search_method.h"
#include "det/util/error.h"

namespace det::search {

int adaptive_max_rungs(int max_rungs, int64_t max_length, int max_trials, double divisor) {
  // The same double expression as Determined: log(1000)/log(10) truncates to 2, not 3.
  int by_length =
      static_cast<int>(std::log(static_cast<double>(max_length)) / std::log(divisor)) + 1;
  int by_trials =
      static_cast<int>(std::log(static_cast<double>(max_trials)) / std::log(divisor)) + 1;
  return std::min({max_rungs, by_length, by_trials});
}

std::vector<int> adaptive_brackets(const std::string& mode, int max_rungs) {
  std::vector<int> out;
  if (mode == "aggressive") {
    out = {max_rungs};
  } else if (mode == "standard") {
    for (int r = (max_rungs - 1) / 2 + 1; r <= max_rungs; ++r) out.push_back(r);
  } else if (mode == "conservative") {
    for (int r = 1; r <= max_rungs; ++r) out.push_back(r);
  } else {
    throw ConfigError("searcher.mode: expected one of aggressive, standard, conservative, found " +
                      mode);
  }
  std::sort(out.begin(), out.end(), std::greater<int>());
  return out;
}

std::vector<int> get_bracket_max_trials(int max_trials, double divisor,
                                        const std::vector<int>& brackets) {
  std::vector<double> weights;
  double sum = 0;
  for (int r : brackets) {
    double w = std::pow(divisor, r - 1) / r;
    weights.push_back(w);
    sum += w;
  }
  std::vector<int> out;
  int allocated = 0;
  for (double w : weights) {
    out.push_back(std::max(static_cast<int>(w / sum * max_trials), 1));
    allocated += out.back();
  }
  if (!out.empty()) out[0] += std::max(max_trials - allocated, 0);
  return out;
}

std::vector<int> get_bracket_max_concurrent_trials(int max_concurrent_trials, double divisor,
                                                   const std::vector<int>& max_trials) {
  auto n = static_cast<int>(max_trials.size());
  if (n == 0) return {};
  if (max_concurrent_trials == 0)
    return std::vector<int>(max_trials.size(),
                            std::max(max_trials.back(), static_cast<int>(divisor)));
  int c = std::max(max_concurrent_trials, n);
  std::vector<int> out(max_trials.size(), c / n);
  for (int i = 0; i < c % n; ++i) ++out[static_cast<size_t>(i)];
  return out;
}

std::vector<AshaParams> make_adaptive_brackets(const config::SearcherConfig& s) {
  if (!s.max_length)
    throw ConfigError("searcher.max_length: required by the adaptive_asha searcher");
  if (s.divisor <= 1)
    throw ConfigError("searcher.divisor: expected > 1, found " + std::to_string(s.divisor));
  if (s.max_trials < 1)
    throw ConfigError("searcher.max_trials: expected at least 1, found " +
                      std::to_string(s.max_trials));
  std::vector<int> brackets = s.bracket_rungs;
  if (brackets.empty()) {
    brackets = adaptive_brackets(
        s.mode, adaptive_max_rungs(s.max_rungs, s.max_length->value, s.max_trials, s.divisor));
  } else {
    // Brackets that stop more trials early go first, to get the speedup early on.
    std::sort(brackets.begin(), brackets.end(), std::greater<int>());
  }
  auto trials = get_bracket_max_trials(s.max_trials, s.divisor, brackets);
  auto concurrent = get_bracket_max_concurrent_trials(s.max_concurrent_trials, s.divisor, trials);
  std::vector<AshaParams> out;
  for (size_t i = 0; i < brackets.size(); ++i) {
    AshaParams p;
    p.num_rungs = brackets[i];
    p.max_length = s.max_length->value;
    p.max_trials = trials[i];
    p.divisor = s.divisor;
    p.max_concurrent_trials = concurrent[i];
    p.stop_once = s.stop_once;
    p.smaller_is_better = s.smaller_is_better;
    out.push_back(p);
  }
  return out;
}

TournamentSearch::TournamentSearch(std::vector<std::unique_ptr<SearchMethod>> searches)
    : searches_(std::move(searches)) {}

std::vector<Operation> TournamentSearch::mark(int index, std::vector<Operation> ops) {
  for (const auto& op : ops)
    if (auto* c = std::get_if<Create>(&op)) trial_table_[c->request_id] = index;
  return ops;
}

int TournamentSearch::search_of(const std::string& request_id) const {
  auto it = trial_table_.find(request_id);
  return it == trial_table_.end() ? -1 : it->second;
}

std::vector<Operation> TournamentSearch::initial_operations(SearchContext& ctx) {
  std::vector<Operation> ops;
  for (size_t i = 0; i < searches_.size(); ++i) {
    auto sub = mark(static_cast<int>(i), searches_[i]->initial_operations(ctx));
    ops.insert(ops.end(), sub.begin(), sub.end());
  }
  return ops;
}

std::vector<Operation> TournamentSearch::trial_created(SearchContext& ctx,
                                                       const std::string& request_id) {
  int i = search_of(request_id);
  if (i < 0) return {};
  return mark(i, searches_[static_cast<size_t>(i)]->trial_created(ctx, request_id));
}

std::vector<Operation> TournamentSearch::validation_completed(SearchContext& ctx,
                                                              const std::string& request_id,
                                                              double metric, int64_t length) {
  int i = search_of(request_id);
  if (i < 0) return {};
  return mark(
      i, searches_[static_cast<size_t>(i)]->validation_completed(ctx, request_id, metric, length));
}

std::vector<Operation> TournamentSearch::trial_closed(SearchContext& ctx,
                                                      const std::string& request_id) {
  int i = search_of(request_id);
  if (i < 0) return {};
  return mark(i, searches_[static_cast<size_t>(i)]->trial_closed(ctx, request_id));
}

std::vector<Operation> TournamentSearch::trial_exited_early(SearchContext& ctx,
                                                            const std::string& request_id,
                                                            ExitedReason reason) {
  int i = search_of(request_id);
  if (i < 0) return {};
  return mark(i, searches_[static_cast<size_t>(i)]->trial_exited_early(ctx, request_id, reason));
}

double TournamentSearch::progress(const TrialProgress& units,
                                  const std::set<std::string>& closed) const {
  if (searches_.empty()) return 1;
  double sum = 0;
  for (const auto& s : searches_) sum += s->progress(units, closed);
  return sum / static_cast<double>(searches_.size());
}

nlohmann::json TournamentSearch::snapshot() const {
  nlohmann::json subs = nlohmann::json::array();
  for (const auto& s : searches_) subs.push_back(s->snapshot());
  return {{"trial_table", trial_table_}, {"searches", subs}};
}

void TournamentSearch::restore(const nlohmann::json& state) {
  trial_table_ = state.at("trial_table").get<std::map<std::string, int>>();
  const auto& subs = state.at("searches");
  if (subs.size() != searches_.size())
    throw ConfigError("searcher snapshot: " + std::to_string(subs.size()) +
                      " brackets saved, the config has " + std::to_string(searches_.size()));
  for (size_t i = 0; i < searches_.size(); ++i) searches_[i]->restore(subs[i]);
}

}  // namespace det::search
