#include "det/config/hyperparameters.h"

#include <algorithm>
#include <cmath>

namespace det::config {

std::string type_name(Hyperparameter::Type type) {
  switch (type) {
    case Hyperparameter::Type::kConst:
      return "const";
    case Hyperparameter::Type::kInt:
      return "int";
    case Hyperparameter::Type::kDouble:
      return "double";
    case Hyperparameter::Type::kLog:
      return "log";
    case Hyperparameter::Type::kCategorical:
      return "categorical";
    case Hyperparameter::Type::kNested:
      return "nested";
  }
  return "?";
}

namespace {
nlohmann::json sample_one(const Hyperparameter& hp, util::NpRandom& rng) {
  switch (hp.type) {
    case Hyperparameter::Type::kConst:
      return hp.val;
    case Hyperparameter::Type::kInt: {
      auto lo = static_cast<int64_t>(hp.minval), hi = static_cast<int64_t>(hp.maxval);
      return lo + rng.intn(hi - lo + 1);
    }
    case Hyperparameter::Type::kDouble:
      return rng.uniform(hp.minval, hp.maxval);
    case Hyperparameter::Type::kLog:
      return std::pow(hp.base, rng.uniform(hp.minval, hp.maxval));
    case Hyperparameter::Type::kCategorical:
      return hp.vals[static_cast<size_t>(rng.intn(static_cast<int64_t>(hp.vals.size())))];
    case Hyperparameter::Type::kNested:
      return sample_hyperparameters(hp.nested, rng);
  }
  return nullptr;
}

nlohmann::json one_to_json(const Hyperparameter& hp) {
  using T = Hyperparameter::Type;
  nlohmann::json j;
  switch (hp.type) {
    case T::kConst:
      return {{"type", "const"}, {"val", hp.val}};
    case T::kInt:
      j = {{"type", "int"},
           {"minval", static_cast<int64_t>(hp.minval)},
           {"maxval", static_cast<int64_t>(hp.maxval)}};
      break;
    case T::kDouble:
      j = {{"type", "double"}, {"minval", hp.minval}, {"maxval", hp.maxval}};
      break;
    case T::kLog:
      j = {{"type", "log"}, {"minval", hp.minval}, {"maxval", hp.maxval}, {"base", hp.base}};
      break;
    case T::kCategorical:
      return {{"type", "categorical"}, {"vals", hp.vals}};
    case T::kNested:
      return to_json(hp.nested);
  }
  if (hp.count) j["count"] = *hp.count;
  return j;
}
}  // namespace

nlohmann::json sample_hyperparameters(const HyperparameterSpace& space, util::NpRandom& rng) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, hp] : space) out[name] = sample_one(hp, rng);
  return out;
}

bool is_constant(const HyperparameterSpace& space) {
  for (const auto& [name, hp] : space) {
    if (hp.type == Hyperparameter::Type::kNested) {
      if (!is_constant(hp.nested)) return false;
    } else if (hp.type != Hyperparameter::Type::kConst) {
      return false;
    }
  }
  return true;
}

nlohmann::json to_json(const HyperparameterSpace& space) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, hp] : space) out[name] = one_to_json(hp);
  return out;
}

namespace {

// Whether `v` is a point of the searched hyperparameter `h` (not kConst, not kNested).
bool in_space(const Hyperparameter& h, const nlohmann::json& v) {
  using T = Hyperparameter::Type;
  if (h.type == T::kCategorical) return std::find(h.vals.begin(), h.vals.end(), v) != h.vals.end();
  if (!v.is_number()) return false;
  const double x = v.get<double>();
  if (h.type == T::kInt) return v.is_number_integer() && x >= h.minval && x <= h.maxval;
  if (h.type == T::kLog)  // base^minval .. base^maxval, with the rounding of pow
    return x >= std::pow(h.base, h.minval) * (1 - 1e-12) &&
           x <= std::pow(h.base, h.maxval) * (1 + 1e-12);
  return x >= h.minval && x <= h.maxval;
}

std::optional<std::string> mismatch_in(const HyperparameterSpace& space,
                                       const nlohmann::json& values, const std::string& path,
                                       const std::string& theirs) {
  using T = Hyperparameter::Type;
  if (!values.is_object())
    return path + " is " + values.dump() + " in " + theirs + ", not a mapping";
  for (const auto& [key, h] : space) {
    const std::string name = path + "." + key;
    if (!values.contains(key)) return name + " is in the config but not in " + theirs;
    const nlohmann::json& v = values[key];
    if (h.type == T::kNested) {
      if (auto m = mismatch_in(h.nested, v, name, theirs)) return m;
    } else if (h.type == T::kConst) {
      if (v != h.val)
        return name + " is " + h.val.dump() + " in the config but " + v.dump() + " in " + theirs;
    } else if (!in_space(h, v)) {
      return name + " is " + v.dump() + " in " + theirs + ", outside the config's " +
             type_name(h.type) + " hyperparameter";
    }
  }
  for (const auto& [key, v] : values.items())
    if (!space.count(key)) return path + "." + key + " is in " + theirs + " but not in the config";
  return std::nullopt;
}

}  // namespace

std::optional<std::string> hyperparameter_mismatch(const HyperparameterSpace& space,
                                                   const nlohmann::json& values,
                                                   const std::string& theirs) {
  return mismatch_in(space, values, "hyperparameters", theirs);
}

}  // namespace det::config
