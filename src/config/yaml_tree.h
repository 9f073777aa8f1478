// A YAML node that knows its key path and where it was written, and the checks every config
// file passes before it is read (private to src/config; the parsers in experiment_config.cpp
// read through it).
#pragma once

#include <yaml-cpp/yaml.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "det/config/experiment_config.h"
#include "det/util/error.h"
#include "det/util/strings.h"
#include "wording.h"

namespace det::config::detail {

// ---- scalar typing (YAML 1.2 core schema) ----

bool parse_int(const std::string& s, int64_t& out);
bool parse_double(const std::string& s, double& out);
bool parse_bool(const std::string& s, bool& out);
bool is_null_scalar(const std::string& s);
/// A YAML value as JSON, scalars typed by the core schema (a quoted scalar stays a string).
nlohmann::json yaml_to_json(const YAML::Node& n);

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
    throw ConfigError(where() + ": " + expected_message(expected, found()));
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
  // The child of one entry while iterating this mapping: the value is taken from the entry, not
  // looked up again (a yaml-cpp lookup walks the mapping, so looking up each key is quadratic).
  Node child(const std::pair<YAML::Node, YAML::Node>& entry) const {
    const std::string& key = entry.first.Scalar();
    return Node(entry.second.IsDefined() ? entry.second : YAML::Node(YAML::NodeType::Undefined),
                path_.empty() ? key : path_ + "." + key, src_, mark());
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
        key_node.fail_msg(unknown_key_message(key, known));
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
    throw ConfigError(where() + ": " + enum_message(s, found(), allowed));
  }

 private:
  YAML::Node node_;
  std::string path_;
  const Source* src_;
  YAML::Mark fallback_;
};

/// Walks the document as the parser will see it, aliases expanded, before anything converts it:
/// no cycles, at most kMaxConfigValues values, at most kMaxConfigDepth deep, no duplicate keys.
/// Throws ConfigError naming the file:line.
void check_tree(const YAML::Node& root, const Source& src);

/// Records `n` and everything inside it under `logical` (its path as the trial sees it).
void record_tree(SourceMap& map, const std::string& logical, const Node& n);

/// Applies one `--config key.path=value` to the document and notes it in `src`.
void apply_override(YAML::Node& root, const std::string& spec, Source& src);

}  // namespace det::config::detail
