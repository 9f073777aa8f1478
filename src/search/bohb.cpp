#include "det/search/bohb.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "det/util/error.h"

namespace det::search {
namespace {

using Type = config::Hyperparameter::Type;
constexpr double kPi = 3.14159265358979323846;

double normal_cdf(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

/// A standard normal draw (Box-Muller on two draws of the experiment's generator).
double normal(util::NpRandom& rng) {
  double u1 = rng.unit_interval(), u2 = rng.unit_interval();
  return std::sqrt(-2.0 * std::log1p(-u1)) * std::cos(2 * kPi * u2);
}

/// A uniform prior on [0, 1] plus one Gaussian per point truncated to [0, 1], equal weights.
struct Parzen {
  std::vector<double> points;
  double bandwidth = 1;

  explicit Parzen(std::vector<double> xs) : points(std::move(xs)) {
    auto n = static_cast<double>(points.size());
    double sd = 0;
    if (points.size() > 1) {
      double mean = 0;
      for (double x : points) mean += x / n;
      for (double x : points) sd += (x - mean) * (x - mean) / (n - 1);
      sd = std::sqrt(sd);
    }
    // Scott's rule, kept from collapsing onto a point and from exceeding the range.
    bandwidth = std::clamp(1.06 * sd * std::pow(n, -0.2), 1.0 / (2 * (n + 1)), 1.0);
  }
  double log_pdf(double u) const {
    double sum = 1;  // the prior's density on [0, 1]
    for (double m : points) {
      double z = (u - m) / bandwidth;
      double mass = normal_cdf((1 - m) / bandwidth) - normal_cdf(-m / bandwidth);
      sum += std::exp(-0.5 * z * z) / (std::sqrt(2 * kPi) * bandwidth * std::max(mass, 1e-12));
    }
    return std::log(sum / static_cast<double>(points.size() + 1));
  }
  double sample(util::NpRandom& rng, double widen) const {
    auto k = static_cast<size_t>(rng.intn(static_cast<int64_t>(points.size() + 1)));
    if (k == points.size()) return rng.unit_interval();
    double h = std::min(bandwidth * widen, 1.0);
    for (int tries = 0; tries < 32; ++tries) {
      double u = points[k] + h * normal(rng);
      if (u >= 0 && u <= 1) return u;
    }
    return points[k];
  }
};

/// Category counts plus one prior count spread evenly over the choices.
struct Categorical {
  std::vector<double> probs;
  Categorical(const std::vector<size_t>& picks, size_t choices) : probs(choices, 0) {
    double total = static_cast<double>(picks.size()) + 1;
    for (auto& p : probs) p = 1.0 / static_cast<double>(choices) / total;
    for (size_t c : picks) probs[c] += 1.0 / total;
  }
  double log_pdf(size_t c) const { return std::log(probs[c]); }
  size_t sample(util::NpRandom& rng) const {
    double u = rng.unit_interval(), acc = 0;
    for (size_t c = 0; c < probs.size(); ++c) {
      acc += probs[c];
      if (u < acc) return c;
    }
    return probs.size() - 1;
  }
};

const nlohmann::json& leaf(const nlohmann::json& hparams, const std::vector<std::string>& path) {
  const nlohmann::json* j = &hparams;
  for (const auto& key : path) j = &j->at(key);
  return *j;
}

}  // namespace

// ---- TpeModel ---------------------------------------------------------------------------------

TpeModel::TpeModel(const config::HyperparameterSpace& space) : space_(space) {
  std::vector<std::string> path;
  collect(space_, path);
}

void TpeModel::collect(const config::HyperparameterSpace& space, std::vector<std::string>& path) {
  for (const auto& [name, hp] : space) {
    path.push_back(name);
    bool varies = false;
    switch (hp.type) {
      case Type::kNested:
        collect(hp.nested, path);
        break;
      case Type::kInt:
      case Type::kDouble:
      case Type::kLog:
        varies = hp.maxval > hp.minval;
        break;
      case Type::kCategorical:
        varies = hp.vals.size() > 1;
        break;
      case Type::kConst:
        break;
    }
    if (varies) dims_.push_back(Dim{path, &hp});
    path.pop_back();
  }
}

double TpeModel::to_unit(const Dim& d, const nlohmann::json& value) const {
  const auto& hp = *d.hp;
  double v = value.get<double>(), u = 0;
  if (hp.type == Type::kInt) u = (v - hp.minval + 0.5) / (hp.maxval - hp.minval + 1);
  if (hp.type == Type::kDouble) u = (v - hp.minval) / (hp.maxval - hp.minval);
  if (hp.type == Type::kLog)
    u = (std::log(v) / std::log(hp.base) - hp.minval) / (hp.maxval - hp.minval);
  return std::isfinite(u) ? std::clamp(u, 0.0, 1.0) : 0.5;
}

nlohmann::json TpeModel::from_unit(const Dim& d, double u) const {
  const auto& hp = *d.hp;
  if (hp.type == Type::kInt) {
    auto lo = static_cast<int64_t>(hp.minval), hi = static_cast<int64_t>(hp.maxval);
    auto cell = static_cast<int64_t>(std::floor(u * static_cast<double>(hi - lo + 1)));
    return lo + std::clamp<int64_t>(cell, 0, hi - lo);
  }
  if (hp.type == Type::kLog) return std::pow(hp.base, hp.minval + u * (hp.maxval - hp.minval));
  return hp.minval + u * (hp.maxval - hp.minval);
}

size_t TpeModel::category(const Dim& d, const nlohmann::json& value) const {
  for (size_t i = 0; i < d.hp->vals.size(); ++i)
    if (d.hp->vals[i] == value) return i;
  return 0;
}

nlohmann::json TpeModel::propose(const nlohmann::json& base,
                                 const std::vector<Observation>& observations,
                                 const TpeParams& params, util::NpRandom& rng) const {
  if (observations.size() < 2)
    throw Error("TPE needs at least 2 results to split into good and bad, has " +
                std::to_string(observations.size()));
  // The best ceil(top_fraction * n) results are "good" (at least one, leaving at least one bad).
  std::vector<size_t> order(observations.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return observations[a].loss < observations[b].loss; });
  auto n = static_cast<double>(observations.size());
  size_t n_good = std::clamp<size_t>(static_cast<size_t>(std::ceil(params.top_fraction * n)), 1,
                                     observations.size() - 1);

