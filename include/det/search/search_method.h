#pragma once
/// \file
/// Determined's SearchMethod (search_method.go) and the searchers behind it: single, random,
/// grid, async_halving (promotion- or stopping-based ASHA) and adaptive_asha (a tournament of ASHA
/// brackets). Lengths are in the unit of the config's max_length.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"
#include "det/search/operations.h"
#include "det/util/rng.h"

namespace det::search {

/// What a search method may use to create trials: the experiment's generator and its space.
struct SearchContext {
  util::NpRandom& rng;                         ///< Owned by the Searcher.
  const config::HyperparameterSpace& hparams;  ///< The experiment's hyperparameters.
};

/// Units trained so far per trial, as the Searcher tracks them for progress().
using TrialProgress = std::map<std::string, double>;

/// The hooks of a search algorithm. Every hook returns the operations it wants performed next.
class SearchMethod {
 public:
  virtual ~SearchMethod() = default;
  /// The operations that start the search.
  virtual std::vector<Operation> initial_operations(SearchContext& ctx) = 0;
  /// A Create was carried out.
  virtual std::vector<Operation> trial_created(SearchContext& ctx, const std::string& request_id);
  /// A ValidateAfter of `length` total units was carried out and gave `metric`.
  virtual std::vector<Operation> validation_completed(SearchContext& ctx,
                                                      const std::string& request_id, double metric,
                                                      int64_t length) = 0;
  /// The trial has exited after a Close (or after an early exit).
  virtual std::vector<Operation> trial_closed(SearchContext& ctx, const std::string& request_id);
  /// The trial stopped on its own before the searcher closed it.
  virtual std::vector<Operation> trial_exited_early(SearchContext& ctx,
                                                    const std::string& request_id,
                                                    ExitedReason reason) = 0;
  /// Fraction of the search done, in [0, 1].
  virtual double progress(const TrialProgress& units,
                          const std::set<std::string>& closed) const = 0;
  /// The method's whole state as JSON.
  virtual nlohmann::json snapshot() const = 0;
  /// Restores a snapshot() of a method built from the same config.
  virtual void restore(const nlohmann::json& state) = 0;
};

/// Builds the method named by `searcher.name` over `space` (which must outlive it); throws
/// ConfigError for an unknown name or a missing required field.
std::unique_ptr<SearchMethod> make_search_method(const config::SearcherConfig& searcher,
                                                 const config::HyperparameterSpace& space);

/// Random search (random.go); `single` is random with one trial and one concurrent trial.
class RandomSearch : public SearchMethod {
 public:
  /// `max_concurrent_trials` 0 means unlimited.
  RandomSearch(int max_trials, int max_concurrent_trials, int64_t max_length);
  std::vector<Operation> initial_operations(SearchContext& ctx) override;
  std::vector<Operation> validation_completed(SearchContext& ctx, const std::string& request_id,
                                              double metric, int64_t length) override;
  std::vector<Operation> trial_closed(SearchContext& ctx, const std::string& request_id) override;
  std::vector<Operation> trial_exited_early(SearchContext& ctx, const std::string& request_id,
                                            ExitedReason reason) override;
  double progress(const TrialProgress& units, const std::set<std::string>& closed) const override;
  nlohmann::json snapshot() const override;
  void restore(const nlohmann::json& state) override;

