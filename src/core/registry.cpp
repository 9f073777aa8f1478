#include "det/core/registry.h"

#include <algorithm>

#include "det/util/strings.h"

namespace det {

TrialRegistry& TrialRegistry::instance() {
  static TrialRegistry registry;
  return registry;
}

void TrialRegistry::add(const std::string& name, const std::string& class_name,
                        TrialFactory factory, TrialConfigCheck check) {
  entries_.push_back({name, class_name, std::move(factory), std::move(check)});
}

const TrialRegistry::Entry* TrialRegistry::lookup(const std::string& entrypoint) const {
  // Accept "name", "ClassName" and Determined's "module:ClassName".
  const auto colon = entrypoint.rfind(':');
  const std::string after_colon =
      colon == std::string::npos ? entrypoint : entrypoint.substr(colon + 1);
  for (const auto& e : entries_)
    if (e.name == entrypoint || e.class_name == entrypoint || e.class_name == after_colon ||
        e.name == after_colon)
      return &e;
  return nullptr;
}

void TrialRegistry::check_config(const std::string& entrypoint, const TrialContext& context) const {
  if (const Entry* e = lookup(entrypoint); e && e->check) e->check(context);
}

const TrialFactory& TrialRegistry::find(const std::string& entrypoint,
                                        const std::string& config_source) const {
  if (const Entry* e = lookup(entrypoint)) return e->factory;
  const auto colon = entrypoint.rfind(':');
  const std::string after_colon =
      colon == std::string::npos ? entrypoint : entrypoint.substr(colon + 1);
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
