#pragma once
/// \file
/// `bohb`: adaptive ASHA whose new trials are proposed by a tree-structured Parzen estimator
/// (TPE) fitted on the results already reported at the longest rung that has enough of them, the
/// idea of BOHB (Falkner, Klein and Hutter, 2018) on asynchronous brackets. Before any rung has
/// enough results, and for a `random_fraction` of trials after, the hyperparameters are the
/// random sample adaptive_asha would draw, so the two searchers start identically.

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"
#include "det/search/search_method.h"
#include "det/util/rng.h"

namespace det::search {

/// TPE's settings (the bohb fields of `searcher:`, docs/search.md).
struct TpeParams {
  double random_fraction = 1.0 / 3;  ///< Share of trials sampled at random despite a model.
  double top_fraction = 0.25;        ///< Share of a rung's results the model calls good.
  int min_observations = 0;          ///< Results a rung needs; 0 = dimensions + 1.
  int candidates = 64;               ///< Samples drawn from the good density per proposal.
  double bandwidth_factor = 3;       ///< Widening of the good density when drawing samples.
};

/// A TPE over a hyperparameter space. Every leaf that varies (int, double, log, categorical; a
/// nested space's leaves too) is one dimension; numeric ones live in [0, 1] (log ones by their
/// exponent, ints by cells of equal width). The densities are independent per dimension: for
/// numeric ones a uniform prior plus one truncated Gaussian per point (Scott's bandwidth, at
/// least 1/(2(n+1)) of the range); for categorical ones counts plus one prior count spread
/// over the choices.
class TpeModel {
 public:
  /// A result: a trial's hyperparameters and its metric (lower is better).
  struct Observation {
    nlohmann::json hparams;  ///< As the trial was created.
    double loss = 0;         ///< The searcher metric, negated when larger is better.
  };
  /// The model of `space` (which must outlive it).
  explicit TpeModel(const config::HyperparameterSpace& space);
  /// Dimensions that vary.
  size_t dimensions() const { return dims_.size(); }
  /// Draws `params.candidates` points from the density of the best `top_fraction` of
  /// `observations` (bandwidths widened by `bandwidth_factor`) and returns `base` with its varying
  /// leaves set to the point with the highest ratio of that density to the density of the rest.
  /// Needs at least 2 observations.
  nlohmann::json propose(const nlohmann::json& base, const std::vector<Observation>& observations,
                         const TpeParams& params, util::NpRandom& rng) const;

 private:
  struct Dim {
    std::vector<std::string> path;  ///< Keys from the top of the space to the leaf.
    const config::Hyperparameter* hp = nullptr;
  };
  void collect(const config::HyperparameterSpace& space, std::vector<std::string>& path);
  double to_unit(const Dim& d, const nlohmann::json& value) const;
  nlohmann::json from_unit(const Dim& d, double u) const;
  size_t category(const Dim& d, const nlohmann::json& value) const;

  const config::HyperparameterSpace& space_;
  std::vector<Dim> dims_;
};

/// The bohb searcher: an adaptive ASHA tournament (make_adaptive_brackets) whose Creates get
/// their hyperparameters from a TpeModel once some rung has `min_observations` results.
/// Results are pooled by length across brackets (every bracket's rungs lie on the same lengths).
class BohbSearch : public SearchMethod {
 public:
  /// `searcher` is a bohb searcher config; `space` must outlive the search.
  BohbSearch(const config::SearcherConfig& searcher, const config::HyperparameterSpace& space);
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

  /// The brackets underneath (for previews and tests).
  const TournamentSearch& tournament() const { return *tournament_; }
  /// How each trial's hyperparameters were chosen: "random", or "model@L" (the rung length whose
  /// results the model was fitted on).
  const std::map<std::string, std::string>& origins() const { return origins_; }
  /// Results a rung needs before its model proposes trials.
  int min_observations() const { return min_observations_; }

 private:
  std::vector<Operation> propose(SearchContext& ctx, std::vector<Operation> ops);

  std::unique_ptr<TournamentSearch> tournament_;
  TpeModel model_;
  TpeParams params_;
  bool smaller_is_better_ = true;
  int min_observations_ = 2;
  std::map<std::string, nlohmann::json> hparams_;  ///< Every trial's hyperparameters.
  std::map<std::string, std::string> origins_;
  /// Results by length: (trial, loss) in the order they came.
  std::map<int64_t, std::vector<std::pair<std::string, double>>> results_;
};

}  // namespace det::search