 private:
  void create_trial(SearchContext& ctx, std::vector<Operation>& ops);
  int max_trials_, max_concurrent_trials_;
  int64_t max_length_;
  int created_trials_ = 0;
  int pending_trials_ = 0;
};

/// The grid of a hyperparameter space (grid.go): the cartesian product of one axis per
/// (leaf) hyperparameter, the first axis in sorted key order varying slowest. Throws ConfigError
/// when an int, double or log hyperparameter has no `count`.
std::vector<nlohmann::json> make_grid(const config::HyperparameterSpace& space);

/// Grid search (grid.go): trials are taken from the END of make_grid()'s list.
class GridSearch : public SearchMethod {
 public:
  /// `max_concurrent_trials` 0 means unlimited.
  GridSearch(int max_concurrent_trials, int64_t max_length);
  std::vector<Operation> initial_operations(SearchContext& ctx) override;
  std::vector<Operation> validation_completed(SearchContext& ctx, const std::string& request_id,
                                              double metric, int64_t length) override;
  std::vector<Operation> trial_closed(SearchContext& ctx, const std::string& request_id) override;
  std::vector<Operation> trial_exited_early(SearchContext& ctx, const std::string& request_id,
                                            ExitedReason reason) override;
  double progress(const TrialProgress& units, const std::set<std::string>& closed) const override;
  nlohmann::json snapshot() const override;
  void restore(const nlohmann::json& state) override;

 private:
  void create_trial(SearchContext& ctx, std::vector<Operation>& ops);
  int max_concurrent_trials_;
  int64_t max_length_;
  int grid_size_ = 0;
  std::vector<nlohmann::json> remaining_;  ///< Grid points not yet created, popped from the back.
};

/// The rung lengths of ASHA: max(floor(L / d^(n-1-i)), 1) for i in 0..n-1 (makeRungs).
std::vector<int64_t> make_rungs(int num_rungs, int64_t max_length, double divisor);

/// One ASHA search (one bracket of adaptive ASHA).
struct AshaParams {
  int num_rungs = 1;       ///< Rungs in this bracket, >= 1.
  int64_t max_length = 1;  ///< The last rung's length, in the searcher's unit.
  int max_trials = 1;      ///< Trials this search creates.
  /// > 1: rung i+1 is divisor times longer and keeps 1/divisor of the trials.
  double divisor = 4;
  int max_concurrent_trials = 16;  ///< 0 = derived from the divisor.
  bool stop_once = false;          ///< Stopping-based instead of promotion-based.
  bool smaller_is_better = true;   ///< The searcher metric's order.
  /// Field-by-field equality (divisor compared exactly).
  bool operator==(const AshaParams& o) const {
    return num_rungs == o.num_rungs && max_length == o.max_length && max_trials == o.max_trials &&
           divisor == o.divisor && max_concurrent_trials == o.max_concurrent_trials &&
           stop_once == o.stop_once && smaller_is_better == o.smaller_is_better;
  }
};

/// Asynchronous successive halving: asha.go (promotion-based) when `stop_once` is false,
/// asha_stopping.go (stopping-based) when it is true.
class AsyncHalvingSearch : public SearchMethod {
 public:
  /// A trial's metric within one rung (metrics are negated when larger is better).
  struct TrialMetric {
    std::string request_id;  ///< The trial.
    double metric = 0;       ///< Its searcher metric at this rung, negated when larger is better.
    bool promoted = false;   ///< Promotion-based: the trial was already sent on to the next rung.
  };
  /// One rung: its cumulative length and its metrics, sorted ascending.
  struct Rung {
    int64_t units_needed = 0;  ///< Total length trained at this rung, in the searcher's unit.
    /// Trials that reported here, best first.
    std::vector<TrialMetric> metrics;
    int outstanding_trials = 0;  ///< Promotion-based only: trials training towards this rung.
    /// asha.go's promotionsAsync: inserts the metric and returns at most one trial to promote.
    std::vector<std::string> promotions_async(const std::string& request_id, double metric,
                                              double divisor);
    /// asha_stopping.go's continueTraining: inserts the metric, true if the trial goes on.
    bool continue_training(const std::string& request_id, double metric, double divisor);
  };

  /// Builds the rungs from `params`.
  explicit AsyncHalvingSearch(const AshaParams& params);
  std::vector<Operation> initial_operations(SearchContext& ctx) override;
  std::vector<Operation> trial_created(SearchContext& ctx, const std::string& request_id) override;
  std::vector<Operation> validation_completed(SearchContext& ctx, const std::string& request_id,
                                              double metric, int64_t length) override;
  std::vector<Operation> trial_closed(SearchContext& ctx, const std::string& request_id) override;
  std::vector<Operation> trial_exited_early(SearchContext& ctx, const std::string& request_id,
                                            ExitedReason reason) override;
  double progress(const TrialProgress& units, const std::set<std::string>& closed) const override;
  nlohmann::json snapshot() const override;
  void restore(const nlohmann::json& state) override;

