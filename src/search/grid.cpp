#include <algorithm>
#include <cmath>

#include "det/search/search_method.h"
#include "det/util/error.h"

namespace det::search {
namespace {

using config::Hyperparameter;
using Route = std::vector<std::string>;

/// One axis of the grid: where its value goes and the values it takes.
struct Axis {
  Route route;
  std::vector<nlohmann::json> values;
};

std::string route_name(const Route& route) {
  std::string s;
  for (const auto& r : route) s += (s.empty() ? "" : ".") + r;
  return s;
}

int required_count(const Hyperparameter& hp, const Route& route) {
  if (!hp.count)
    throw ConfigError("hyperparameters." + route_name(route) +
                      ": the grid searcher needs a count for " + config::type_name(hp.type) +
                      " hyperparameters");
  if (*hp.count < 1)
    throw ConfigError("hyperparameters." + route_name(route) +
                      ".count: expected at least 1, found " + std::to_string(*hp.count));
  return *hp.count;
}

std::vector<nlohmann::json> axis_values(const Hyperparameter& hp, const Route& route) {
  std::vector<nlohmann::json> out;
  switch (hp.type) {
    case Hyperparameter::Type::kConst:
      out.push_back(hp.val);
      break;
    case Hyperparameter::Type::kCategorical:
      out = hp.vals;
      break;
    case Hyperparameter::Type::kInt: {
      auto lo = static_cast<int64_t>(hp.minval), hi = static_cast<int64_t>(hp.maxval);
      int64_t count = std::min<int64_t>(required_count(hp, route), hi - lo + 1);
      if (count == 1) {
        out.push_back(static_cast<int64_t>(std::round(static_cast<double>(lo + hi) / 2)));
      } else {
        // i*(max-min) is integer arithmetic before the float division, as in grid.go.
        for (int64_t i = 0; i < count; ++i)
          out.push_back(lo + static_cast<int64_t>(std::round(static_cast<double>(i * (hi - lo)) /
                                                             static_cast<double>(count - 1))));
      }
      break;
    }
    case Hyperparameter::Type::kDouble:
    case Hyperparameter::Type::kLog: {
      int count = required_count(hp, route);
      bool log = hp.type == Hyperparameter::Type::kLog;
      auto value = [&](double x) { return log ? std::pow(hp.base, x) : x; };
      if (count == 1) {
        out.push_back(value((hp.minval + hp.maxval) / 2));
      } else {
        for (int i = 0; i < count; ++i)
          out.push_back(value(hp.minval + i * (hp.maxval - hp.minval) / (count - 1)));
      }
      break;
    }
    case Hyperparameter::Type::kNested:
      break;  // handled by collect()
  }
  return out;
}

void collect(const std::map<std::string, Hyperparameter>& space, Route& route,
             std::vector<Axis>& axes) {
  for (const auto& [name, hp] : space) {
    route.push_back(name);
    if (hp.type == Hyperparameter::Type::kNested) {
      if (hp.nested.empty())
        axes.push_back({route, {nlohmann::json::object()}});
      else
        collect(hp.nested, route, axes);
    } else {
      axes.push_back({route, axis_values(hp, route)});
    }
    route.pop_back();
  }
}

}  // namespace

std::vector<nlohmann::json> make_grid(const config::HyperparameterSpace& space) {
  std::vector<Axis> axes;
  Route route;
  collect(space, route, axes);
  std::vector<nlohmann::json> grid;
  for (const auto& a : axes)
    if (a.values.empty()) return grid;  // an empty categorical: no points
  // Odometer over the axes with the last axis varying fastest, so the first varies slowest.
  std::vector<size_t> index(axes.size(), 0);
  while (true) {
    nlohmann::json point = nlohmann::json::object();
    for (size_t k = 0; k < axes.size(); ++k) {
      nlohmann::json* node = &point;
      for (const auto& key : axes[k].route) node = &(*node)[key];
      *node = axes[k].values[index[k]];
    }
    grid.push_back(std::move(point));
    size_t k = axes.size();
    while (k > 0) {
      --k;
      if (++index[k] < axes[k].values.size()) break;
      index[k] = 0;
      if (k == 0) return grid;
    }
    if (axes.empty()) return grid;
  }
}

GridSearch::GridSearch(int max_concurrent_trials, int64_t max_length)
    : max_concurrent_trials_(max_concurrent_trials), max_length_(max_length) {}

void GridSearch::create_trial(SearchContext& ctx, std::vector<Operation>& ops) {
  Create c = make_create_with(std::move(remaining_.back()), ctx.rng);
  remaining_.pop_back();
  std::string id = c.request_id;
  ops.emplace_back(std::move(c));
  ops.emplace_back(ValidateAfter{id, max_length_});
  ops.emplace_back(Close{id});
}

std::vector<Operation> GridSearch::initial_operations(SearchContext& ctx) {
  remaining_ = make_grid(ctx.hparams);
  grid_size_ = static_cast<int>(remaining_.size());
  size_t initial = remaining_.size();
  if (max_concurrent_trials_ > 0)
    initial = std::min(initial, static_cast<size_t>(max_concurrent_trials_));
  std::vector<Operation> ops;
  for (size_t i = 0; i < initial; ++i) create_trial(ctx, ops);
  return ops;
}

std::vector<Operation> GridSearch::validation_completed(SearchContext&, const std::string&, double,
                                                        int64_t) {
  return {};
}

std::vector<Operation> GridSearch::trial_closed(SearchContext& ctx, const std::string&) {
  std::vector<Operation> ops;
  if (!remaining_.empty()) create_trial(ctx, ops);
  return ops;
}

std::vector<Operation> GridSearch::trial_exited_early(SearchContext&, const std::string&,
                                                      ExitedReason) {
  return {};  // a grid point is tried once, even when its hyperparameters are invalid
}

double GridSearch::progress(const TrialProgress& units, const std::set<std::string>& closed) const {
  if (grid_size_ == 0) return 1;
  double done = static_cast<double>(closed.size()) * static_cast<double>(max_length_);
  for (const auto& [id, u] : units)
    if (!closed.count(id)) done += u;
  return std::min(1.0, done / (static_cast<double>(max_length_) * grid_size_));
}

nlohmann::json GridSearch::snapshot() const {
  return {{"grid_size", grid_size_}, {"remaining", remaining_}};
}

void GridSearch::restore(const nlohmann::json& state) {
  grid_size_ = state.at("grid_size").get<int>();
  remaining_ = state.at("remaining").get<std::vector<nlohmann::json>>();
}

}  // namespace det::search
