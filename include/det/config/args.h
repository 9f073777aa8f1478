#pragma once
/// \file
/// Typed reading of config-shaped JSON: the `data:` section, a hyperparameter such as
/// `optimizer`, the arguments of one transform. An `Args` is a view of one JSON value with its
/// key path; every mistake is a ConfigError of one line naming the file position when it is
/// known, the key path, what was expected and what was found:
///
///     exp.yaml:14:9: hyperparameters.optimizer.lr: expected a number, found 'fast'
///
/// A trial gets such views from `TrialContext::hparam(name)` and `data()`:
///
///     config::Args opt = context.hparam("optimizer");
///     opt.check_keys({"name", "lr", "momentum"});
///     std::string name = opt.get_enum("name", "sgd", {"sgd", "adamw"});
///     double lr = opt.get<double>("lr", config::Range::greater_than(0));
///     double momentum = opt.get<double>("momentum", 0.9, config::Range{0, 1});

#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

namespace det::config {

/// Where each key path of a parsed config was written: "data.transforms.train[2].resize" ->
/// "exp.yaml:12:9", or "--config data.root=/x" for a value given on the command line. Paths are
/// the ones a trial sees: a hyperparameter written `{type: const, val: {lr: 0.1}}` records its
/// `lr` as "hyperparameters.optimizer.lr". Filled by the YAML parser; shared by every copy of
/// an ExperimentConfig.
class SourceMap {
 public:
  /// Records that `path` was written in `source` ("exp.yaml" or "--config k=v") at 1-based
  /// `line`:`column` (0 when there is no position, as for an override).
  void add(const std::string& path, const std::string& source, int line = 0, int column = 0);
  /// "exp.yaml:12:9" or "--config k=v" for `path`, else for its nearest recorded ancestor
  /// ("a.b[2].c" -> "a.b[2]" -> "a.b" -> "a"); "" when none is recorded.
  std::string find(const std::string& path) const;
  /// The number of recorded paths.
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    uint32_t source;  // index into sources_
    int line, column;
  };
  std::vector<std::string> sources_;
  std::unordered_map<std::string, Entry> entries_;
};

/// The values a number may take: `Range{0, 256}` (both ends included), `Range::at_least(1)`,
/// `Range::greater_than(0)`, `Range::at_most(1)`, or open ends set by hand.
struct Range {
  double min = -std::numeric_limits<double>::infinity();  ///< The lowest value.
  double max = std::numeric_limits<double>::infinity();   ///< The highest value.
  bool min_excluded = false;                              ///< min itself is not allowed.
  bool max_excluded = false;                              ///< max itself is not allowed.

  /// [v, +inf).
  static Range at_least(double v) { return {v}; }
  /// (v, +inf).
  static Range greater_than(double v) { return {v, std::numeric_limits<double>::infinity(), true}; }
  /// (-inf, v].
  static Range at_most(double v) { return {-std::numeric_limits<double>::infinity(), v}; }
  /// Whether `v` lies in the range (NaN never does).
  bool contains(double v) const;
  /// "from 0 to 256", ">= 1", "> 0", "<= 1", "in (0, 1]".
  std::string str() const;
};

/// A read-only view of one JSON value (usually a mapping) with its key path, which reads typed
/// values and names the file position and key path in every error. Copies are cheap and share
/// the value; a view stays valid after the object it was made from is gone.
///
/// Types for get/as: bool; any integer type (an integral float such as 3.0 is accepted, 1.5 and
/// values beyond the type are not); double, float; std::string; std::vector of those;
/// nlohmann::json (any value); Args (a mapping). A bool is not a number and a number is not a
/// string. A key that is absent or null is "missing": required gets fail, others give the
/// fallback. Looking up a key of a value that is neither a mapping nor missing fails with
/// "expected a mapping".
class Args {
 public:
  /// A view of `value`, named `path` in errors ("data", "hyperparameters.optimizer");
  /// `sources` (may be null) gives file positions.
  Args(nlohmann::json value, std::string path, std::shared_ptr<const SourceMap> sources = nullptr);

  /// The key path ("data.transforms.train[2]").
  const std::string& path() const { return path_; }
  /// The value viewed (null for a missing key).
  const nlohmann::json& json() const { return *value_; }
  /// Where the value was written (may be null); for views of derived values.
  const std::shared_ptr<const SourceMap>& sources() const { return sources_; }

  /// Absent or null.
  bool is_null() const { return value_->is_null(); }
  /// A mapping.
  bool is_object() const { return value_->is_object(); }
  /// A list.
  bool is_array() const { return value_->is_array(); }
  /// Whether this mapping has `key` with a non-null value.
  bool has(const std::string& key) const;
  /// The keys of a mapping in order (none when missing).
  std::vector<std::string> keys() const;
  /// The number of elements of a list or keys of a mapping (0 otherwise).
  size_t size() const { return value_->is_structured() ? value_->size() : 0; }

  /// The view of `key` (a missing key gives a null view whose errors point at this mapping).
  Args operator[](const std::string& key) const;
  /// The view of list element `index` (null beyond the end); fails unless this is a list or
  /// missing.
  Args operator[](size_t index) const;

