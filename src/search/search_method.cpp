#include "det/search/search_method.h"

#include "det/search/bohb.h"

#include "det/util/error.h"

namespace det::search {

std::vector<Operation> SearchMethod::trial_created(SearchContext&, const std::string&) {
  return {};
}
std::vector<Operation> SearchMethod::trial_closed(SearchContext&, const std::string&) { return {}; }

std::unique_ptr<SearchMethod> make_search_method(const config::SearcherConfig& s,
                                                 const config::HyperparameterSpace& space) {
  if (!s.max_length)
    throw ConfigError("searcher." + std::string("max_length") + ": required by the " + s.name +
                      " searcher (e.g. max_length: {batches: 1000})");
  int64_t length = s.max_length->value;
  if (length < 1)
    throw ConfigError("searcher.max_length: expected at least 1, found " + std::to_string(length));
  if (s.name == "single") return std::make_unique<RandomSearch>(1, 1, length);
  if (s.name == "random")
    return std::make_unique<RandomSearch>(s.max_trials, s.max_concurrent_trials, length);
  if (s.name == "grid") return std::make_unique<GridSearch>(s.max_concurrent_trials, length);
  if (s.name == "async_halving") {
    if (s.num_rungs < 1)
      throw ConfigError("searcher.num_rungs: async_halving needs num_rungs >= 1, found " +
                        std::to_string(s.num_rungs));
    AshaParams p;
    p.num_rungs = s.num_rungs;
    p.max_length = length;
    p.max_trials = s.max_trials;
    p.divisor = s.divisor;
    p.max_concurrent_trials = s.max_concurrent_trials;
    p.stop_once = s.stop_once;
    p.smaller_is_better = s.smaller_is_better;
    return std::make_unique<AsyncHalvingSearch>(p);
  }
  if (s.name == "adaptive_asha") {
    std::vector<std::unique_ptr<SearchMethod>> brackets;
    for (const auto& p : make_adaptive_brackets(s))
      brackets.push_back(std::make_unique<AsyncHalvingSearch>(p));
    return std::make_unique<TournamentSearch>(std::move(brackets));
  }
  if (s.name == "bohb") return std::make_unique<BohbSearch>(s, space);
  throw ConfigError(
      "searcher.name: expected one of single, random, grid, async_halving, adaptive_asha, bohb, "
      "found " +
      s.name);
}

}  // namespace det::search
