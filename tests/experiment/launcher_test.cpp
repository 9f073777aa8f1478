// What a trial's worker is started with, and what the runner answers it (the runner's
// integration tests in runner_test.cpp run the same through real workers).

#include "experiment/launcher.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace det::experiment {
namespace {

TEST(Launcher, WorkerCommandLine) {
  WorkerLaunch w;
  w.executable = "/bin/det-run";
  w.run_dir = "/r/e";
  w.trial = 3;
  w.target = 200;
  w.launch = 2;
  using V = std::vector<std::string>;
  const V base = {"/bin/det-run", "__worker", "--run-dir", "/r/e", "--trial", "3",
                  "--target",     "200",      "--launch",  "2"};
  V want = base;
  want.push_back("--no-progress");
  EXPECT_EQ(worker_argv(w), want);
  w.own_progress = true;
  EXPECT_EQ(worker_argv(w), base);
  w.resume = "/r/e/trial-3/checkpoints/u";
  w.quiet_console = true;
  w.threads = 4;
  w.extra_args = {"--log-level", "debug"};
  want = base;
  for (const char* a : {"--resume", "/r/e/trial-3/checkpoints/u", "--console-level", "warn",
                        "--threads", "4", "--log-level", "debug"})
    want.push_back(a);
  EXPECT_EQ(worker_argv(w), want);
}

TEST(Launcher, JobTagIsStablePerRunDirectory) {
  EXPECT_EQ(job_tag("/r/e"), job_tag("/r/e"));
  EXPECT_NE(job_tag("/r/e"), job_tag("/r/f"));
  EXPECT_EQ(job_tag("/r/e").rfind("det-", 0), 0u);
  EXPECT_EQ(job_tag("/r/e").size(), 12u);
}

TEST(Launcher, OwedAnswers) {
  using Kind = record::RunnerAnswer::Kind;
  const record::OwedAnswer recorded{record::OwedAnswer::Kind::kRecorded, 4, "u"};
  auto a = answer_for(recorded, 100, false);
  EXPECT_EQ(a.kind, Kind::kRecorded);
  EXPECT_EQ(a.re, 4);
  EXPECT_EQ(a.uuid, "u");
  const record::OwedAnswer decision{record::OwedAnswer::Kind::kDecision, 5, ""};
  a = answer_for(decision, 300, false);
  EXPECT_EQ(a.kind, Kind::kTarget);
  EXPECT_EQ(a.target, 300);
  EXPECT_EQ(answer_for(decision, std::nullopt, false).kind, Kind::kExit);
  EXPECT_EQ(answer_for(decision, 300, true).kind, Kind::kExit);  // stopping: checkpoint, exit
}

TEST(Launcher, ExitCodesOfLastWords) {
  using Reason = record::WorkerExit::Reason;
  EXPECT_EQ(exit_code_for(Reason::kCompleted), 0);
  EXPECT_EQ(exit_code_for(Reason::kStopRequested), 0);
  EXPECT_EQ(exit_code_for(Reason::kStopped), 130);
  EXPECT_EQ(exit_code_for(Reason::kInvalidHP), record::kWorkerExitInvalidHP);
  EXPECT_EQ(exit_code_for(Reason::kError), 1);
  EXPECT_EQ(exit_code_for(Reason::kStorage), 1);
}

}  // namespace
}  // namespace det::experiment
