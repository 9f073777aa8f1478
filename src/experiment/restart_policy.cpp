#include "restart_policy.h"

#include "det/record/worker_protocol.h"

namespace det::experiment {
namespace {

using Reason = record::WorkerExit::Reason;
using record::TrialStatus;

// Waits for its target (queued, or kept for the resume when the experiment stops) or pauses.
TrialStatus waiting(const JobEndFacts& f) {
  return f.has_target ? TrialStatus::kQueued : TrialStatus::kPaused;
}

// The worker ended as it was told to (paused, closed, or stopped by the runner).
JobEndDecision paused(const JobEndFacts& f) {
  JobEndDecision d;
  d.kind = JobEnd::kPaused;
  if (f.close_requested && !f.has_target) {
    d.next = TrialStatus::kCompleted;
    d.close = true;
  } else {
    d.next = waiting(f);
    d.enqueue = f.has_target && !f.stopping;  // promoted while it wrote its pause checkpoint
  }
  return d;
}

// The worker failed: restarted from its latest checkpoint unless the budget is spent.
JobEndDecision failed(const JobEndFacts& f) {
  JobEndDecision d;
  if (f.stopping) {
    d.kind = JobEnd::kFailedWhileStopping;
    d.next = waiting(f);
    return d;
  }
  d.count_restart = true;
  if (f.restarts + 1 > f.max_restarts) {
    d.kind = JobEnd::kRestartsExhausted;
    d.next = TrialStatus::kError;
    d.clear_target = true;
    d.exited_early = search::ExitedReason::kErrored;
    return d;
  }
  d.kind = JobEnd::kRestart;
  if (f.has_target) {
    d.next = TrialStatus::kQueued;
    d.enqueue = true;
  } else if (f.close_requested) {
    d.next = TrialStatus::kCompleted;
    d.close = true;
  } else {
    d.next = TrialStatus::kPaused;
  }
  return d;
}

// The trial ends for good before the searcher closed it.
JobEndDecision exited(JobEnd kind, TrialStatus next, search::ExitedReason why, bool keep_message) {
  JobEndDecision d;
  d.kind = kind;
  d.next = next;
  d.clear_target = true;
  d.exited_early = why;
  d.keep_message = keep_message;
  return d;
}

}  // namespace

bool JobEndDecision::operator==(const JobEndDecision& o) const {
  return kind == o.kind && next == o.next && enqueue == o.enqueue &&
         clear_target == o.clear_target && count_restart == o.count_restart &&
         keep_message == o.keep_message && stop_experiment == o.stop_experiment &&
         exited_early == o.exited_early && close == o.close;
}

JobEndDecision decide_job_end(const JobEndFacts& f) {
  if (f.killed) {
    // The user ended it: over for good, without a checkpoint. A search that goes on hears it as
    // Determined's searchers do (an early exit, user canceled); a canceled experiment does not.
    JobEndDecision d;
    d.kind = JobEnd::kKilled;
    d.next = TrialStatus::kCanceled;
    d.clear_target = true;
    if (!f.stopping) d.exited_early = search::ExitedReason::kUserCanceled;
    return d;
  }
  if (!f.exit_reason && f.never_ran && !f.stopping && f.cancelled_by_scheduler) {
    // Cancelled or preempted before its worker said anything: not the trial's failure.
    JobEndDecision d;
    d.kind = JobEnd::kResubmit;
    d.next = waiting(f);
    d.enqueue = f.has_target;
    return d;
  }
  const std::optional<Reason> r = f.exit_reason;
  if (r == Reason::kInvalidHP && f.exit_code == record::kWorkerExitInvalidHP)
    return exited(JobEnd::kInvalidHP, TrialStatus::kInvalidHP, search::ExitedReason::kInvalidHP,
                  true);
  if (r == Reason::kStorage) {
    // A full disk is not the trial's fault and a restart would fail again: the experiment stops
    // with every trial resumable from its last recorded checkpoint.
    JobEndDecision d;
    d.kind = JobEnd::kStorageFull;
    d.next = waiting(f);
    d.stop_experiment = !f.stopping;
    return d;
  }
  if (r == Reason::kNonFinite)  // deterministic: a restart would diverge again
    return exited(JobEnd::kNonFinite, TrialStatus::kError, search::ExitedReason::kErrored, true);
  if (r == Reason::kStopRequested && f.exit_code == 0)
    return exited(JobEnd::kStopRequested, TrialStatus::kCompleted,
                  search::ExitedReason::kUserCanceled, false);
  if ((r == Reason::kCompleted && f.exit_code == 0) ||
      (r == Reason::kStopped && f.exit_code == 130))
    return paused(f);
  return failed(f);
}

JobEndLog describe_job_end(const JobEndDecision& d, const JobEndContext& c) {
  using Level = JobEndLog::Level;
  const std::string trial = "trial " + std::to_string(c.trial) + ": ";
  switch (d.kind) {
    case JobEnd::kResubmit:
      return {Level::kWarn,
              trial + "its job was " + c.job_state + " before it started; submitting it again"};
    case JobEnd::kInvalidHP:
      return {Level::kWarn, trial + "rejected its hyperparameters (" + c.exit_message +
                                "); the searcher replaces it"};
    case JobEnd::kStorageFull:
      return {Level::kError, trial + c.exit_message};
    case JobEnd::kNonFinite:
      return {Level::kError, trial + c.exit_message +
                                 "; the trial is ERROR (not restarted) and the experiment goes on"};
    case JobEnd::kStopRequested:
      return {Level::kInfo, trial + "stopped early at its own request"};
    case JobEnd::kPaused:
      return {};
    case JobEnd::kKilled:
      return {Level::kWarn, trial + "killed on request (CANCELED)"};
    case JobEnd::kFailedWhileStopping:
      return {Level::kWarn, trial + "the worker failed while stopping: " + c.why};
    case JobEnd::kRestart:
      return {Level::kWarn, trial + "the worker failed (" + c.why + "); restart " +
                                std::to_string(c.restarts) + " of " +
                                std::to_string(c.max_restarts) + " from " +
                                (c.checkpoint.empty() ? "the start" : c.checkpoint)};
    case JobEnd::kRestartsExhausted:
      return {Level::kError, trial + "the worker failed (" + c.why + "); max_restarts (" +
                                 std::to_string(c.max_restarts) +
                                 ") reached, the trial is ERROR and the experiment goes on"};
  }
  return {};
}

const char* job_end_name(JobEnd kind) {
  switch (kind) {
    case JobEnd::kResubmit:
      return "resubmit";
    case JobEnd::kInvalidHP:
      return "invalid_hp";
    case JobEnd::kStorageFull:
      return "storage_full";
    case JobEnd::kNonFinite:
      return "non_finite";
    case JobEnd::kStopRequested:
      return "stop_requested";
    case JobEnd::kPaused:
      return "paused";
    case JobEnd::kFailedWhileStopping:
      return "failed_while_stopping";
    case JobEnd::kRestart:
      return "restart";
    case JobEnd::kRestartsExhausted:
      return "restarts_exhausted";
    case JobEnd::kKilled:
      return "killed";
  }
  return "?";
}

}  // namespace det::experiment
