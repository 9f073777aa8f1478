#include "schema.h"

#include <algorithm>
#include <optional>

#include "det/util/strings.h"

namespace det::config::detail {
namespace {

// A `required` message with its section's variant in place of "{variant}".
std::string with_variant(std::string message, const std::string& variant) {
  const std::string slot = "{variant}";
  const auto at = message.find(slot);
  if (at != std::string::npos) message.replace(at, slot.size(), variant);
  return message;
}

}  // namespace

bool Key::for_variant(const std::string& v) const {
  return v.empty() || variants.empty() ||
         std::find(variants.begin(), variants.end(), v) != variants.end();
}

Key Key::notice(std::function<bool(const Node&)> when, std::string reason) && {
  check = Check::kNotice;
  applies = std::move(when);
  why = std::move(reason);
  return std::move(*this);
}

Key Key::refuse(std::function<bool(const Node&)> when, std::string reason) && {
  check = Check::kRefused;
  applies = std::move(when);
  why = std::move(reason);
  return std::move(*this);
}

Key Key::only(std::vector<std::string> values) && {
  variants = std::move(values);
  return std::move(*this);
}

Key Key::need(std::string message) && {
  required = std::move(message);
  return std::move(*this);
}

Key Key::when(std::function<bool(const ExperimentConfig&)> pred) && {
  written = std::move(pred);
  return std::move(*this);
}

std::vector<std::string> keys_under(const std::string& section, const std::string& variant) {
  std::vector<std::string> names;
  for (const Key& k : schema())
    if (k.parent() == section && k.for_variant(variant)) names.push_back(k.name());
  return names;
}

void read_keys(const Node& n, const std::string& section, Reading& r, const std::string& variant) {
  for (const Key& k : schema()) {
    if (k.parent() != section || !k.for_variant(variant)) continue;
    const std::string name = k.name();
    if (!k.required.empty() && !n.has(name)) n.fail_msg(with_variant(k.required, variant));
    if (!k.always && !n.has(name)) continue;
    const Node child = n.child(name);
    if (k.read) k.read(child, r);
    if (k.section) {
      child.check_keys(keys_under(k.path));
      read_keys(child, k.path, r);
    }
  }
}

nlohmann::json write_keys(const ExperimentConfig& c, const std::string& section) {
  nlohmann::json out = nlohmann::json::object();
  // A section with variants writes only its variant's keys (none of them for an empty one).
  std::optional<std::string> variant;
  for (const Key& k : schema())
    if (k.path == section && k.variant_of) variant = k.variant_of(c);
  for (const Key& k : schema()) {
    if (k.parent() != section) continue;
    if (variant && !k.variants.empty() &&
        std::find(k.variants.begin(), k.variants.end(), *variant) == k.variants.end())
      continue;
    if (k.written && !k.written(c)) continue;
    if (k.write)
      k.write(c, out, k.name());
    else if (k.section)
      out[k.name()] = write_keys(c, k.path);
  }
  return out;
}

namespace {

// Walked by recursion, not assignment: assigning a YAML::Node writes into the document.
void visit(const Node& n, const std::vector<std::string>& parts, size_t i,
           const std::function<void(const Node&)>& at) {
  if (i == parts.size()) return at(n);
  if (n.has(parts[i])) visit(n.child(parts[i]), parts, i + 1, at);
}

}  // namespace

// Loud, not silent: every setting det parses or accepts but does not implement is either a
// ConfigError (det would do something other than what it asks) or a notice (it has no meaning
// outside a Determined cluster, or Determined's PyTorchTrial ignores it too).
void check_implemented(const Node& root, ExperimentConfig& c) {
  for (const Key& k : schema()) {
    if (k.check == Key::Check::kNone) continue;
    visit(root, util::split(k.path, '.'), 0, [&](const Node& n) {
      if (!k.applies(n)) return;
      if (k.check == Key::Check::kRefused) n.fail_msg("not implemented: " + k.why);
      c.notices.push_back(n.where() + ": " + k.why);
    });
  }
}

}  // namespace det::config::detail
