#include "det/config/args.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "det/util/error.h"
#include "det/util/strings.h"
#include "wording.h"

namespace det::config {

namespace {

const nlohmann::json& null_value() {
  static const nlohmann::json kNull;
  return kNull;
}

// Whole numbers as integers ("256", not "256.000000"), others in the shortest usual form.
std::string format_number(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream out;
  out.precision(10);
  out << v;
  return out.str();
}

// A key path is shown whole unless a user key makes it absurdly long.
constexpr size_t kMaxPathChars = 200;

}  // namespace

// ---- SourceMap ----

void SourceMap::add(const std::string& path, const std::string& source, int line, int column) {
  uint32_t index = 0;
  // Few distinct sources (the file and any --config overrides): look from the latest.
  auto it = std::find(sources_.rbegin(), sources_.rend(), source);
  if (it != sources_.rend()) {
    index = static_cast<uint32_t>(sources_.rend() - it - 1);
  } else {
    index = static_cast<uint32_t>(sources_.size());
    sources_.push_back(source);
  }
  entries_[path] = Entry{index, line, column};
}

std::string SourceMap::find(const std::string& path) const {
  std::string p = path;
  for (;;) {
    auto it = entries_.find(p);
    if (it != entries_.end()) {
      const Entry& e = it->second;
      const std::string& source = sources_[e.source];
      if (e.line <= 0) return source;
      return source + ":" + std::to_string(e.line) + ":" + std::to_string(e.column);
    }
    auto cut = p.find_last_of(".[");
    if (cut == std::string::npos || cut == 0) return "";
    p.resize(cut);
  }
}

// ---- Range ----

bool Range::contains(double v) const {
  if (std::isnan(v)) return false;
  if (min_excluded ? !(v > min) : !(v >= min)) return false;
  if (max_excluded ? !(v < max) : !(v <= max)) return false;
  return true;
}

std::string Range::str() const {
  const bool has_min = std::isfinite(min), has_max = std::isfinite(max);
  if (has_min && has_max) {
    if (!min_excluded && !max_excluded)
      return "from " + format_number(min) + " to " + format_number(max);
    return std::string("in ") + (min_excluded ? "(" : "[") + format_number(min) + ", " +
           format_number(max) + (max_excluded ? ")" : "]");
  }
  if (has_min) return (min_excluded ? "> " : ">= ") + format_number(min);
  if (has_max) return (max_excluded ? "< " : "<= ") + format_number(max);
  return "";
}

// ---- Args ----

Args::Args(nlohmann::json value, std::string path, std::shared_ptr<const SourceMap> sources)
    : root_(std::make_shared<const nlohmann::json>(std::move(value))),
      value_(root_.get()),
      path_(std::move(path)),
      sources_(std::move(sources)) {}

bool Args::has(const std::string& key) const {
  if (is_null()) return false;
  if (!is_object()) fail_expected("a mapping");
  auto it = value_->find(key);
  return it != value_->end() && !it->is_null();
}

std::vector<std::string> Args::keys() const {
  std::vector<std::string> out;
  if (is_null()) return out;
  if (!is_object()) fail_expected("a mapping");
  for (auto it = value_->begin(); it != value_->end(); ++it) out.push_back(it.key());
  return out;
}

Args Args::operator[](const std::string& key) const {
  std::string path = path_.empty() ? key : path_ + "." + key;
  if (is_null()) return Args(root_, &null_value(), std::move(path), sources_);
  if (!is_object()) fail_expected("a mapping");
  auto it = value_->find(key);
  return Args(root_, it == value_->end() ? &null_value() : &*it, std::move(path), sources_);
}

Args Args::operator[](size_t index) const {
  std::string path = path_ + "[" + std::to_string(index) + "]";
  if (!is_null() && !is_array()) fail_expected("a list");
  const bool inside = is_array() && index < value_->size();
  return Args(root_, inside ? &(*value_)[index] : &null_value(), std::move(path), sources_);
}

std::string Args::get_enum(const std::string& key, const std::vector<std::string>& allowed) const {
  Args v = (*this)[key];
  if (v.value_->is_string()) {
    const auto& s = v.value_->get_ref<const std::string&>();
    if (std::find(allowed.begin(), allowed.end(), s) != allowed.end()) return s;
    v.fail(detail::enum_message(s, v.found(), allowed));
  }
  v.fail_expected("one of " + util::join(allowed, ", "));
}

std::string Args::get_enum(const std::string& key, const std::string& fallback,
                           const std::vector<std::string>& allowed) const {
  return has(key) ? get_enum(key, allowed) : fallback;
}

Args Args::child(const std::string& key) const {
  Args v = (*this)[key];
  if (v.is_null()) return Args(nlohmann::json::object(), v.path_, sources_);
  if (!v.is_object()) v.fail_expected("a mapping");
  return v;
}

const Args& Args::check_keys(const std::vector<std::string>& known) const {
  for (const auto& key : keys()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    (*this)[key].fail(detail::unknown_key_message(key, known));
  }
  return *this;
}

std::string Args::where() const {
  std::string shown = path_.empty() ? "(top level)" : util::shorten(path_, kMaxPathChars);
  std::string location = sources_ ? sources_->find(path_) : "";
  return location.empty() ? shown : location + ": " + shown;
}

std::string Args::found() const {
  const nlohmann::json& v = *value_;
  switch (v.type()) {
    case nlohmann::json::value_t::null:
    case nlohmann::json::value_t::discarded:
      return "nothing";
    case nlohmann::json::value_t::object:
      return "a mapping";
    case nlohmann::json::value_t::array:
      return "a list";
    case nlohmann::json::value_t::string:
      return util::quote(v.get_ref<const std::string&>());
    case nlohmann::json::value_t::boolean:
      return v.get<bool>() ? "true" : "false";
    case nlohmann::json::value_t::number_float:
      return format_number(v.get<double>());
    case nlohmann::json::value_t::binary:
      return "binary data";
    default:
      return v.dump();  // integers
  }
}

void Args::fail(const std::string& message) const { throw ConfigError(where() + ": " + message); }

void Args::fail_expected(const std::string& expected) const {
  fail(detail::expected_message(expected, found()));
}

bool Args::as_bool() const {
  if (!value_->is_boolean()) fail_expected("true or false");
  return value_->get<bool>();
}

int64_t Args::as_integer(int64_t min, int64_t max, const Range* range) const {
  std::string expected = "an integer";
  if (range && !range->str().empty()) {
    expected += " " + range->str();
  } else if (min != std::numeric_limits<int64_t>::min() ||
             max != std::numeric_limits<int64_t>::max()) {
    expected += " from " + std::to_string(min) + " to " + std::to_string(max);
  }
  const nlohmann::json& v = *value_;
  int64_t out = 0;
  if (v.is_number_unsigned()) {
    if (v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail_expected(expected);
    out = static_cast<int64_t>(v.get<uint64_t>());
  } else if (v.is_number_integer()) {
    out = v.get<int64_t>();
  } else if (v.is_number_float()) {
    // 3.0 is an integer (YAML and JSON writers produce it); 1.5 and 1e300 are not.
    const double d = v.get<double>();
    if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) >= 9.2e18) fail_expected(expected);
    out = static_cast<int64_t>(d);
  } else {
    fail_expected(expected);
  }
  if (out < min || out > max) fail_expected(expected);
  if (range && !range->contains(static_cast<double>(out))) fail_expected(expected);
  return out;
}

double Args::as_number(const Range* range) const {
  std::string expected = "a number";
  if (range && !range->str().empty()) expected += " " + range->str();
  if (!value_->is_number()) fail_expected(expected);
  const double d = value_->get<double>();
  if (range && !range->contains(d)) fail_expected(expected);
  return d;
}

std::string Args::as_string() const {
  if (!value_->is_string()) fail_expected("a string");
  return value_->get<std::string>();
}

Args Args::as_mapping() const {
  if (!is_object()) fail_expected("a mapping");
  return *this;
}

void Args::expect_list() const {
  if (!is_array()) fail_expected("a list");
}

namespace detail {

std::string unknown_key_message(const std::string& key, const std::vector<std::string>& known) {
  return "unknown key " + util::quote(key) + util::did_you_mean(key, known) +
         " (allowed here: " + util::join(known, ", ") + ")";
}

std::string expected_message(const std::string& expected, const std::string& found) {
  return "expected " + expected + ", found " + found;
}

std::string enum_message(const std::string& value, const std::string& found,
                         const std::vector<std::string>& allowed) {
  return expected_message("one of " + util::join(allowed, ", "), found) +
         util::did_you_mean(value, allowed);
}

}  // namespace detail

}  // namespace det::config
