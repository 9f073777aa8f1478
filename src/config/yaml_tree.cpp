#include "yaml_tree.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <set>
#include <unordered_map>

namespace det::config {
namespace detail {

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

namespace {

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

// A string that would read back as a number, boolean or null stays a string: quoted.
void emit_string(YAML::Emitter& out, const std::string& s) {
  int64_t i;
  double d;
  bool b;
  if (parse_int(s, i) || parse_double(s, d) || parse_bool(s, b) || is_null_scalar(s))
    out << YAML::DoubleQuoted << s;
  else
    out << s;
}

void emit_double(YAML::Emitter& out, const nlohmann::json& v) {
  const double d = v.get<double>();
  if (std::isinf(d)) {
    out << (d > 0 ? ".inf" : "-.inf");
  } else if (std::isnan(d)) {
    out << ".nan";
  } else {
    std::string s = v.dump();  // shortest round-trip form
    if (s.find_first_of(".eE") == std::string::npos) s += ".0";
    out << s;
  }
}

void emit_scalar(YAML::Emitter& out, const nlohmann::json& v) {
  if (v.is_string())
    emit_string(out, v.get_ref<const std::string&>());
  else if (v.is_null())
    out << YAML::Null;
  else if (v.is_boolean())
    out << (v.get<bool>() ? "true" : "false");
  else if (v.is_number_float())
    emit_double(out, v);
  else
    out << v.dump();
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
  } else {
    emit_scalar(out, v);
  }
}

}  // namespace

void check_tree(const YAML::Node& root, const Source& src) { TreeCheck(src).run(root); }

void record_tree(SourceMap& map, const std::string& logical, const Node& n) {
  n.record(map, logical);
  if (n.is_map()) {
    for (const auto& kv : n.yaml()) {
      record_tree(map, logical + "." + kv.first.Scalar(), n.child(kv));
    }
  } else if (n.is_seq()) {
    for (size_t i = 0; i < n.yaml().size(); ++i)
      record_tree(map, logical + "[" + std::to_string(i) + "]", n.item(i));
  }
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

}  // namespace detail

std::string to_yaml(const nlohmann::json& value) {
  YAML::Emitter out;
  detail::emit_yaml(out, value);
  return std::string(out.c_str()) + "\n";
}

}  // namespace det::config
