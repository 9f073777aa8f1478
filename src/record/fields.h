#pragma once
// Internal to the record layer: strict reading of a record's JSON fields. A missing required
// field, a wrong type or a value out of range throws E naming the record and the field path,
// with the offending value cut short.

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/util/strings.h"

namespace det::record::detail {

template <class E>
class Fields {
 public:
  /// `where`: the record (a file path, "a worker message"); `path`: the field path of `j` in it.
  Fields(const nlohmann::json& j, std::string where, std::string path = "")
      : j_(j), where_(std::move(where)), path_(std::move(path)) {
    if (!j_.is_object()) fail("", "an object");
  }

  bool has(const std::string& key) const { return j_.contains(key) && !j_[key].is_null(); }

  /// A required field.
  template <class T>
  T get(const std::string& key) const {
    if (!j_.contains(key)) throw E(where_ + ": field '" + name(key) + "' is missing");
    return convert<T>(key, j_[key]);
  }
  /// A required integer field within [lo, hi].
  int64_t get_int(const std::string& key, int64_t lo, int64_t hi) const {
    int64_t v = get<int64_t>(key);
    if (v < lo || v > hi) range_error(key, v, lo, hi);
    return v;
  }
  /// An optional field: absent or null gives nullopt.
  template <class T>
  std::optional<T> optional(const std::string& key) const {
    if (!has(key)) return std::nullopt;
    return convert<T>(key, j_[key]);
  }
  /// An optional integer field within [lo, hi].
  std::optional<int64_t> optional_int(const std::string& key, int64_t lo, int64_t hi) const {
    auto v = optional<int64_t>(key);
    if (v && (*v < lo || *v > hi)) range_error(key, *v, lo, hi);
    return v;
  }
  /// A field with a default when absent.
  template <class T>
  T value(const std::string& key, T fallback) const {
    return has(key) ? convert<T>(key, j_[key]) : fallback;
  }
  /// A nested object's fields.
  Fields child(const std::string& key) const {
    if (!j_.contains(key)) throw E(where_ + ": field '" + name(key) + "' is missing");
    return Fields(j_[key], where_, name(key));
  }
  /// Elements of an array field (absent: empty).
  const nlohmann::json& array(const std::string& key) const {
    static const nlohmann::json empty = nlohmann::json::array();
    if (!has(key)) return empty;
    if (!j_[key].is_array()) fail(key, "a list");
    return j_[key];
  }
  const nlohmann::json& raw() const { return j_; }
  std::string name(const std::string& key) const {
    return path_.empty() ? key : key.empty() ? path_ : path_ + "." + key;
  }
  [[noreturn]] void fail(const std::string& key, const std::string& expected) const {
    const nlohmann::json& v = key.empty() ? j_ : j_[key];
    throw E(where_ + ": field '" + name(key) + "' must be " + expected + ", found " +
            util::shorten(v.dump(), 60));
  }

 private:
  [[noreturn]] void range_error(const std::string& key, int64_t v, int64_t lo, int64_t hi) const {
    throw E(where_ + ": field '" + name(key) + "' is " + std::to_string(v) + ", outside " +
            std::to_string(lo) + ".." + std::to_string(hi));
  }
  template <class T>
  T convert(const std::string& key, const nlohmann::json& v) const {
    if constexpr (std::is_same_v<T, nlohmann::json>) {
      return v;
    } else if constexpr (std::is_same_v<T, bool>) {
      if (!v.is_boolean()) fail(key, "true or false");
      return v.get<bool>();
    } else if constexpr (std::is_integral_v<T>) {
      // Integers only: 1.5, 1e30 or "3" are refused, not truncated.
      if (!v.is_number_integer()) fail(key, "an integer");
      if (v.is_number_unsigned() &&
          v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max()))
        fail(key, "an integer up to " + std::to_string(std::numeric_limits<T>::max()));
      if (v.is_number_integer() && !v.is_number_unsigned()) {
        int64_t x = v.get<int64_t>();
        if (x < static_cast<int64_t>(std::numeric_limits<T>::min()) ||
            (x > 0 &&
             static_cast<uint64_t>(x) > static_cast<uint64_t>(std::numeric_limits<T>::max())))
          fail(key, "an integer in the range of its type");
      }
      return v.get<T>();
    } else if constexpr (std::is_floating_point_v<T>) {
      if (!v.is_number()) fail(key, "a number");
      return v.get<T>();
    } else if constexpr (std::is_same_v<T, std::string>) {
      if (!v.is_string()) fail(key, "a string");
      return v.get<std::string>();
    } else {
      static_assert(sizeof(T) == 0, "unsupported field type");
    }
  }

  const nlohmann::json& j_;
  std::string where_, path_;
};

}  // namespace det::record::detail