  // One density pair per dimension.
  struct Densities {
    std::unique_ptr<Parzen> good_num, bad_num;
    std::unique_ptr<Categorical> good_cat, bad_cat;
  };
  std::vector<Densities> dens(dims_.size());
  for (size_t d = 0; d < dims_.size(); ++d) {
    const Dim& dim = dims_[d];
    if (dim.hp->type == Type::kCategorical) {
      std::vector<size_t> good, bad;
      for (size_t i = 0; i < order.size(); ++i)
        (i < n_good ? good : bad)
            .push_back(category(dim, leaf(observations[order[i]].hparams, dim.path)));
      dens[d].good_cat = std::make_unique<Categorical>(good, dim.hp->vals.size());
      dens[d].bad_cat = std::make_unique<Categorical>(bad, dim.hp->vals.size());
    } else {
      std::vector<double> good, bad;
      for (size_t i = 0; i < order.size(); ++i)
        (i < n_good ? good : bad)
            .push_back(to_unit(dim, leaf(observations[order[i]].hparams, dim.path)));
      dens[d].good_num = std::make_unique<Parzen>(good);
      dens[d].bad_num = std::make_unique<Parzen>(bad);
    }
  }

  // Candidates from the good density; the best ratio good/bad wins (the first on ties).
  std::vector<double> best_u(dims_.size());
  std::vector<size_t> best_c(dims_.size());
  double best_score = -std::numeric_limits<double>::infinity();
  std::vector<double> u(dims_.size());
  std::vector<size_t> c(dims_.size());
  for (int k = 0; k < std::max(1, params.candidates); ++k) {
    double score = 0;
    for (size_t d = 0; d < dims_.size(); ++d) {
      if (dens[d].good_cat) {
        c[d] = dens[d].good_cat->sample(rng);
        score += dens[d].good_cat->log_pdf(c[d]) - dens[d].bad_cat->log_pdf(c[d]);
      } else {
        u[d] = dens[d].good_num->sample(rng, params.bandwidth_factor);
        score += dens[d].good_num->log_pdf(u[d]) - dens[d].bad_num->log_pdf(u[d]);
      }
    }
    if (score > best_score) {
      best_score = score;
      best_u = u;
      best_c = c;
    }
  }

