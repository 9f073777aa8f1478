#include "det/core/registry.h"

#include <algorithm>

#include "det/util/strings.h"

namespace det {

TrialRegistry& TrialRegistry::instance() {
  static TrialRegistry registry;
  return registry;
}

void TrialRegistry::add(const std::string& name, const std::string& class_name,
                        TrialFactory factory) {
  entries_.push_back({name, class_name, std::move(factory)});
}

const TrialFactory& TrialRegistry::find(const std::string& entrypoint,
                                        const std::string& config_source) const {
  // Accept "name", "ClassName" and Determined's "module:ClassName".
  std::string key = entrypoint;
  auto colon = key.rfind(':');
  std::string after_colon = colon == std::string::npos ? key : key.substr(colon + 1);
  for (const auto& e : entries_)
    if (e.name == key || e.class_name == key || e.class_name == after_colon ||
        e.name == after_colon)
      return e.factory;
  auto known = names();
  std::string where = config_source.empty() ? "" : config_source + ": ";
  if (entrypoint.empty())
    throw ConfigError(where + "entrypoint: missing; set it to a registered trial (" +
                      util::join(known, ", ") + ")");
  throw ConfigError(where + "entrypoint: no trial named '" + entrypoint + "' is linked in" +
                    util::did_you_mean(after_colon, known) +
                    " (registered: " + (known.empty() ? "none" : util::join(known, ", ")) +
                    "); register a trial with DET_REGISTER_TRIAL(Class, \"name\")");
}

std::vector<std::string> TrialRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.name);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace det
