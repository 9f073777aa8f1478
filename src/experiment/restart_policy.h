#pragma once
// Internal to the experiment runner: what becomes of a trial when its worker's job ends. A pure
// function of the facts the runner gathered, so that every case is tested on a table
// (tests/experiment/restart_policy_test.cpp); the runner applies the decision.

#include <cstdint>
#include <optional>
#include <string>

#include "det/record/states.h"
#include "det/record/worker_protocol.h"
#include "det/search/operations.h"

namespace det::experiment {

/// What the runner knows when a trial's job ended.
struct JobEndFacts {
  std::optional<record::WorkerExit::Reason> exit_reason;  ///< The worker's last word, if any.
  int exit_code = -1;                   ///< Its exit status (-1: killed by a signal, or unknown).
  bool never_ran = false;               ///< No event was read from this launch.
  bool cancelled_by_scheduler = false;  ///< The scheduler says CANCELLED or PREEMPTED.
  bool stopping = false;                ///< The experiment is stopping (or pausing).
  bool killed = false;                  ///< det-run kill or kill-trial ended the worker.
  bool has_target = false;              ///< The searcher gave it a length to train to.
  bool close_requested = false;         ///< The searcher closes it once that work is done.
  int restarts = 0;                     ///< Restarts so far (before this end).
  int max_restarts = 0;                 ///< The config's max_restarts.
};

/// How the job ended, as the runner tells it.
enum class JobEnd {
  kResubmit,             ///< Cancelled or preempted before its worker said a word: again.
  kInvalidHP,            ///< It rejected its hyperparameters: the searcher replaces it.
  kStorageFull,          ///< It could not write: the experiment stops, resumable.
  kNonFinite,            ///< It diverged: ERROR (a restart would diverge again).
  kStopRequested,        ///< It stopped at its own request: COMPLETED early.
  kPaused,               ///< Paused, closed or stopped by the runner: its checkpoint holds all.
  kFailedWhileStopping,  ///< It failed while the experiment stops: resumable, not restarted.
  kRestart,              ///< It failed: restarted from its latest checkpoint.
  kRestartsExhausted,    ///< It failed once more than max_restarts allows: ERROR.
  kKilled,               ///< det-run kill-trial (or kill): CANCELED, the searcher told.
};

/// What the runner does about it.
struct JobEndDecision {
  JobEnd kind = JobEnd::kPaused;                            ///< The case.
  record::TrialStatus next = record::TrialStatus::kPaused;  ///< The trial's state from now on.
  bool enqueue = false;          ///< It joins the queue of trials waiting for slots.
  bool clear_target = false;     ///< Its target is dropped (it trains no further).
  bool count_restart = false;    ///< A restart is counted; it goes on from its latest checkpoint.
  bool keep_message = false;     ///< The worker's message is the trial's (why it failed).
  bool stop_experiment = false;  ///< The experiment begins to stop.
  /// The searcher hears that it exited early, then that it is closed.
  std::optional<search::ExitedReason> exited_early;
  bool close = false;  ///< The searcher hears that it is closed (without exiting early).

  /// Field by field (for tests).
  bool operator==(const JobEndDecision& o) const;
};

/// The decision for a trial whose job ended.
JobEndDecision decide_job_end(const JobEndFacts& facts);

/// What the log line about a job's end names (after the decision is applied).
struct JobEndContext {
  int64_t trial = 0;         ///< The trial's id.
  std::string why;           ///< Why the worker failed: its message, or how it ended.
  std::string job_state;     ///< The scheduler's word on the job ("" for a local worker).
  std::string exit_message;  ///< The worker's last word's message.
  int restarts = 0;          ///< Restarts so far, this one counted.
  int max_restarts = 0;      ///< The config's max_restarts.
  std::string checkpoint;    ///< Where it restarts from ("" = the start).
};

/// The runner's log line about a job's end.
struct JobEndLog {
  /// How loud; kNone: nothing to say (a pause is routine).
  enum class Level { kNone, kInfo, kWarn, kError };
  Level level = Level::kNone;  ///< How loud.
  std::string text;            ///< The line.
};

/// The log line for decision `d`.
JobEndLog describe_job_end(const JobEndDecision& d, const JobEndContext& c);

/// The case's name, for logs and test messages: "resubmit", "invalid_hp", ...
const char* job_end_name(JobEnd kind);

}  // namespace det::experiment
