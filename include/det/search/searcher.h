#pragma once
/// \file
/// Determined's Searcher (searcher.go): owns the generator and a SearchMethod, keeps count of
/// requested and closed trials, and emits Shutdown when every requested trial is closed. Also
/// the offline simulation (`det preview-search`, TRIALS.json) built on it.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"
#include "det/search/operations.h"
#include "det/search/search_method.h"
#include "det/util/rng.h"

namespace det::search {

/// A search in progress: the method plus the bookkeeping every method shares.
class Searcher {
 public:
  /// Builds the method from `config.searcher`; the generator is seeded with `seed`.
  Searcher(const config::ExperimentConfig& config, uint32_t seed);

  /// The operations that start the search.
  std::vector<Operation> initial_operations();
  /// A Create was carried out.
  std::vector<Operation> trial_created(const std::string& request_id);
  /// A ValidateAfter of `length` total units gave `metric`; a repeated report is ignored.
  std::vector<Operation> validation_completed(const std::string& request_id, double metric,
                                              int64_t length);
  /// The trial exited; may end with Shutdown. A second close of the same trial is ignored.
  std::vector<Operation> trial_closed(const std::string& request_id);
  /// The trial stopped before being closed; reported once per trial.
  std::vector<Operation> trial_exited_early(const std::string& request_id, ExitedReason reason);
  /// Fraction of the search done, in [0, 1].
  double progress() const;

  /// Everything (counters, generator, method state) as JSON.
  nlohmann::json snapshot() const;
  /// Restores a snapshot() into a searcher built from the same config.
  void restore(const nlohmann::json& state);

  /// Creates emitted so far.
  int trials_requested() const { return trials_requested_; }
  /// Trials closed so far.
  int trials_closed() const { return static_cast<int>(trials_closed_.size()); }
  /// True once Shutdown was emitted.
  bool shutdown() const { return shutdown_; }
  /// The method (for previews and tests).
  const SearchMethod& method() const { return *method_; }

 private:
  std::vector<Operation> record(std::vector<Operation> ops);
  SearchContext context() { return SearchContext{rng_, hparams_}; }

  config::HyperparameterSpace hparams_;
  std::unique_ptr<SearchMethod> method_;
  util::NpRandom rng_;
  int trials_requested_ = 0;
  std::set<std::string> trials_created_, trials_closed_, exits_, cancels_, failures_;
  std::set<std::string> completed_operations_;  ///< "id@length" of reported validations
  TrialProgress trial_progress_;
  bool shutdown_ = false;
};

/// The experiment seed, or a fresh random one when the config has none (as the master does).
uint32_t experiment_seed(const config::ExperimentConfig& config);

/// Simulates the search with predefined trials. `trials_json` is
/// {"trials": [{"metric": m, "early_exit_at": k?}, ...]}: the n-th Create gets the n-th entry;
/// its k-th ValidateAfter (from 0) is answered with an early exit instead of the metric.
/// Returns {"trials": [{"id", "validate_after": [lengths...], "early_exit"}...]} in creation
/// order (lengths in the config's unit). Throws ConfigError for a bad TRIALS.json or when the
/// searcher needs more trials than it defines.
nlohmann::json simulate(const config::ExperimentConfig& config, const nlohmann::json& trials_json);

/// A readable summary of the search: the searcher, and for ASHA each bracket's rungs with their
/// lengths, how many trials reach each rung and the total training length, in the config's unit.
std::string preview_search(const config::ExperimentConfig& config);

}  // namespace det::search
