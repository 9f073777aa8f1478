#include "det/config/experiment_config.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/strings.h"

namespace det::config {
namespace fs = std::filesystem;

std::string unit_name(Unit unit) {
  switch (unit) {
    case Unit::kBatches:
      return "batches";
    case Unit::kRecords:
      return "records";
    case Unit::kEpochs:
      return "epochs";
  }
  return "?";
}

fs::path CheckpointStorageConfig::root() const {
  fs::path root = host_path.empty() ? fs::path("runs") : fs::path(host_path);
  if (!storage_path.empty()) root /= storage_path;
  return root;
}

int64_t to_batches(const Length& length, int64_t global_batch_size, int64_t batches_per_epoch) {
  switch (length.unit) {
    case Unit::kBatches:
      return length.value;
    case Unit::kRecords:
      return std::max<int64_t>(length.value / std::max<int64_t>(global_batch_size, 1), 1);
    case Unit::kEpochs:
      return length.value * batches_per_epoch;
  }
  return length.value;
}

namespace {

// ---- scalar typing (YAML 1.2 core schema) ----

bool parse_int(const std::string& s, int64_t& out) {
  if (s.empty()) return false;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || *end != '\0') return false;
  out = v;
  return true;
}

bool parse_double(const std::string& s, double& out) {
  if (s == ".inf" || s == ".Inf" || s == ".INF" || s == "+.inf") return out = INFINITY, true;
  if (s == "-.inf" || s == "-.Inf" || s == "-.INF") return out = -INFINITY, true;
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return out = NAN, true;
  if (s.empty() || s.find_first_of("0123456789") == std::string::npos) return false;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || *end != '\0') return false;
  // strtod accepts hex and "inf"/"nan" spellings YAML does not: reject them.
  if (s.find_first_of("xXiInN") != std::string::npos) return false;
  out = v;
  return true;
}

bool parse_bool(const std::string& s, bool& out) {
  if (s == "true" || s == "True" || s == "TRUE") return out = true, true;
  if (s == "false" || s == "False" || s == "FALSE") return out = false, true;
  return false;
}

bool is_null_scalar(const std::string& s) {
  return s == "~" || s == "null" || s == "Null" || s == "NULL" || s.empty();
}

nlohmann::json yaml_to_json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted: always a string
      int64_t i;
      double d;
      bool b;
      if (parse_int(s, i)) return i;
      if (parse_double(s, d)) return d;
      if (parse_bool(s, b)) return b;
      if (is_null_scalar(s)) return nullptr;
      return s;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json a = nlohmann::json::array();
      for (const auto& item : n) a.push_back(yaml_to_json(item));
      return a;
    }
    case YAML::NodeType::Map: {
      nlohmann::json o = nlohmann::json::object();
      for (const auto& kv : n) o[kv.first.Scalar()] = yaml_to_json(kv.second);
      return o;
    }
  }
  return nullptr;
}

// ---- a YAML node with its key path, for error messages ----

struct Source {
  std::string file;
  std::map<std::string, std::string> overrides;  // key path -> "key=value" as given
};

// A key path is shown whole unless a user key makes it absurdly long.
constexpr size_t kMaxPathChars = 200;

class Node {
 public:
  Node(YAML::Node node, std::string path, const Source* src,
       YAML::Mark fallback = YAML::Mark::null_mark())
      : node_(std::move(node)), path_(std::move(path)), src_(src), fallback_(fallback) {}

  const YAML::Node& yaml() const { return node_; }
  const std::string& path() const { return path_; }
  bool is_map() const { return node_.IsMap(); }
  bool is_null() const { return !node_.IsDefined() || node_.IsNull(); }
  bool is_scalar() const { return node_.IsScalar(); }
  bool is_seq() const { return node_.IsSequence(); }

  // The --config override that set this value (or one of its parents), or "".
  std::string override_spec() const {
    if (src_->overrides.empty()) return "";
    for (std::string p = path_;;) {
      auto it = src_->overrides.find(p);
      if (it != src_->overrides.end())
        return "--config " + util::shorten(it->second, kMaxPathChars);
      auto dot = p.rfind('.');
      if (dot == std::string::npos) return "";
      p = p.substr(0, dot);
    }
  }

  // "exp.yaml:3:5", or "--config k=v" for a value set on the command line.
  std::string location() const {
    std::string spec = override_spec();
    if (!spec.empty()) return spec;
    auto m = mark();  // a missing key has no position of its own: its parent's
    std::string loc = src_->file;
    if (m.line >= 0) loc += ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
    return loc;
  }

  // Records this value's location under `logical` (the path a trial sees).
  void record(SourceMap& map, const std::string& logical) const {
    std::string spec = override_spec();
    auto m = mark();
    if (!spec.empty())
      map.add(logical, spec);
    else
      map.add(logical, src_->file, m.line >= 0 ? m.line + 1 : 0, m.line >= 0 ? m.column + 1 : 0);
  }

  std::string where() const {
    return location() + ": " +
           (path_.empty() ? "(top level)" : util::shorten(path_, kMaxPathChars));
  }

  std::string found() const {
    if (!node_.IsDefined() || node_.IsNull()) return "nothing";
    if (node_.IsMap()) return "a mapping";
    if (node_.IsSequence()) return "a list";
    return util::quote(node_.Scalar());
  }

  [[noreturn]] void fail(const std::string& expected) const {
    throw ConfigError(where() + ": expected " + expected + ", found " + found());
  }
  [[noreturn]] void fail_msg(const std::string& msg) const {
    throw ConfigError(where() + ": " + msg);
  }

