// det-run pause|activate|cancel|kill EXP_ID, kill-trial TRIAL_ID, set max-slots EXP_ID N: a
// command to the experiment's runner (det/experiment/control.h), then a wait until the store
// shows that it took effect.

#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>

#include "commands.h"
#include "det/experiment/control.h"
#include "det/experiment/store.h"
#include "det/record/states.h"
#include "det/util/error.h"
#include "queries.h"

namespace det::app {
namespace fs = std::filesystem;
using Kind = record::ControlCommand::Kind;

namespace {

// How long the runner has to read and answer a command (it looks a few times a second).
constexpr std::chrono::seconds kAnswerTimeout{15};

// Waits up to `timeout` until `done` (read from a fresh look at the store) holds.
bool wait_until(const std::function<bool()>& done, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

// The state the command leads to, when it leads to one the store shows.
std::optional<record::RunState> target_state(Kind kind) {
  switch (kind) {
    case Kind::kPause:
      return record::RunState::kPaused;
    case Kind::kActivate:
      return record::RunState::kActive;
    case Kind::kCancel:
    case Kind::kKill:
      return record::RunState::kCanceled;
    default:
      return std::nullopt;
  }
}

// Sends `command` to the runner of experiment `e`; throws its refusal as one line.
void send(const experiment::ExperimentRow& e, const record::ControlCommand& command) {
  if (record::is_final(e.state))
    throw Error("experiment " + std::to_string(e.id) + " is " + record::to_string(e.state) +
                " already: there is nothing to " + record::to_string(command.kind));
  const auto answer = experiment::send_control(e.run_dir, command, kAnswerTimeout);
  if (!answer.ok) throw Error("experiment " + std::to_string(e.id) + ": " + answer.message);
  std::printf("experiment %lld: %s\n", static_cast<long long>(e.id), answer.message.c_str());
  std::fflush(stdout);
}

}  // namespace

int control_experiment(Kind kind, int64_t experiment_id, int slots, const std::string& store,
                       int timeout_s) {
  const fs::path path = store_path_or_default(store);
  const auto e = experiment::ExperimentStore(path).experiment(experiment_id);
  record::ControlCommand command;
  command.kind = kind;
  command.slots = slots;
  send(e, command);
  const auto want = target_state(kind);
  if (!want) return 0;
  record::RunState now = e.state;
  const bool done = wait_until(
      [&] {
        now = experiment::ExperimentStore(path).experiment(experiment_id).state;
        return now == *want;
      },
      std::chrono::seconds(timeout_s));
  if (!done)
    throw Error("experiment " + std::to_string(experiment_id) + " is still " +
                record::to_string(now) + " after " + std::to_string(timeout_s) + " s (its trials " +
                "checkpoint first); det-run describe " + std::to_string(experiment_id) +
                " shows where it is");
  std::printf("experiment %lld: %s\n", static_cast<long long>(experiment_id),
              record::to_string(now));
  return 0;
}

int kill_trial(int64_t trial_id, const std::string& store, int timeout_s) {
  const fs::path path = store_path_or_default(store);
  experiment::TrialRow t;
  experiment::ExperimentRow e;
  {
    experiment::ExperimentStore s(path);
    t = s.trial(trial_id);
    e = s.experiment(t.experiment_id);
  }
  if (record::is_final(t.state))
    throw Error("trial " + std::to_string(trial_id) + " is " + record::to_string(t.state) +
                " already");
  record::ControlCommand command;
  command.kind = Kind::kKillTrial;
  command.trial = t.number;
  send(e, command);
  record::TrialStatus now = t.state;
  const bool done = wait_until(
      [&] {
        now = experiment::ExperimentStore(path).trial(trial_id).state;
        return record::is_final(now);
      },
      std::chrono::seconds(timeout_s));
  if (!done)
    throw Error("trial " + std::to_string(trial_id) + " is still " + record::to_string(now) +
                " after " + std::to_string(timeout_s) + " s");
  std::printf("trial %lld: %s\n", static_cast<long long>(trial_id), record::to_string(now));
  return 0;
}

}  // namespace det::app