  /// The parameters this search was built with.
  const AshaParams& params() const { return params_; }
  /// The rungs (for tests and previews).
  const std::vector<Rung>& rungs() const { return rungs_; }

 private:
  void create_trial(SearchContext& ctx, std::vector<Operation>& ops);
  std::vector<Operation> promote_async(SearchContext& ctx, const std::string& request_id,
                                       double metric);
  std::vector<Operation> promote_stopping(SearchContext& ctx, const std::string& request_id,
                                          double metric);
  std::vector<Operation> close_out_rungs();
  /// The trial's metric in `rung`.
  static double metric_in(const Rung& rung, const std::string& request_id);
  int valid_trials() const { return static_cast<int>(trial_rungs_.size()) - invalid_trials_; }

  AshaParams params_;
  std::vector<Rung> rungs_;
  std::map<std::string, int> trial_rungs_;
  std::set<std::string> early_exit_trials_;
  std::set<std::string> closed_trials_;
  int trials_completed_ = 0;
  int invalid_trials_ = 0;
};

/// adaptive_asha's number of rungs: min(max_rungs, int(log(L)/log(d))+1, int(log(T)/log(d))+1).
int adaptive_max_rungs(int max_rungs, int64_t max_length, int max_trials, double divisor);

/// Bracket rung counts for a mode (aggressive, standard, conservative), sorted descending.
/// Throws ConfigError for an unknown mode.
std::vector<int> adaptive_brackets(const std::string& mode, int max_rungs);

/// getBracketMaxTrials: trials per bracket, weighted by d^(r-1)/r, remainder to bracket 0.
std::vector<int> get_bracket_max_trials(int max_trials, double divisor,
                                        const std::vector<int>& brackets);

/// getBracketMaxConcurrentTrials: concurrency per bracket.
std::vector<int> get_bracket_max_concurrent_trials(int max_concurrent_trials, double divisor,
                                                   const std::vector<int>& max_trials);

/// The ASHA brackets of an adaptive_asha config, in tournament order (most rungs first).
std::vector<AshaParams> make_adaptive_brackets(const config::SearcherConfig& searcher);

/// Runs several searches side by side (tournament.go); each trial's events go to the search that
/// created it. adaptive_asha is a tournament of ASHA brackets.
class TournamentSearch : public SearchMethod {
 public:
  /// Takes ownership of the sub-searches (in bracket order).
  explicit TournamentSearch(std::vector<std::unique_ptr<SearchMethod>> searches);
  std::vector<Operation> initial_operations(SearchContext& ctx) override;
  std::vector<Operation> trial_created(SearchContext& ctx, const std::string& request_id) override;
  std::vector<Operation> validation_completed(SearchContext& ctx, const std::string& request_id,
                                              double metric, int64_t length) override;
  std::vector<Operation> trial_closed(SearchContext& ctx, const std::string& request_id) override;
  std::vector<Operation> trial_exited_early(SearchContext& ctx, const std::string& request_id,
                                            ExitedReason reason) override;
  double progress(const TrialProgress& units, const std::set<std::string>& closed) const override;
  nlohmann::json snapshot() const override;
  void restore(const nlohmann::json& state) override;

  /// The index of the sub-search that created the trial, or -1.
  int search_of(const std::string& request_id) const;
  /// The sub-searches.
  const std::vector<std::unique_ptr<SearchMethod>>& searches() const { return searches_; }

 private:
  std::vector<Operation> mark(int index, std::vector<Operation> ops);
  std::vector<std::unique_ptr<SearchMethod>> searches_;
  std::map<std::string, int> trial_table_;
};

}  // namespace det::search
