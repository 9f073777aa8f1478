#include "det/record/states.h"

#include <array>
#include <utility>

#include "det/util/error.h"
#include "name_table.h"

namespace det::record {
namespace {

using detail::name_in;
using detail::names_in;
using detail::value_in;

// The one table of stored names: the strings det has always written (compatibility).
constexpr std::array<std::pair<RunState, const char*>, 6> kRunStates = {{
    {RunState::kActive, "ACTIVE"},
    {RunState::kCompleted, "COMPLETED"},
    {RunState::kStopped, "STOPPED"},
    {RunState::kError, "ERROR"},
    {RunState::kPaused, "PAUSED"},
    {RunState::kCanceled, "CANCELED"},
}};

constexpr std::array<std::pair<TrialStatus, const char*>, 9> kTrialStatuses = {{
    {TrialStatus::kActive, "ACTIVE"},
    {TrialStatus::kPaused, "PAUSED"},
    {TrialStatus::kQueued, "QUEUED"},
    {TrialStatus::kRunning, "RUNNING"},
    {TrialStatus::kCompleted, "COMPLETED"},
    {TrialStatus::kStopped, "STOPPED"},
    {TrialStatus::kError, "ERROR"},
    {TrialStatus::kInvalidHP, "INVALID_HP"},
    {TrialStatus::kCanceled, "CANCELED"},
}};

template <typename E, size_t N>
E value_or_throw(const std::array<std::pair<E, const char*>, N>& table, std::string_view name,
                 const std::string& where, const char* what) {
  if (auto v = value_in(table, name)) return *v;
  throw Error(where + ": " + what + " \"" + std::string(name) + "\" is not one of " +
              names_in(table) + ": it was written by another program or edited by hand");
}

}  // namespace

const char* to_string(RunState state) { return name_in(kRunStates, state); }
const char* to_string(TrialStatus status) { return name_in(kTrialStatuses, status); }

std::optional<RunState> parse_run_state(std::string_view name) {
  return value_in(kRunStates, name);
}
std::optional<TrialStatus> parse_trial_status(std::string_view name) {
  return value_in(kTrialStatuses, name);
}

std::string run_state_names() { return names_in(kRunStates); }
std::string trial_status_names() { return names_in(kTrialStatuses); }

RunState run_state_of(std::string_view name, const std::string& where) {
  return value_or_throw(kRunStates, name, where, "experiment state");
}
TrialStatus trial_status_of(std::string_view name, const std::string& where) {
  return value_or_throw(kTrialStatuses, name, where, "trial state");
}

bool goes_on(RunState state) { return state == RunState::kActive || state == RunState::kPaused; }

bool is_final(RunState state) {
  return state == RunState::kCompleted || state == RunState::kError || state == RunState::kCanceled;
}

bool is_final(TrialStatus status) {
  return status == TrialStatus::kCompleted || status == TrialStatus::kError ||
         status == TrialStatus::kInvalidHP || status == TrialStatus::kCanceled;
}

TrialStatus stored_status(TrialStatus status) {
  return status == TrialStatus::kRunning ? TrialStatus::kActive : status;
}

}  // namespace det::record
