#include <algorithm>

#include "det/search/search_method.h"

namespace det::search {

RandomSearch::RandomSearch(int max_trials, int max_concurrent_trials, int64_t max_length)
    : max_trials_(max_trials),
      max_concurrent_trials_(max_concurrent_trials),
      max_length_(max_length) {}

void RandomSearch::create_trial(SearchContext& ctx, std::vector<Operation>& ops) {
  Create c = make_create(ctx.hparams, ctx.rng);
  std::string id = c.request_id;
  ops.emplace_back(std::move(c));
  ops.emplace_back(ValidateAfter{id, max_length_});
  ops.emplace_back(Close{id});
  ++created_trials_;
  ++pending_trials_;
}

std::vector<Operation> RandomSearch::initial_operations(SearchContext& ctx) {
  int initial = max_trials_;
  if (max_concurrent_trials_ > 0) initial = std::min(max_trials_, max_concurrent_trials_);
  std::vector<Operation> ops;
  for (int i = 0; i < initial; ++i) create_trial(ctx, ops);
  return ops;
}

std::vector<Operation> RandomSearch::validation_completed(SearchContext&, const std::string&,
                                                          double, int64_t) {
  return {};  // the Close already queued after the only ValidateAfter ends the trial
}

std::vector<Operation> RandomSearch::trial_closed(SearchContext& ctx, const std::string&) {
  --pending_trials_;
  std::vector<Operation> ops;
  if (created_trials_ < max_trials_) create_trial(ctx, ops);
  return ops;
}

std::vector<Operation> RandomSearch::trial_exited_early(SearchContext&, const std::string&,
                                                        ExitedReason reason) {
  // An invalid point does not count against the budget: the close that follows replaces it.
  if (reason == ExitedReason::kInvalidHP) --created_trials_;
  return {};
}

double RandomSearch::progress(const TrialProgress& units,
                              const std::set<std::string>& closed) const {
  if (max_concurrent_trials_ > 0 && pending_trials_ > max_trials_) return 0;
  double done = 0;
  for (const auto& [id, u] : units) done += closed.count(id) ? static_cast<double>(max_length_) : u;
  for (const auto& id : closed)
    if (!units.count(id)) done += static_cast<double>(max_length_);
  return std::min(1.0, done / (static_cast<double>(max_length_) * max_trials_));
}

nlohmann::json RandomSearch::snapshot() const {
  return {{"created_trials", created_trials_}, {"pending_trials", pending_trials_}};
}

void RandomSearch::restore(const nlohmann::json& state) {
  created_trials_ = state.at("created_trials").get<int>();
  pending_trials_ = state.at("pending_trials").get<int>();
}

}  // namespace det::search
