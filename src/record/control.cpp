#include "det/record/control.h"

#include <array>
#include <utility>

#include "det/util/error.h"
#include "fields.h"
#include "name_table.h"

namespace det::record {
namespace {

using Kind = ControlCommand::Kind;
constexpr std::array<std::pair<Kind, const char*>, 6> kKinds = {{
    {Kind::kPause, "pause"},
    {Kind::kActivate, "activate"},
    {Kind::kCancel, "cancel"},
    {Kind::kKill, "kill"},
    {Kind::kKillTrial, "kill_trial"},
    {Kind::kSetMaxSlots, "set_max_slots"},
}};

detail::Fields<Error> open_record(const nlohmann::json& j, const std::string& where, int version) {
  detail::Fields<Error> f(j, where);
  const int64_t v = f.value<int64_t>("v", version);
  if (v < 1 || v > version)
    throw Error(where + ": version " + std::to_string(v) + " is not one this det reads (1.." +
                std::to_string(version) + "): use the same det for the command and the runner");
  return f;
}

}  // namespace

const char* to_string(ControlCommand::Kind kind) { return detail::name_in(kKinds, kind); }

nlohmann::json ControlCommand::to_json() const {
  nlohmann::json j = {{"v", kVersion}, {"command", to_string(kind)}};
  if (kind == Kind::kKillTrial) j["trial"] = trial;
  if (kind == Kind::kSetMaxSlots) j["slots"] = slots;
  return j;
}

ControlCommand ControlCommand::from_json(const nlohmann::json& j, const std::string& where) {
  auto f = open_record(j, where, kVersion);
  const auto name = f.get<std::string>("command");
  const auto kind = detail::value_in(kKinds, name);
  if (!kind)
    throw Error(where + ": command '" + name + "' is not one of " + detail::names_in(kKinds) +
                ": it was written by another program or a newer det");
  ControlCommand c;
  c.kind = *kind;
  if (c.kind == Kind::kKillTrial) c.trial = f.get_int("trial", 1, int64_t{1} << 40);
  if (c.kind == Kind::kSetMaxSlots) c.slots = static_cast<int>(f.get_int("slots", 1, 1 << 20));
  return c;
}

nlohmann::json ControlAnswer::to_json() const {
  return {{"v", ControlCommand::kVersion}, {"ok", ok}, {"message", message}};
}

ControlAnswer ControlAnswer::from_json(const nlohmann::json& j, const std::string& where) {
  auto f = open_record(j, where, ControlCommand::kVersion);
  ControlAnswer a;
  a.ok = f.get<bool>("ok");
  a.message = f.get<std::string>("message");
  return a;
}

}  // namespace det::record