  nlohmann::json out = base;
  for (size_t d = 0; d < dims_.size(); ++d) {
    nlohmann::json* j = &out;
    for (const auto& key : dims_[d].path) j = &(*j)[key];
    *j = dens[d].good_cat ? dims_[d].hp->vals[best_c[d]] : from_unit(dims_[d], best_u[d]);
  }
  return out;
}

// ---- BohbSearch -------------------------------------------------------------------------------

BohbSearch::BohbSearch(const config::SearcherConfig& s, const config::HyperparameterSpace& space)
    : model_(space), smaller_is_better_(s.smaller_is_better) {
  std::vector<std::unique_ptr<SearchMethod>> brackets;
  for (const auto& p : make_adaptive_brackets(s))
    brackets.push_back(std::make_unique<AsyncHalvingSearch>(p));
  tournament_ = std::make_unique<TournamentSearch>(std::move(brackets));
  params_.random_fraction = s.random_fraction;
  params_.top_fraction = s.top_fraction;
  params_.candidates = s.candidates;
  params_.bandwidth_factor = s.bandwidth_factor;
  min_observations_ =
      s.min_observations > 0 ? s.min_observations : static_cast<int>(model_.dimensions()) + 1;
  min_observations_ = std::max(min_observations_, 2);
  params_.min_observations = min_observations_;
}

std::vector<Operation> BohbSearch::propose(SearchContext& ctx, std::vector<Operation> ops) {
  for (auto& op : ops) {
    auto* c = std::get_if<Create>(&op);
    if (!c) continue;
    std::string origin = "random";
    // The longest rung with enough results: the model closest to the full length.
    const std::vector<std::pair<std::string, double>>* fit = nullptr;
    int64_t fit_length = 0;
    for (auto it = results_.rbegin(); it != results_.rend(); ++it)
      if (static_cast<int>(it->second.size()) >= min_observations_) {
        fit = &it->second;
        fit_length = it->first;
        break;
      }
    if (fit && model_.dimensions() > 0 && ctx.rng.unit_interval() >= params_.random_fraction) {
      std::vector<TpeModel::Observation> obs;
      for (const auto& [id, loss] : *fit) obs.push_back({hparams_.at(id), loss});
      c->hparams = model_.propose(c->hparams, obs, params_, ctx.rng);
      origin = "model@" + std::to_string(fit_length);
    }
    hparams_[c->request_id] = c->hparams;
    origins_[c->request_id] = origin;
  }
  return ops;
}

std::vector<Operation> BohbSearch::initial_operations(SearchContext& ctx) {
  return propose(ctx, tournament_->initial_operations(ctx));
}

std::vector<Operation> BohbSearch::trial_created(SearchContext& ctx,
                                                 const std::string& request_id) {
  return propose(ctx, tournament_->trial_created(ctx, request_id));
}

std::vector<Operation> BohbSearch::validation_completed(SearchContext& ctx,
                                                        const std::string& request_id,
                                                        double metric, int64_t length) {
  if (hparams_.count(request_id)) {
    double loss = smaller_is_better_ ? metric : -metric;
    if (!std::isfinite(loss)) loss = std::numeric_limits<double>::max();  // NaN/inf: the worst
    results_[length].emplace_back(request_id, loss);
  }
  return propose(ctx, tournament_->validation_completed(ctx, request_id, metric, length));
}

std::vector<Operation> BohbSearch::trial_closed(SearchContext& ctx, const std::string& request_id) {
  return propose(ctx, tournament_->trial_closed(ctx, request_id));
}

std::vector<Operation> BohbSearch::trial_exited_early(SearchContext& ctx,
                                                      const std::string& request_id,
                                                      ExitedReason reason) {
  // Hyperparameters the trial rejected say nothing about the objective: forget its results.
  if (reason == ExitedReason::kInvalidHP)
    for (auto& [length, rs] : results_)
      rs.erase(std::remove_if(rs.begin(), rs.end(),
                              [&](const auto& r) { return r.first == request_id; }),
               rs.end());
  return propose(ctx, tournament_->trial_exited_early(ctx, request_id, reason));
}

double BohbSearch::progress(const TrialProgress& units, const std::set<std::string>& closed) const {
  return tournament_->progress(units, closed);
}

nlohmann::json BohbSearch::snapshot() const {
  nlohmann::json results = nlohmann::json::array();
  for (const auto& [length, rs] : results_) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& [id, loss] : rs) list.push_back({id, loss});
    results.push_back({{"length", length}, {"results", list}});
  }
  return {{"tournament", tournament_->snapshot()},
          {"hparams", hparams_},
          {"origins", origins_},
          {"results", results}};
}

void BohbSearch::restore(const nlohmann::json& state) {
  tournament_->restore(state.at("tournament"));
  hparams_ = state.at("hparams").get<std::map<std::string, nlohmann::json>>();
  origins_ = state.at("origins").get<std::map<std::string, std::string>>();
  results_.clear();
  for (const auto& r : state.at("results")) {
    auto& rs = results_[r.at("length").get<int64_t>()];
    for (const auto& e : r.at("results"))
      rs.emplace_back(e.at(0).get<std::string>(), e.at(1).get<double>());
  }
}

}  // namespace det::search