  Node child(const std::string& key) const {
    // A missing key comes back from yaml-cpp as an "invalid" node on which most calls throw
    // (and assigning to a YAML::Node writes into the tree): build a plain undefined node instead.
    auto value = [&]() -> YAML::Node {
      const YAML::Node& self = node_;  // const lookup: never inserts the key
      if (self.IsMap()) {
        YAML::Node v = self[key];
        if (v.IsDefined()) return v;
      }
      return YAML::Node(YAML::NodeType::Undefined);
    };
    return Node(value(), path_.empty() ? key : path_ + "." + key, src_, mark());
  }
  Node item(size_t i) const {
    return Node(node_[i], path_ + "[" + std::to_string(i) + "]", src_, mark());
  }
  YAML::Mark mark() const {
    if (!node_.IsDefined()) return fallback_;
    auto m = node_.Mark();
    return m.is_null() ? fallback_ : m;
  }
  bool has(const std::string& key) const {
    return node_.IsMap() && node_[key].IsDefined() && !node_[key].IsNull();
  }

  void expect_map() const {
    if (!node_.IsMap()) fail("a mapping");
  }

  /// Rejects keys not in `known`, suggesting the closest one.
  void check_keys(const std::vector<std::string>& known) const {
    expect_map();
    for (const auto& kv : node_) {
      std::string key = kv.first.Scalar();
      bool ok = false;
      for (const auto& k : known) ok = ok || k == key;
      if (!ok) {
        Node key_node(kv.first, path_.empty() ? key : path_ + "." + key, src_);
        key_node.fail_msg("unknown key " + util::quote(key) + util::did_you_mean(key, known) +
                          " (allowed here: " + util::join(known, ", ") + ")");
      }
    }
  }

  std::string as_string() const {
    if (!node_.IsScalar()) fail("a string");
    return node_.Scalar();
  }
  int64_t as_int(const Range& range = {}) const {
    const std::string expected = range.str().empty() ? "an integer" : "an integer " + range.str();
    int64_t v;
    if (!node_.IsScalar() || !parse_int(node_.Scalar(), v)) fail(expected);
    if (!range.contains(static_cast<double>(v))) fail(expected);
    return v;
  }
  double as_double(const Range& range = {}) const {
    const std::string expected = range.str().empty() ? "a number" : "a number " + range.str();
    double d;
    int64_t i;
    if (node_.IsScalar() && parse_int(node_.Scalar(), i)) {
      d = static_cast<double>(i);
    } else if (!node_.IsScalar() || !parse_double(node_.Scalar(), d)) {
      fail(expected);
    }
    // .inf and .nan are no setting of an experiment.
    if (!std::isfinite(d) || !range.contains(d)) fail(expected);
    return d;
  }
  bool as_bool() const {
    bool b;
    if (!node_.IsScalar() || !parse_bool(node_.Scalar(), b)) fail("true or false");
    return b;
  }
  std::string as_enum(const std::vector<std::string>& allowed) const {
    std::string s = node_.IsScalar() ? node_.Scalar() : "";
    for (const auto& a : allowed)
      if (a == s) return s;
    throw ConfigError(where() + ": expected one of " + util::join(allowed, ", ") + ", found " +
                      found() + util::did_you_mean(s, allowed));
  }

 private:
  YAML::Node node_;
  std::string path_;
  const Source* src_;
  YAML::Mark fallback_;
};

// ---- what a file may hold: no cycles, a bounded expansion, bounded depth, unique keys ----

// Walks the document as the parser will see it, aliases expanded, before anything converts it:
// every later pass then visits at most kMaxConfigValues values at most kMaxConfigDepth deep.
class TreeCheck {
 public:
  explicit TreeCheck(const Source& src) : src_(src) {}

  void run(const YAML::Node& root) {
    path_.clear();
    visit(root);
  }

 private:
  void visit(const YAML::Node& n) {
    if (++values_ > kMaxConfigValues)
      fail(
          n,
          "the config holds more than " + std::to_string(kMaxConfigValues) +
              " values once its YAML aliases are expanded (aliases of aliases grow exponentially); "
              "write the values out or shrink the lists");
    if (!n.IsMap() && !n.IsSequence()) return;
    for (const auto& a : ancestors_)
      if (a.is(n))
        fail(n,
             "a YAML alias refers to a list or mapping that contains it, which would never end; "
             "point the alias at another node");
    if (static_cast<int>(ancestors_.size()) >= kMaxConfigDepth)
      fail(n, "lists and mappings nest deeper than " + std::to_string(kMaxConfigDepth) +
                  " levels; a config needs far fewer");
    ancestors_.push_back(n);
    const size_t len = path_.size();
    if (n.IsMap()) {
      std::unordered_map<std::string, int> first_line;
      for (const auto& kv : n) {
        if (!kv.first.IsScalar())
          fail(kv.first, "a key must be plain text, found " +
                             std::string(kv.first.IsMap()        ? "a mapping"
                                         : kv.first.IsSequence() ? "a list"
                                                                 : "nothing"));
        const std::string& key = kv.first.Scalar();
        path_ += (len == 0 ? "" : ".") + key;
        auto [it, inserted] = first_line.emplace(key, kv.first.Mark().line + 1);
        if (!inserted)
          fail(kv.first, "duplicate key " + util::quote(key) + " (first at line " +
                             std::to_string(it->second) + "); keep one of them");
        visit(kv.second);
        path_.resize(len);
      }
    } else {
      size_t i = 0;
      for (const auto& item : n) {
        path_ += "[" + std::to_string(i++) + "]";
        visit(item);
        path_.resize(len);
      }
    }
    ancestors_.pop_back();
  }