  /// The value of required `key` as T; ConfigError if it is missing or mistyped.
  template <typename T>
  T get(const std::string& key) const {
    return (*this)[key].template as<T>();
  }
  /// The value of `key` as T, or `fallback` when it is missing.
  template <typename T>
  T get(const std::string& key, const T& fallback) const {
    return has(key) ? get<T>(key) : fallback;
  }
  /// The number (or each number of a list) at required `key`, checked against `range`.
  template <typename T>
  T get(const std::string& key, const Range& range) const {
    return (*this)[key].template as<T>(range);
  }
  /// The number at `key` checked against `range`, or `fallback` (unchecked) when missing.
  template <typename T>
  T get(const std::string& key, const T& fallback, const Range& range) const {
    return has(key) ? get<T>(key, range) : fallback;
  }

  /// The string at required `key`, one of `allowed` ("expected one of a, b, found 'c', did you
  /// mean ...").
  std::string get_enum(const std::string& key, const std::vector<std::string>& allowed) const;
  /// The string at `key`, one of `allowed`, or `fallback` when missing.
  std::string get_enum(const std::string& key, const std::string& fallback,
                       const std::vector<std::string>& allowed) const;

  /// The mapping at `key`, or an empty mapping (same path) when it is missing; ConfigError when
  /// it is something else.
  Args child(const std::string& key) const;

  /// Fails on the first key not in `known` ("unknown key 'lr_', did you mean 'lr'? (allowed
  /// here: ...)"); fails unless this is a mapping or missing. Returns *this for chaining.
  const Args& check_keys(const std::vector<std::string>& known) const;

  /// This value as T (see the class comment for the types).
  template <typename T>
  T as() const;
  /// This number (or each number of this list) as T, checked against `range`.
  template <typename T>
  T as(const Range& range) const;

  /// "exp.yaml:12:9: data.num_workers", or just the key path when no position is known.
  std::string where() const;
  /// What the value is, for messages: "'text'" (cut to a readable length), "1.5", "true",
  /// "a list", "a mapping", "nothing".
  std::string found() const;
  /// Throws ConfigError "<where>: <message>".
  [[noreturn]] void fail(const std::string& message) const;
  /// Throws ConfigError "<where>: expected <expected>, found <found()>".
  [[noreturn]] void fail_expected(const std::string& expected) const;

 private:
  Args(std::shared_ptr<const nlohmann::json> root, const nlohmann::json* value, std::string path,
       std::shared_ptr<const SourceMap> sources)
      : root_(std::move(root)),
        value_(value),
        path_(std::move(path)),
        sources_(std::move(sources)) {}

  bool as_bool() const;
  int64_t as_integer(int64_t min, int64_t max, const Range* range) const;
  double as_number(const Range* range) const;
  std::string as_string() const;
  Args as_mapping() const;
  void expect_list() const;

  template <typename T>
  struct IsVector : std::false_type {};
  template <typename E>
  struct IsVector<std::vector<E>> : std::true_type {};

  template <typename T>
  T convert(const Range* range) const;

  std::shared_ptr<const nlohmann::json> root_;  // keeps value_ alive
  const nlohmann::json* value_;
  std::string path_;
  std::shared_ptr<const SourceMap> sources_;
};

// ---- implementation ----

template <typename T>
T Args::convert(const Range* range) const {
  if constexpr (std::is_same_v<T, bool>) {
    return as_bool();
  } else if constexpr (std::is_integral_v<T>) {
    // Within T and within int64_t (a uint64_t above 2^63 - 1 is no config value).
    constexpr uint64_t kTypeMax = static_cast<uint64_t>(std::numeric_limits<T>::max());
    constexpr uint64_t kInt64Max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    constexpr int64_t kMax = static_cast<int64_t>(kTypeMax > kInt64Max ? kInt64Max : kTypeMax);
    return static_cast<T>(
        as_integer(static_cast<int64_t>(std::numeric_limits<T>::min()), kMax, range));
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<T>(as_number(range));
  } else if constexpr (std::is_same_v<T, std::string>) {
    return as_string();
  } else if constexpr (std::is_same_v<T, nlohmann::json>) {
    if (is_null()) fail_expected("a value");
    return *value_;
  } else if constexpr (std::is_same_v<T, Args>) {
    return as_mapping();
  } else if constexpr (IsVector<T>::value) {
    expect_list();
    T out;
    out.reserve(value_->size());
    for (size_t i = 0; i < value_->size(); ++i)
      out.push_back((*this)[i].template convert<typename T::value_type>(range));
    return out;
  } else {
    static_assert(IsVector<T>::value,
                  "Args::get<T>: T must be bool, an integer, a floating-point type, "
                  "std::string, std::vector of those, nlohmann::json or Args");
  }
}

template <typename T>
T Args::as() const {
  return convert<T>(nullptr);
}

template <typename T>
T Args::as(const Range& range) const {
  return convert<T>(&range);
}

}  // namespace det::config
