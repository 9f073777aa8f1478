// The restart and preemption policy on a table of cases: every way a trial's job can end.

#include "experiment/restart_policy.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

namespace det::experiment {
namespace {

using Reason = record::WorkerExit::Reason;
using record::TrialStatus;
using search::ExitedReason;

struct Case {
  std::string name;
  JobEndFacts facts;
  JobEndDecision want;
};

JobEndFacts facts(std::optional<Reason> reason, int code) {
  JobEndFacts f;
  f.exit_reason = reason;
  f.exit_code = code;
  f.has_target = true;
  f.max_restarts = 2;
  return f;
}

template <typename Edit>
JobEndFacts with(JobEndFacts f, Edit edit) {
  edit(f);
  return f;
}

JobEndDecision decision(JobEnd kind, TrialStatus next) {
  JobEndDecision d;
  d.kind = kind;
  d.next = next;
  return d;
}

template <typename Edit>
JobEndDecision with(JobEndDecision d, Edit edit) {
  edit(d);
  return d;
}

std::vector<Case> cases() {
  const auto no_target = [](JobEndFacts& f) { f.has_target = false; };
  const auto stopping = [](JobEndFacts& f) { f.stopping = true; };
  const auto enqueue = [](JobEndDecision& d) { d.enqueue = true; };
  const auto restart = [](JobEndDecision& d) { d.count_restart = true; };
  const JobEndFacts preempted = with(facts(std::nullopt, -1), [](JobEndFacts& f) {
    f.never_ran = true;
    f.cancelled_by_scheduler = true;
  });
  const JobEndFacts crashed = facts(std::nullopt, -1);
  const JobEndFacts errored = facts(Reason::kError, 1);
  return {
      // Cancelled or preempted before a word: submitted again, no restart counted.
      {"preempted_before_start", preempted,
       with(decision(JobEnd::kResubmit, TrialStatus::kQueued), enqueue)},
      {"preempted_before_start_without_target", with(preempted, no_target),
       decision(JobEnd::kResubmit, TrialStatus::kPaused)},
      // ... but while stopping, or once it said something, it is a failure like any other.
      {"preempted_while_stopping", with(preempted, stopping),
       decision(JobEnd::kFailedWhileStopping, TrialStatus::kQueued)},
      {"preempted_after_events", with(preempted, [](JobEndFacts& f) { f.never_ran = false; }),
       with(decision(JobEnd::kRestart, TrialStatus::kQueued),
            [](JobEndDecision& d) { d.enqueue = d.count_restart = true; })},
      {"killed_before_a_word_not_by_the_scheduler",
       with(crashed, [](JobEndFacts& f) { f.never_ran = true; }),
       with(decision(JobEnd::kRestart, TrialStatus::kQueued),
            [](JobEndDecision& d) { d.enqueue = d.count_restart = true; })},
      // The worker's own last words.
      {"invalid_hp", facts(Reason::kInvalidHP, record::kWorkerExitInvalidHP),
       with(decision(JobEnd::kInvalidHP, TrialStatus::kInvalidHP),
            [](JobEndDecision& d) {
              d.clear_target = d.keep_message = true;
              d.exited_early = ExitedReason::kInvalidHP;
            })},
      {"invalid_hp_said_but_crashed", facts(Reason::kInvalidHP, -1),
       with(decision(JobEnd::kRestart, TrialStatus::kQueued),
            [](JobEndDecision& d) { d.enqueue = d.count_restart = true; })},
      {"storage_full", facts(Reason::kStorage, 1),
       with(decision(JobEnd::kStorageFull, TrialStatus::kQueued),
            [](JobEndDecision& d) { d.stop_experiment = true; })},
      {"storage_full_while_stopping", with(facts(Reason::kStorage, 1), stopping),
       decision(JobEnd::kStorageFull, TrialStatus::kQueued)},
      {"storage_full_without_target", with(facts(Reason::kStorage, 1), no_target),
       with(decision(JobEnd::kStorageFull, TrialStatus::kPaused),
            [](JobEndDecision& d) { d.stop_experiment = true; })},
      {"non_finite", facts(Reason::kNonFinite, 1),
       with(decision(JobEnd::kNonFinite, TrialStatus::kError),
            [](JobEndDecision& d) {
              d.clear_target = d.keep_message = true;
              d.exited_early = ExitedReason::kErrored;
            })},
      {"stop_requested", facts(Reason::kStopRequested, 0),
       with(decision(JobEnd::kStopRequested, TrialStatus::kCompleted),
            [](JobEndDecision& d) {
              d.clear_target = true;
              d.exited_early = ExitedReason::kUserCanceled;
            })},
      {"stop_requested_but_failed_exit", facts(Reason::kStopRequested, 1),
       with(decision(JobEnd::kRestart, TrialStatus::kQueued),
            [](JobEndDecision& d) { d.enqueue = d.count_restart = true; })},
      // Paused, closed, or stopped by the runner.
      {"paused_with_new_target", facts(Reason::kCompleted, 0),
       with(decision(JobEnd::kPaused, TrialStatus::kQueued), enqueue)},
      {"paused_without_target", with(facts(Reason::kCompleted, 0), no_target),
       decision(JobEnd::kPaused, TrialStatus::kPaused)},
      {"closed",
       with(facts(Reason::kCompleted, 0),
            [](JobEndFacts& f) {
              f.has_target = false;
              f.close_requested = true;
            }),
       with(decision(JobEnd::kPaused, TrialStatus::kCompleted),
            [](JobEndDecision& d) { d.close = true; })},
      {"close_requested_with_target_trains_on",
       with(facts(Reason::kCompleted, 0), [](JobEndFacts& f) { f.close_requested = true; }),
       with(decision(JobEnd::kPaused, TrialStatus::kQueued), enqueue)},
      {"stopped_by_runner", with(facts(Reason::kStopped, 130), stopping),
       decision(JobEnd::kPaused, TrialStatus::kQueued)},
      {"stopped_by_runner_without_target",
       with(with(facts(Reason::kStopped, 130), stopping), no_target),
       decision(JobEnd::kPaused, TrialStatus::kPaused)},
      {"stopped_with_wrong_code", facts(Reason::kStopped, 1),
       with(decision(JobEnd::kRestart, TrialStatus::kQueued),
            [](JobEndDecision& d) { d.enqueue = d.count_restart = true; })},
      {"completed_with_wrong_code", facts(Reason::kCompleted, 1),
       with(decision(JobEnd::kRestart, TrialStatus::kQueued),
            [](JobEndDecision& d) { d.enqueue = d.count_restart = true; })},
      // Failures: restarted up to max_restarts (2 here), then ERROR.
      {"crash_first_restart", crashed,
       with(decision(JobEnd::kRestart, TrialStatus::kQueued),
            [](JobEndDecision& d) { d.enqueue = d.count_restart = true; })},
      {"error_last_restart", with(errored, [](JobEndFacts& f) { f.restarts = 1; }),
       with(decision(JobEnd::kRestart, TrialStatus::kQueued),
            [](JobEndDecision& d) { d.enqueue = d.count_restart = true; })},
      {"error_restarts_exhausted", with(errored, [](JobEndFacts& f) { f.restarts = 2; }),
       with(decision(JobEnd::kRestartsExhausted, TrialStatus::kError),
            [](JobEndDecision& d) {
              d.count_restart = d.clear_target = true;
              d.exited_early = ExitedReason::kErrored;
            })},
      {"no_restarts_allowed", with(crashed, [](JobEndFacts& f) { f.max_restarts = 0; }),
       with(decision(JobEnd::kRestartsExhausted, TrialStatus::kError),
            [](JobEndDecision& d) {
              d.count_restart = d.clear_target = true;
              d.exited_early = ExitedReason::kErrored;
            })},
      {"crash_without_target", with(crashed, no_target),
       with(decision(JobEnd::kRestart, TrialStatus::kPaused), restart)},
      {"crash_while_closing",
       with(crashed,
            [](JobEndFacts& f) {
              f.has_target = false;
              f.close_requested = true;
            }),
       with(decision(JobEnd::kRestart, TrialStatus::kCompleted),
            [](JobEndDecision& d) { d.count_restart = d.close = true; })},
      {"crash_while_stopping", with(crashed, stopping),
       decision(JobEnd::kFailedWhileStopping, TrialStatus::kQueued)},
      {"crash_while_stopping_without_target", with(with(crashed, stopping), no_target),
       decision(JobEnd::kFailedWhileStopping, TrialStatus::kPaused)},
      // det-run kill-trial: over, no checkpoint, the searcher told; det-run kill (the experiment
      // stops): over, the searcher not told; whatever the worker said before it died.
      {"killed_trial", with(crashed, [](JobEndFacts& f) { f.killed = true; }),
       with(decision(JobEnd::kKilled, TrialStatus::kCanceled),
            [](JobEndDecision& d) {
              d.clear_target = true;
              d.exited_early = ExitedReason::kUserCanceled;
            })},
      {"killed_with_the_experiment",
       with(with(facts(Reason::kStopped, 130), stopping), [](JobEndFacts& f) { f.killed = true; }),
       with(decision(JobEnd::kKilled, TrialStatus::kCanceled),
            [](JobEndDecision& d) { d.clear_target = true; })},
  };
}

std::string describe(const JobEndDecision& d) {
  return std::string(job_end_name(d.kind)) + " -> " + record::to_string(d.next) +
         " enqueue=" + std::to_string(d.enqueue) +
         " clear_target=" + std::to_string(d.clear_target) +
         " count_restart=" + std::to_string(d.count_restart) +
         " keep_message=" + std::to_string(d.keep_message) +
         " stop_experiment=" + std::to_string(d.stop_experiment) + " exited_early=" +
         (d.exited_early ? std::to_string(static_cast<int>(*d.exited_early)) : "-") +
         " close=" + std::to_string(d.close);
}

TEST(RestartPolicy, DecidesEveryCaseOfTheTable) {
  for (const auto& c : cases()) {
    const JobEndDecision got = decide_job_end(c.facts);
    EXPECT_TRUE(got == c.want) << c.name << ": got " << describe(got) << ", want "
                               << describe(c.want);
  }
}

TEST(RestartPolicy, NamesEveryCase) {
  std::set<std::string> names;
  for (const auto& c : cases()) names.insert(job_end_name(c.want.kind));
  EXPECT_EQ(names.size(), 10u) << "the table covers every JobEnd";
}

TEST(RestartPolicy, LogLinesSayWhatHappensNext) {
  JobEndContext c;
  c.trial = 4;
  c.why = "it was killed by signal 9";
  c.restarts = 2;
  c.max_restarts = 5;
  c.checkpoint = "/r/trial-4/checkpoints/u";
  const auto restart = describe_job_end(decision(JobEnd::kRestart, TrialStatus::kQueued), c);
  EXPECT_EQ(restart.level, JobEndLog::Level::kWarn);
  EXPECT_EQ(restart.text,
            "trial 4: the worker failed (it was killed by signal 9); restart 2 of 5 from "
            "/r/trial-4/checkpoints/u");
  c.checkpoint.clear();
  EXPECT_NE(describe_job_end(decision(JobEnd::kRestart, TrialStatus::kQueued), c)
                .text.find("from the start"),
            std::string::npos);
  const auto exhausted =
      describe_job_end(decision(JobEnd::kRestartsExhausted, TrialStatus::kError), c);
  EXPECT_EQ(exhausted.level, JobEndLog::Level::kError);
  EXPECT_NE(exhausted.text.find("max_restarts (5) reached"), std::string::npos);
  EXPECT_EQ(describe_job_end(decision(JobEnd::kPaused, TrialStatus::kPaused), c).level,
            JobEndLog::Level::kNone);
  c.job_state = "PREEMPTED";
  EXPECT_EQ(describe_job_end(decision(JobEnd::kResubmit, TrialStatus::kQueued), c).text,
            "trial 4: its job was PREEMPTED before it started; submitting it again");
}

}  // namespace
}  // namespace det::experiment
