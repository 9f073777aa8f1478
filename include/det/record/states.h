#pragma once
/// \file
/// The states of an experiment and of its trials, with the one table of their stored names
/// (experiment.json, det.db, the runner snapshot, `det-run` output). The names are the ones det
/// has always written; readers of older records parse them unchanged.

#include <optional>
#include <string>
#include <string_view>

namespace det::record {

/// An experiment's state.
enum class RunState {
  kActive,     ///< ACTIVE: running (or its runner died: --resume-experiment continues it).
  kCompleted,  ///< COMPLETED: the searcher finished with at least one completed trial.
  kStopped,    ///< STOPPED: stopped by a signal or a full disk; resumable.
  kError,      ///< ERROR: no trial completed, or the searcher did not finish.
  kPaused,     ///< PAUSED: `det-run pause`: its runner waits, no trial trains.
  kCanceled,   ///< CANCELED: `det-run cancel` or `kill`: over for good.
};

/// A trial's state. The store has no RUNNING: a trial with a worker is ACTIVE there
/// (stored_status()).
enum class TrialStatus {
  kActive,     ///< ACTIVE: trained by det-run --test/--resume, or (in the store) RUNNING.
  kPaused,     ///< PAUSED: nothing to do until the searcher gives it a target.
  kQueued,     ///< QUEUED: has a target and waits for slots.
  kRunning,    ///< RUNNING: a worker trains it.
  kCompleted,  ///< COMPLETED: closed by the searcher, or stopped at its own request.
  kStopped,    ///< STOPPED: a single trial stopped by a signal; resumable.
  kError,      ///< ERROR: failed past max_restarts, or diverged.
  kInvalidHP,  ///< INVALID_HP: rejected its hyperparameters.
  kCanceled,   ///< CANCELED: `det-run kill-trial`, or its experiment was canceled.
};

/// The stored name: "ACTIVE", "COMPLETED", "STOPPED", "ERROR", "PAUSED", "CANCELED".
const char* to_string(RunState state);
/// The stored name: "ACTIVE", "PAUSED", "QUEUED", "RUNNING", "COMPLETED", "STOPPED", "ERROR",
/// "INVALID_HP", "CANCELED".
const char* to_string(TrialStatus status);

/// The state named `name`, or nothing when it names none.
std::optional<RunState> parse_run_state(std::string_view name);
/// The status named `name`, or nothing when it names none.
std::optional<TrialStatus> parse_trial_status(std::string_view name);

/// "ACTIVE, COMPLETED, STOPPED, ERROR" (for errors that list the valid names).
std::string run_state_names();
/// "ACTIVE, PAUSED, ..., INVALID_HP" (for errors that list the valid names).
std::string trial_status_names();

/// parse_run_state(); throws det::Error naming `where`, the name and the valid names.
RunState run_state_of(std::string_view name, const std::string& where);
/// parse_trial_status(); throws det::Error naming `where`, the name and the valid names.
TrialStatus trial_status_of(std::string_view name, const std::string& where);

/// Whether the experiment goes on (ACTIVE, PAUSED): it has no end time.
bool goes_on(RunState state);
/// Whether the experiment is over for good (COMPLETED, ERROR, CANCELED): --resume-experiment
/// refuses it.
bool is_final(RunState state);
/// Whether the trial is over for good: COMPLETED, ERROR, INVALID_HP or CANCELED (a STOPPED one
/// resumes).
bool is_final(TrialStatus status);
/// The status as the store keeps it: RUNNING is ACTIVE there, every other one is itself.
TrialStatus stored_status(TrialStatus status);

}  // namespace det::record