  [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const {
    Node(n, path_, &src_).fail_msg(msg);
  }

  const Source& src_;
  int64_t values_ = 0;
  std::vector<YAML::Node> ancestors_;
  std::string path_;
};

// ---- where values were written, under the paths a trial sees ----

// Records `n` and everything inside it under `logical` (its path as the trial sees it).
void record_tree(SourceMap& map, const std::string& logical, const Node& n) {
  n.record(map, logical);
  if (n.is_map()) {
    for (const auto& kv : n.yaml()) {
      const std::string key = kv.first.Scalar();
      record_tree(map, logical + "." + key, n.child(key));
    }
  } else if (n.is_seq()) {
    for (size_t i = 0; i < n.yaml().size(); ++i)
      record_tree(map, logical + "[" + std::to_string(i) + "]", n.item(i));
  }
}

// ---- bounds (docs/configs.md): generous, but no value that would exhaust a machine ----

constexpr double kMaxLength = 1e12;  // batches, records or epochs of any length or period
const Range kLengthRange{1, kMaxLength};
const Range kPeriodRange{0, kMaxLength};
const Range kMaxTrialsRange{1, 100'000};
const Range kMaxConcurrentRange{0, 10'000};
const Range kDivisorRange{1, 100, /*min_excluded=*/true};
const Range kRungsRange{1, 32};
constexpr double kMaxRungFactor = 1e9;  // divisor^(rungs - 1): the widest rung ratio
constexpr int64_t kMaxGridPoints = 100'000;
const Range kCountRange{1, 100'000};
const Range kIntHparamRange{-1e15, 1e15};
const Range kSchedulingUnitRange{1, 1'000'000};
const Range kMaxRestartsRange{0, 1'000};
const Range kSlotsPerTrialRange{1, 4'096};
const Range kMaxSlotsRange{0, 65'536};
const Range kWeightRange{0, 1e6};
const Range kPriorityRange{1, 99};
const Range kSeedRange{0, 4294967295.0};
const Range kAggregationRange{1, 10'000};
const Range kSaveCountRange{0, 1'000};
const Range kBatchIndexRange{0, kMaxLength};
const Range kTrialIdRange{0, 1e15};

// ---- section parsers ----

Length parse_length(const Node& n, const Range& range) {
  if (n.is_scalar()) return {Unit::kBatches, n.as_int(range)};  // a bare number is batches
  const std::string expected = "{batches: n}, {records: n} or {epochs: n}";
  if (n.is_map() && n.yaml().size() > 1) {
    std::vector<std::string> keys;
    for (const auto& kv : n.yaml()) keys.push_back(util::shorten(kv.first.Scalar()));
    n.fail_msg("a length takes exactly one of batches, records or epochs, found " +
               util::join(keys, ", "));
  }
  if (!n.is_map() || n.yaml().size() != 1) n.fail(expected);
  n.check_keys({"batches", "records", "epochs"});
  for (const auto& [key, unit] : std::vector<std::pair<std::string, Unit>>{
           {"batches", Unit::kBatches}, {"records", Unit::kRecords}, {"epochs", Unit::kEpochs}}) {
    if (n.yaml()[key].IsDefined()) return {unit, n.child(key).as_int(range)};
  }
  n.fail(expected);
}

Hyperparameter parse_hparam(const Node& n, const std::string& logical, SourceMap& map);

HyperparameterSpace parse_hparam_space(const Node& n, const std::string& logical, SourceMap& map) {
  HyperparameterSpace space;
  if (n.is_null()) return space;
  n.expect_map();
  for (const auto& kv : n.yaml()) {
    std::string key = kv.first.Scalar();
    space[key] = parse_hparam(n.child(key), logical + "." + key, map);
  }
  return space;
}

Hyperparameter parse_hparam(const Node& n, const std::string& logical, SourceMap& map) {
  using T = Hyperparameter::Type;
  Hyperparameter hp;
  n.record(map, logical);
  if (!n.is_map()) {  // a scalar or list is a constant
    hp.type = T::kConst;
    hp.val = yaml_to_json(n.yaml());
    record_tree(map, logical, n);
    return hp;
  }
  if (!n.yaml()["type"].IsDefined()) {  // a map without `type` nests hyperparameters
    hp.type = T::kNested;
    hp.nested = parse_hparam_space(n, logical, map);
    return hp;
  }
  std::string type = n.child("type").as_enum({"const", "int", "double", "log", "categorical"});
  auto range = [&](bool integer) {
    if (!n.has("minval")) n.fail_msg("a '" + type + "' hyperparameter needs 'minval'");
    if (!n.has("maxval")) n.fail_msg("a '" + type + "' hyperparameter needs 'maxval'");
    if (integer) {
      hp.minval = static_cast<double>(n.child("minval").as_int(kIntHparamRange));
      hp.maxval = static_cast<double>(n.child("maxval").as_int(kIntHparamRange));
    } else {
      hp.minval = n.child("minval").as_double();
      hp.maxval = n.child("maxval").as_double();
    }
    if (!(hp.minval < hp.maxval))
      n.child("maxval").fail("a value greater than minval (" +
                             util::shorten(n.child("minval").yaml().Scalar()) + ")");
    if (!integer && !std::isfinite(hp.maxval - hp.minval))
      n.child("maxval").fail_msg("maxval - minval overflows a double; give a narrower range");
    if (n.has("count")) hp.count = static_cast<int>(n.child("count").as_int(kCountRange));
  };
  if (type == "const") {
    n.check_keys({"type", "val"});
    if (!n.yaml()["val"].IsDefined()) n.fail_msg("a 'const' hyperparameter needs 'val'");
    hp.type = T::kConst;
    hp.val = yaml_to_json(n.yaml()["val"]);
    record_tree(map, logical, n.child("val"));  // the trial sees the value itself
  } else if (type == "int") {
    n.check_keys({"type", "minval", "maxval", "count"});
    hp.type = T::kInt;
    range(true);
  } else if (type == "double") {
    n.check_keys({"type", "minval", "maxval", "count"});
    hp.type = T::kDouble;
    range(false);
  } else if (type == "log") {
    n.check_keys({"type", "minval", "maxval", "base", "count"});
    hp.type = T::kLog;
    range(false);
    if (!n.has("base"))
      n.fail_msg("a 'log' hyperparameter needs 'base' (minval and maxval are exponents)");
    hp.base = n.child("base").as_double(Range::greater_than(0));
    if (!std::isfinite(std::pow(hp.base, hp.maxval)) ||
        !std::isfinite(std::pow(hp.base, hp.minval)))
      n.child("maxval").fail_msg(
          "base^maxval or base^minval overflows a double; give smaller exponents");
  } else {
    n.check_keys({"type", "vals"});
    hp.type = T::kCategorical;
    Node vals = n.child("vals");
    if (!vals.is_seq() || vals.yaml().size() == 0) vals.fail("a non-empty list");
    for (const auto& v : vals.yaml()) hp.vals.push_back(yaml_to_json(v));
  }
  return hp;
}

// The most grid points the space could give (the grid searcher caps int counts at the range).
double grid_points(const HyperparameterSpace& space) {
  double points = 1;
  for (const auto& [name, hp] : space) {
    switch (hp.type) {
      case Hyperparameter::Type::kConst:
        break;
      case Hyperparameter::Type::kInt:
        points *= std::min<double>(hp.count.value_or(1), hp.maxval - hp.minval + 1);
        break;
      case Hyperparameter::Type::kDouble:
      case Hyperparameter::Type::kLog:
        points *= hp.count.value_or(1);
        break;
      case Hyperparameter::Type::kCategorical:
        points *= static_cast<double>(hp.vals.size());
        break;
      case Hyperparameter::Type::kNested:
        points *= grid_points(hp.nested);
        break;
    }
  }
  return points;
}

// A count held in a double, as digits ("1000000", or "1e+30" when it is huge).
std::string count_text(double v) {
  if (v < 1e18) return std::to_string(static_cast<int64_t>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// divisor^(rungs - 1) is the ratio of the longest rung to the shortest; past kMaxRungFactor the
// searcher's integer arithmetic would overflow and the short rungs would be empty.
void check_rung_factor(const Node& n, double divisor, int64_t rungs) {
  const double factor = std::pow(divisor, static_cast<double>(rungs - 1));
  if (!(factor <= kMaxRungFactor))
    n.fail_msg("divisor^(rungs - 1) = " + count_text(factor) +
               " is more than 1000000000; use fewer rungs or a smaller divisor");
}

SearcherConfig parse_searcher(const Node& n) {
  SearcherConfig s;
  if (n.is_null())
    n.fail(
        "a searcher mapping (e.g. {name: single, metric: validation_loss, max_length: {epochs: "
        "1}})");
  n.expect_map();
  if (!n.has("name"))
    n.fail_msg("the searcher needs a 'name' (single, random, grid, async_halving, adaptive_asha)");
  s.name = n.child("name").as_enum(
      {"single", "random", "grid", "async_halving", "adaptive_asha", "custom"});
  std::vector<std::string> common = {
      "name",      "metric", "smaller_is_better", "source_trial_id", "source_checkpoint_uuid",
      "max_length"};
  std::vector<std::string> known = common;
  auto add = [&](std::initializer_list<const char*> keys) {
    for (auto* k : keys) known.push_back(k);
  };
  if (s.name == "random") add({"max_trials", "max_concurrent_trials"});
  if (s.name == "grid") add({"max_concurrent_trials"});
  if (s.name == "async_halving")
    add({"num_rungs", "max_trials", "divisor", "max_concurrent_trials", "stop_once"});
  if (s.name == "adaptive_asha")
    add({"max_trials", "mode", "divisor", "max_rungs", "max_concurrent_trials", "stop_once",
         "bracket_rungs"});
  n.check_keys(known);
  if (!n.has("metric"))
    n.fail_msg(
        "the searcher needs a 'metric' (the validation metric to optimise, e.g. validation_loss)");
  s.metric = n.child("metric").as_string();
  if (n.has("smaller_is_better")) s.smaller_is_better = n.child("smaller_is_better").as_bool();
  if (n.has("source_trial_id"))
    s.source_trial_id = n.child("source_trial_id").as_int(kTrialIdRange);
  if (n.has("source_checkpoint_uuid"))
    s.source_checkpoint_uuid = n.child("source_checkpoint_uuid").as_string();
  if (!n.has("max_length"))
    n.fail_msg("the searcher needs 'max_length' ({batches: n}, {records: n} or {epochs: n})");
  s.max_length = parse_length(n.child("max_length"), kLengthRange);
  if (s.name == "single") {
    s.max_trials = 1;
    s.max_concurrent_trials = 1;
  } else if (s.name != "grid") {
    if (!n.has("max_trials")) n.fail_msg("the '" + s.name + "' searcher needs 'max_trials'");
    s.max_trials = static_cast<int>(n.child("max_trials").as_int(kMaxTrialsRange));
  }
  if (n.has("max_concurrent_trials"))
    s.max_concurrent_trials =
        static_cast<int>(n.child("max_concurrent_trials").as_int(kMaxConcurrentRange));
  if (n.has("mode")) s.mode = n.child("mode").as_enum({"aggressive", "standard", "conservative"});
  if (n.has("divisor")) s.divisor = n.child("divisor").as_double(kDivisorRange);
  if (n.has("max_rungs")) s.max_rungs = static_cast<int>(n.child("max_rungs").as_int(kRungsRange));
  if (s.name == "async_halving") {
    if (!n.has("num_rungs")) n.fail_msg("the 'async_halving' searcher needs 'num_rungs'");
    s.num_rungs = static_cast<int>(n.child("num_rungs").as_int(kRungsRange));
    check_rung_factor(n.child("num_rungs"), s.divisor, s.num_rungs);
  }
  if (n.has("stop_once")) s.stop_once = n.child("stop_once").as_bool();
  if (n.has("bracket_rungs")) {
    Node br = n.child("bracket_rungs");
    if (!br.is_seq()) br.fail("a list of integers");
    if (br.yaml().size() > static_cast<size_t>(kRungsRange.max)) br.fail("at most 32 brackets");
    for (size_t i = 0; i < br.yaml().size(); ++i) {
      s.bracket_rungs.push_back(static_cast<int>(br.item(i).as_int(kRungsRange)));
      check_rung_factor(br.item(i), s.divisor, s.bracket_rungs.back());
    }
  }
  return s;
}

// The storage_path (relative to host_path) made canonical, or a ConfigError when it leaves
// host_path: `..` after normalisation, or an absolute path outside host_path.
std::string contained_storage_path(const Node& n, const std::string& host_path) {
  const std::string given = n.as_string();
  const std::string fix =
      "give a sub-directory of host_path (e.g. 'experiments/mnist'), or change host_path itself";
  fs::path sp = fs::path(given).lexically_normal();
  if (sp.is_absolute()) {
    // Determined requires an absolute storage_path to lie under host_path.
    fs::path host = fs::absolute(fs::path(host_path)).lexically_normal();
    fs::path rel = sp.lexically_relative(host);
    if (rel.empty() || *rel.begin() == "..")
      n.fail_msg(util::quote(given) + " is not inside host_path " + util::quote(host_path) + "; " +
                 fix);
    sp = rel;
  }
  if (!sp.empty() && *sp.begin() == "..")
    n.fail_msg(util::quote(given) + " leaves host_path " + util::quote(host_path) + "; " + fix);
  std::string out = sp.string();
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out == "." ? "" : out;
}

CheckpointStorageConfig parse_storage(const Node& n) {
  CheckpointStorageConfig c;
  n.expect_map();
  std::string type = n.has("type")
                         ? n.child("type").as_enum({"shared_fs", "directory", "s3", "gcs", "azure"})
                         : "shared_fs";
  if (type == "s3" || type == "gcs" || type == "azure")
    n.child("type").fail_msg(
        "checkpoint storage type '" + type +
        "' is not available in det; use shared_fs (host_path) or directory (container_path)");
  c.type = type;
  std::vector<std::string> counts = {"save_experiment_best", "save_trial_best",
                                     "save_trial_latest"};
  std::vector<std::string> known = {"type"};
  known.insert(known.end(), counts.begin(), counts.end());
  if (type == "shared_fs") {
    for (auto* k : {"host_path", "storage_path", "propagation", "container_path", "checkpoint_path",
                    "tensorboard_path"})
      known.push_back(k);
  } else {
    known.push_back("container_path");
  }
  n.check_keys(known);
  if (type == "shared_fs") {
    if (!n.has("host_path"))
      n.fail_msg("shared_fs checkpoint storage needs 'host_path' (a directory)");
    c.host_path = n.child("host_path").as_string();
    if (n.has("storage_path"))
      c.storage_path = contained_storage_path(n.child("storage_path"), c.host_path);
  } else {
    if (!n.has("container_path")) n.fail_msg("directory checkpoint storage needs 'container_path'");
    c.host_path = n.child("container_path").as_string();
  }
  if (n.has("save_experiment_best"))
    c.save_experiment_best =
        static_cast<int>(n.child("save_experiment_best").as_int(kSaveCountRange));
  if (n.has("save_trial_best"))
    c.save_trial_best = static_cast<int>(n.child("save_trial_best").as_int(kSaveCountRange));
  if (n.has("save_trial_latest"))
    c.save_trial_latest = static_cast<int>(n.child("save_trial_latest").as_int(kSaveCountRange));
  return c;
}

// Loud, not silent: every setting det parses or accepts but does not implement is either a
// ConfigError (det would do something other than what it asks) or a notice (it has no meaning
// outside a Determined cluster, or Determined's PyTorchTrial ignores it too). One table.
void check_implemented(const Node& root, ExperimentConfig& c) {
  struct Rule {
    const char* path;
    bool error;                                // else a notice
    std::function<bool(const Node&)> applies;  // given the node at `path`
    const char* why;
  };
  auto any = [](const Node&) { return true; };
  auto is_true = [](const Node& n) { return n.is_scalar() && n.as_bool(); };
  const std::vector<Rule> rules = {
      {"optimizations.mixed_precision", true, [](const Node& n) { return n.as_string() != "O0"; },
       "mixed precision is not implemented in det yet; set O0 (FP32) or remove it"},
      {"optimizations.gradient_compression", true, is_true,
       "gradient compression (fp16 allreduce) is not implemented; set false or remove it"},
      {"profiling.enabled", true, is_true,
       "det has no profiler; set false or remove the profiling section"},
      {"checkpoint_storage.save_experiment_best", true,
       [](const Node& n) { return n.as_int() > 0; },
       "only save_trial_best and save_trial_latest are implemented; set 0 or remove it"},
      {"searcher.source_trial_id", true, any,
       "warm starting from another trial is not implemented; remove it"},
      {"searcher.source_checkpoint_uuid", true, any,
       "warm starting from a checkpoint is not implemented; remove it"},
      {"records_per_epoch", false, any,
       "ignored, as by Determined's PyTorchTrial: an epoch is the loader's length"},
      {"optimizations.average_training_metrics", false, [](const Node& n) { return !n.as_bool(); },
       "ignored, as by Determined's PyTorchTrial: training metrics are always averaged across "
       "ranks"},
      {"optimizations.tensor_fusion_threshold", false, any,
       "Horovod only; det averages gradients over c10d"},
      {"optimizations.tensor_fusion_cycle_time", false, any,
       "Horovod only; det averages gradients over c10d"},
      {"optimizations.auto_tune_tensor_fusion", false, any,
       "Horovod only; det averages gradients over c10d"},
      {"optimizations.grad_updates_size_file", false, any,
       "Horovod only; det averages gradients over c10d"},
      {"resources.weight", false, any, "a cluster scheduler's setting; det-run uses --slots"},
      {"resources.priority", false, any, "a cluster scheduler's setting; det-run uses --slots"},
      {"resources.resource_pool", false, any, "a cluster setting; ignored"},
      {"resources.shm_size", false, any, "a container setting; ignored"},
      {"resources.is_single_node", false, any, "a cluster setting; ignored"},
      {"resources.devices", false, any, "a container setting; ignored"},
      {"resources.native_parallel", false, any, "a cluster setting; ignored"},
      {"resources.agent_label", false, any, "a cluster setting; ignored"},
      {"checkpoint_storage.propagation", false, any, "a container setting; ignored"},
      {"checkpoint_storage.container_path", false, any,
       "a container setting; det writes under host_path"},
      {"checkpoint_storage.checkpoint_path", false, any,
       "a container setting; det writes under host_path"},
      {"checkpoint_storage.tensorboard_path", false, any, "a container setting; ignored"},
      {"environment", false, any,
       "container images and variables are a cluster's; det runs in this environment"},
      {"bind_mounts", false, any, "a container setting; ignored"},
      {"workspace", false, any, "a Determined master's setting; ignored"},
      {"project", false, any, "a Determined master's setting; ignored"},
      {"log_policies", false, any, "a Determined master's setting; ignored"},
      {"retention_policy", false, any, "a Determined master's setting; ignored"},
      {"integrations", false, any, "a Determined master's setting; ignored"},
      {"slurm", false, any, "a Determined cluster's setting; ignored"},
      {"pbs", false, any, "a Determined cluster's setting; ignored"},
      {"security", false, any, "a Determined master's setting; ignored"},
      {"preemption_timeout", false, any, "a Determined cluster's setting; ignored"},
      {"tensorboard_storage", false, any, "ignored; det writes no TensorBoard files yet"},
  };
  for (const auto& rule : rules) {
    // Walked by recursion, not assignment: assigning a YAML::Node writes into the document.
    const auto parts = util::split(rule.path, '.');
    std::function<void(const Node&, size_t)> visit = [&](const Node& n, size_t i) {
      if (i < parts.size()) {
        if (n.has(parts[i])) visit(n.child(parts[i]), i + 1);
        return;
      }
      if (!rule.applies(n)) return;
      if (rule.error) n.fail_msg(std::string("not implemented: ") + rule.why);
      c.notices.push_back(n.where() + ": " + rule.why);
    };
    visit(root, 0);
  }
  if (c.searcher.name == "custom")
    root.child("searcher")
        .child("name")
        .fail_msg(
            "not implemented: det has no custom searchers; use single, random, grid, "
            "async_halving or adaptive_asha");
}

ExperimentConfig parse_root(const Node& root, const std::string& source) {
  ExperimentConfig c;
  c.source = source;
  auto map = std::make_shared<SourceMap>();
  if (!root.is_map()) root.fail("a mapping of experiment settings");
  root.check_keys({"name",
                   "description",
                   "labels",
                   "data",
                   "entrypoint",
                   "hyperparameters",
                   "searcher",
                   "records_per_epoch",
                   "min_validation_period",
                   "min_checkpoint_period",
                   "scheduling_unit",
                   "perform_initial_validation",
                   "checkpoint_policy",
                   "checkpoint_storage",
                   "max_restarts",
                   "resources",
                   "reproducibility",
                   "optimizations",
                   "profiling",
                   "environment",
                   "bind_mounts",
                   "debug",
                   "workspace",
                   "project",
                   "log_policies",
                   "retention_policy",
                   "integrations",
                   "slurm",
                   "pbs",
                   "security",
                   "tensorboard_storage",
                   "preemption_timeout"});
  if (root.has("name")) c.name = root.child("name").as_string();
  if (root.has("description")) c.description = root.child("description").as_string();
  if (root.has("labels")) {
    Node l = root.child("labels");
    if (!l.is_seq()) l.fail("a list of strings");
    for (size_t i = 0; i < l.yaml().size(); ++i) c.labels.push_back(l.item(i).as_string());
  }
  if (root.has("data")) {
    root.child("data").expect_map();
    c.data = yaml_to_json(root.child("data").yaml());
    record_tree(*map, "data", root.child("data"));
  }
  if (root.has("entrypoint")) {
    Node e = root.child("entrypoint");
    if (e.is_seq()) {
      std::vector<std::string> parts;
      for (size_t i = 0; i < e.yaml().size(); ++i) parts.push_back(e.item(i).as_string());
      c.entrypoint = util::join(parts, " ");
    } else {
      c.entrypoint = e.as_string();
    }
  }
  c.hyperparameters = parse_hparam_space(root.child("hyperparameters"), "hyperparameters", *map);
  c.searcher = parse_searcher(root.child("searcher"));
  if (c.searcher.name == "grid") {
    const double points = grid_points(c.hyperparameters);
    if (points > static_cast<double>(kMaxGridPoints))
      root.child("hyperparameters")
          .fail_msg("the grid has " + count_text(points) + " points, more than " +
                    std::to_string(kMaxGridPoints) +
                    "; lower the counts or use the random or adaptive_asha searcher");
  }
  if (root.has("records_per_epoch"))
    c.records_per_epoch = root.child("records_per_epoch").as_int(kPeriodRange);
  if (root.has("min_validation_period"))
    c.min_validation_period = parse_length(root.child("min_validation_period"), kPeriodRange);
  if (root.has("min_checkpoint_period"))
    c.min_checkpoint_period = parse_length(root.child("min_checkpoint_period"), kPeriodRange);
  if (root.has("scheduling_unit"))
    c.scheduling_unit = root.child("scheduling_unit").as_int(kSchedulingUnitRange);
  if (root.has("perform_initial_validation"))
    c.perform_initial_validation = root.child("perform_initial_validation").as_bool();
  if (root.has("checkpoint_policy"))
    c.checkpoint_policy = root.child("checkpoint_policy").as_enum({"best", "all", "none"});
  if (root.has("checkpoint_storage"))
    c.checkpoint_storage = parse_storage(root.child("checkpoint_storage"));
  if (root.has("max_restarts"))
    c.max_restarts = static_cast<int>(root.child("max_restarts").as_int(kMaxRestartsRange));
  if (root.has("resources")) {
    Node r = root.child("resources");
    r.check_keys({"slots_per_trial", "max_slots", "weight", "priority", "shm_size", "resource_pool",
                  "is_single_node", "devices", "native_parallel", "agent_label"});
    if (r.has("slots_per_trial"))
      c.resources.slots_per_trial =
          static_cast<int>(r.child("slots_per_trial").as_int(kSlotsPerTrialRange));
    if (r.has("max_slots"))
      c.resources.max_slots = static_cast<int>(r.child("max_slots").as_int(kMaxSlotsRange));
    if (r.has("weight")) c.resources.weight = r.child("weight").as_double(kWeightRange);
    if (r.has("priority"))
      c.resources.priority = static_cast<int>(r.child("priority").as_int(kPriorityRange));
    if (r.has("resource_pool")) c.resources.resource_pool = r.child("resource_pool").as_string();
  }
  if (root.has("reproducibility")) {
    Node r = root.child("reproducibility");
    r.check_keys({"experiment_seed"});
    if (r.has("experiment_seed"))
      c.experiment_seed = static_cast<uint32_t>(r.child("experiment_seed").as_int(kSeedRange));
  }
  if (root.has("optimizations")) {
    Node o = root.child("optimizations");
    o.check_keys({"aggregation_frequency", "average_aggregated_gradients",
                  "average_training_metrics", "gradient_compression", "mixed_precision",
                  "tensor_fusion_threshold", "tensor_fusion_cycle_time", "auto_tune_tensor_fusion",
                  "grad_updates_size_file", "fail_on_non_finite"});
    if (o.has("fail_on_non_finite"))
      c.optimizations.fail_on_non_finite = o.child("fail_on_non_finite").as_bool();
    if (o.has("aggregation_frequency"))
      c.optimizations.aggregation_frequency =
          static_cast<int>(o.child("aggregation_frequency").as_int(kAggregationRange));
    if (o.has("average_aggregated_gradients"))
      c.optimizations.average_aggregated_gradients =
          o.child("average_aggregated_gradients").as_bool();
    if (o.has("average_training_metrics"))
      c.optimizations.average_training_metrics = o.child("average_training_metrics").as_bool();
    if (o.has("gradient_compression"))
      c.optimizations.gradient_compression = o.child("gradient_compression").as_bool();
    if (o.has("mixed_precision"))
      c.optimizations.mixed_precision =
          o.child("mixed_precision").as_enum({"O0", "O1", "O2", "O3"});
  }
  if (root.has("profiling")) {
    Node p = root.child("profiling");
    p.check_keys({"enabled", "begin_on_batch", "end_after_batch", "sync_timings"});
    if (p.has("enabled")) c.profiling.enabled = p.child("enabled").as_bool();
    if (p.has("begin_on_batch"))
      c.profiling.begin_on_batch = p.child("begin_on_batch").as_int(kBatchIndexRange);
    if (p.has("end_after_batch"))
      c.profiling.end_after_batch = p.child("end_after_batch").as_int(kBatchIndexRange);
    if (p.has("sync_timings")) c.profiling.sync_timings = p.child("sync_timings").as_bool();
  }
  if (root.has("debug")) c.debug = root.child("debug").as_bool();
  if (root.has("workspace")) c.workspace = root.child("workspace").as_string();
  if (root.has("project")) c.project = root.child("project").as_string();
  c.sources = std::move(map);
  check_implemented(root, c);
  return c;
}

void apply_override(YAML::Node& root, const std::string& spec, Source& src) {
  const std::string shown = "--config " + util::shorten(spec, kMaxPathChars);
  auto eq = spec.find('=');
  if (eq == std::string::npos || eq == 0)
    throw ConfigError(shown +
                      ": expected key.path=value (e.g. --config searcher.max_length.batches=500)");
  std::string path = spec.substr(0, eq);
  std::string value = spec.substr(eq + 1);
  YAML::Node parsed;
  try {
    parsed = YAML::Load(value);
  } catch (const YAML::Exception& e) {
    throw ConfigError(shown + ": the value is not valid YAML: " + util::shorten(e.msg, 200));
  }
  auto keys = util::split(path, '.');
  YAML::Node cur = root;
  for (size_t i = 0; i + 1 < keys.size(); ++i) {
    if (keys[i].empty()) throw ConfigError(shown + ": empty key in " + util::quote(path));
    YAML::Node next = cur[keys[i]];
    if (!next.IsDefined() || next.IsNull()) {
      cur[keys[i]] = YAML::Node(YAML::NodeType::Map);
      next = cur[keys[i]];
    } else if (!next.IsMap()) {
      throw ConfigError(
          shown + ": " +
          util::quote(util::join({keys.begin(), keys.begin() + static_cast<long>(i) + 1}, ".")) +
          " is not a mapping in the config, so it has no key " + util::quote(keys[i + 1]));
    }
    cur.reset(next);
  }
  // A length has exactly one unit: setting searcher.max_length.batches replaces {epochs: 1}.
  static const std::set<std::string> units = {"batches", "records", "epochs"};
  if (units.count(keys.back()) && cur.IsMap()) {
    bool all_units = true;
    for (const auto& kv : cur) all_units = all_units && units.count(kv.first.Scalar());
    if (all_units) {
      for (const auto& u : units) cur.remove(u);
    }
  }
  cur[keys.back()] = parsed;
  src.overrides[path] = spec;
}

void emit_yaml(YAML::Emitter& out, const nlohmann::json& v) {
  if (v.is_object()) {
    out << YAML::BeginMap;
    for (auto it = v.begin(); it != v.end(); ++it) {
      out << YAML::Key << it.key() << YAML::Value;
      emit_yaml(out, it.value());
    }
    out << YAML::EndMap;
  } else if (v.is_array()) {
    bool flat = true;
    for (const auto& e : v) flat = flat && !e.is_structured();
    if (flat) out << YAML::Flow;
    out << YAML::BeginSeq;
    for (const auto& e : v) emit_yaml(out, e);
    out << YAML::EndSeq;
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    // Keep strings that would read back as numbers, booleans or null as strings.
    int64_t i;
    double d;
    bool b;
    if (parse_int(s, i) || parse_double(s, d) || parse_bool(s, b) || is_null_scalar(s))
      out << YAML::DoubleQuoted << s;
    else
      out << s;
  } else if (v.is_null()) {
    out << YAML::Null;
  } else if (v.is_boolean()) {
    out << (v.get<bool>() ? "true" : "false");
  } else if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isinf(d))
      out << (d > 0 ? ".inf" : "-.inf");
    else if (std::isnan(d))
      out << ".nan";
    else {
      std::string s = v.dump();  // shortest round-trip form
      if (s.find_first_of(".eE") == std::string::npos) s += ".0";
      out << s;
    }
  } else {
    out << v.dump();
  }
}

nlohmann::json length_json(const Length& l) { return {{unit_name(l.unit), l.value}}; }

}  // namespace

std::string to_yaml(const nlohmann::json& value) {
  YAML::Emitter out;
  emit_yaml(out, value);
  return std::string(out.c_str()) + "\n";
}

ExperimentConfig parse_experiment_config(const std::string& yaml_text, const std::string& source,
                                         const std::vector<std::string>& overrides) {
  auto position = [&](const YAML::Mark& m) {
    return m.is_null()
               ? source
               : source + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  };
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(yaml_text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own guard (at a depth of some hundreds) stops it before its stack does.
    throw ConfigError(position(e.mark) + ": invalid YAML: lists and mappings nest deeper than " +
                      std::to_string(kMaxConfigDepth) + " levels; a config needs far fewer");
  } catch (const YAML::Exception& e) {
    throw ConfigError(position(e.mark) + ": invalid YAML: " + util::shorten(e.msg, 200));
  }
  if (documents.size() > 1)
    throw ConfigError(
        position(documents[1].Mark()) +
        ": a second YAML document (after '---'); a config is one document: remove the '---' line "
        "and merge the settings, or split them into two files");
  YAML::Node root = documents.empty() ? YAML::Node() : documents[0];
  Source src{source, {}};
  try {
    if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) Node(root, "", &src).fail("a mapping of experiment settings");
    for (const auto& o : overrides) apply_override(root, o, src);
    TreeCheck(src).run(root);
    return parse_root(Node(root, "", &src), source);
  } catch (const YAML::Exception& e) {
    // A yaml-cpp call the checks above did not foresee: still one line naming the file.
    throw ConfigError(position(e.mark) + ": " + util::shorten(e.msg, 200));
  }
}

ExperimentConfig load_experiment_config(const fs::path& path,
                                        const std::vector<std::string>& overrides) {
  if (!fs::exists(path))
    throw ConfigError(path.string() +
                      ": no such config file (give the path to an experiment YAML, e.g. "
                      "configs/mnist/const.yaml)");
  std::string text;
  try {
    text = util::read_file(path);
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  return parse_experiment_config(text, path.string(), overrides);
}

nlohmann::json to_json(const ExperimentConfig& c) {
  nlohmann::json j;
  j["name"] = c.name;
  j["description"] = c.description;
  j["labels"] = c.labels;
  j["data"] = c.data;
  j["entrypoint"] = c.entrypoint;
  j["hyperparameters"] = to_json(c.hyperparameters);
  nlohmann::json s = {{"name", c.searcher.name},
                      {"metric", c.searcher.metric},
                      {"smaller_is_better", c.searcher.smaller_is_better}};
  if (c.searcher.max_length) s["max_length"] = length_json(*c.searcher.max_length);
  const auto& n = c.searcher.name;
  if (n == "random" || n == "async_halving" || n == "adaptive_asha")
    s["max_trials"] = c.searcher.max_trials;
  if (n != "single") s["max_concurrent_trials"] = c.searcher.max_concurrent_trials;
  if (n == "async_halving" || n == "adaptive_asha") {
    s["divisor"] = c.searcher.divisor;
    s["stop_once"] = c.searcher.stop_once;
  }
  if (n == "async_halving") s["num_rungs"] = c.searcher.num_rungs;
  if (n == "adaptive_asha") {
    s["mode"] = c.searcher.mode;
    s["max_rungs"] = c.searcher.max_rungs;
    s["bracket_rungs"] = c.searcher.bracket_rungs;
  }
  if (c.searcher.source_trial_id) s["source_trial_id"] = *c.searcher.source_trial_id;
  if (c.searcher.source_checkpoint_uuid)
    s["source_checkpoint_uuid"] = *c.searcher.source_checkpoint_uuid;
  j["searcher"] = s;
  j["records_per_epoch"] = c.records_per_epoch;
  j["min_validation_period"] = length_json(c.min_validation_period);
  j["min_checkpoint_period"] = length_json(c.min_checkpoint_period);
  j["scheduling_unit"] = c.scheduling_unit;
  j["perform_initial_validation"] = c.perform_initial_validation;
  j["checkpoint_policy"] = c.checkpoint_policy;
  auto st = c.storage();
  nlohmann::json cs = {{"type", st.type},
                       {"save_experiment_best", st.save_experiment_best},
                       {"save_trial_best", st.save_trial_best},
                       {"save_trial_latest", st.save_trial_latest}};
  if (st.type == "shared_fs") {
    cs["host_path"] = st.host_path.empty() ? fs::path("runs").string() : st.host_path;
    if (!st.storage_path.empty()) cs["storage_path"] = st.storage_path;
  } else {
    cs["container_path"] = st.host_path;
  }
  j["checkpoint_storage"] = cs;
  j["max_restarts"] = c.max_restarts;
  nlohmann::json r = {{"slots_per_trial", c.resources.slots_per_trial},
                      {"weight", c.resources.weight}};
  if (c.resources.max_slots) r["max_slots"] = *c.resources.max_slots;
  if (c.resources.priority) r["priority"] = *c.resources.priority;
  if (!c.resources.resource_pool.empty()) r["resource_pool"] = c.resources.resource_pool;
  j["resources"] = r;
  j["reproducibility"] = nlohmann::json::object();
  if (c.experiment_seed) j["reproducibility"]["experiment_seed"] = *c.experiment_seed;
  j["optimizations"] = {
      {"aggregation_frequency", c.optimizations.aggregation_frequency},
      {"average_aggregated_gradients", c.optimizations.average_aggregated_gradients},
      {"average_training_metrics", c.optimizations.average_training_metrics},
      {"gradient_compression", c.optimizations.gradient_compression},
      {"mixed_precision", c.optimizations.mixed_precision},
      {"fail_on_non_finite", c.optimizations.fail_on_non_finite}};
  nlohmann::json p = {{"enabled", c.profiling.enabled},
                      {"begin_on_batch", c.profiling.begin_on_batch},
                      {"sync_timings", c.profiling.sync_timings}};
  if (c.profiling.end_after_batch) p["end_after_batch"] = *c.profiling.end_after_batch;
  j["profiling"] = p;
  j["debug"] = c.debug;
  if (!c.workspace.empty()) j["workspace"] = c.workspace;
  if (!c.project.empty()) j["project"] = c.project;
  return j;
}

}  // namespace det::config
