#pragma once
/// \file
/// Hyperparameter spaces (Determined's const, int, double, log, categorical and nested
/// types) and sampling with Determined's rules.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/util/rng.h"

namespace det::config {

/// One hyperparameter of an experiment config.
struct Hyperparameter {
  /// The kinds Determined knows; a plain value is `kConst`, a map without `type` is `kNested`.
  enum class Type { kConst, kInt, kDouble, kLog, kCategorical, kNested };
  /// Which of the fields below apply; a plain YAML value parses as kConst.
  Type type = Type::kConst;
  nlohmann::json val;  ///< kConst: the value.
  /// kInt, kDouble, kLog: the inclusive lower bound (an exponent for kLog).
  double minval = 0, maxval = 0;                 ///< kInt, kDouble, kLog (exponents for kLog).
  double base = 10;                              ///< kLog.
  std::optional<int> count;                      ///< Grid points for kInt, kDouble, kLog.
  std::vector<nlohmann::json> vals;              ///< kCategorical.
  std::map<std::string, Hyperparameter> nested;  ///< kNested, keys sorted.
};

/// Top-level hyperparameters, iterated in sorted key order like Determined's `Each`.
using HyperparameterSpace = std::map<std::string, Hyperparameter>;

/// The name of a type as written in YAML ("const", "int", ...).
std::string type_name(Hyperparameter::Type type);

/// Draws one value per hyperparameter (sorted keys, nested recursively) with Determined's rules:
/// int -> minval + Intn(maxval-minval+1); double -> Uniform; log -> base^Uniform;
/// categorical -> vals[Intn(n)]; const -> val.
nlohmann::json sample_hyperparameters(const HyperparameterSpace& space, util::NpRandom& rng);

/// True when every hyperparameter is a constant (possibly nested), so the space has one point.
bool is_constant(const HyperparameterSpace& space);

/// Where `values` (a trial's hyperparameters, e.g. a checkpoint's) disagree with `space`: the
/// first key, as "hyperparameters.K is A in the config but B in the checkpoint" (`theirs` names
/// where the values come from), or nothing when every constant is equal, every searched value
/// lies in its range or list, and both have the same keys.
std::optional<std::string> hyperparameter_mismatch(const HyperparameterSpace& space,
                                                   const nlohmann::json& values,
                                                   const std::string& theirs);

/// The space as JSON in the config's own form (for resolved configs and reports).
nlohmann::json to_json(const HyperparameterSpace& space);

}  // namespace det::config
