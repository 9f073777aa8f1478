// The runner's lock and its control/ inbox (det/experiment/control.h), without a runner.

#include "det/experiment/control.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "det/record/run_dir.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "support/test_support.h"

namespace det::experiment {
namespace {
namespace fs = std::filesystem;
using CommandKind = record::ControlCommand::Kind;

fs::path fresh(const std::string& name) {
  fs::path d =
      fs::temp_directory_path() / ("det-control-test-" + std::to_string(::getpid())) / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(RunnerLock, OneRunnerPerRunDirectoryAndItsHolderIsNamed) {
  const fs::path dir = fresh("lock");
  EXPECT_FALSE(RunnerLock::holder(dir));
  {
    RunnerLock lock(dir);
    auto who = RunnerLock::holder(dir);
    ASSERT_TRUE(who);
    EXPECT_CONTAINS(*who, "pid " + std::to_string(::getpid()));
    EXPECT_CONTAINS(test::error_of<Error>([&] { RunnerLock again(dir); }),
                    "is being run by det-run (pid " + std::to_string(::getpid()));
  }
  EXPECT_FALSE(RunnerLock::holder(dir)) << "the lock outlived its runner";
}

TEST(ControlInbox, CommandsInOrderAndAMalformedOneIsAnsweredWithItsError) {
  const fs::path dir = fresh("inbox");
  ControlInbox inbox(dir);
  const fs::path control = record::RunDir(dir).control();
  util::write_file_atomic(control / "00000000000000000002-1.json",
                          R"({"v":1,"command":"set_max_slots","slots":3})");
  util::write_file_atomic(control / "00000000000000000001-1.json", R"({"v":1,"command":"pause"})");
  util::write_file_atomic(control / "00000000000000000003-1.json", "not json");
  auto pending = inbox.pending();
  ASSERT_EQ(pending.size(), 2u);
  EXPECT_EQ(pending[0].second.kind, CommandKind::kPause);
  EXPECT_EQ(pending[1].second.kind, CommandKind::kSetMaxSlots);
  EXPECT_EQ(pending[1].second.slots, 3);
  EXPECT_FALSE(fs::exists(control / "00000000000000000003-1.json"));
  auto bad = record::ControlAnswer::from_json(
      nlohmann::json::parse(util::read_file(control / "00000000000000000003-1.answer")), "a");
  EXPECT_FALSE(bad.ok);
  inbox.answer(pending[0].first, {true, "pausing"});
  EXPECT_FALSE(fs::exists(control / "00000000000000000001-1.json"));
  EXPECT_TRUE(fs::exists(control / "00000000000000000001-1.answer"));
  EXPECT_EQ(inbox.pending().size(), 1u);
}

TEST(SendControl, NoRunnerIsOneLineNamingTheResume) {
  const fs::path dir = fresh("orphan");
  record::ControlCommand c;
  c.kind = CommandKind::kActivate;
  const std::string e =
      test::error_of<Error>([&] { send_control(dir, c, std::chrono::milliseconds(200)); });
  EXPECT_CONTAINS(e, "no det-run runs the experiment in " + dir.string());
  EXPECT_CONTAINS(e, "det-run --resume-experiment " + dir.string() + " (then activate it)");
}

TEST(SendControl, ARunnerThatDoesNotAnswerIsNamedAfterTheTimeout) {
  const fs::path dir = fresh("silent");
  RunnerLock lock(dir);  // "runs", but never reads its inbox
  record::ControlCommand c;
  const auto t0 = std::chrono::steady_clock::now();
  const std::string e =
      test::error_of<Error>([&] { send_control(dir, c, std::chrono::milliseconds(300)); });
  EXPECT_CONTAINS(e, "did not answer 'pause'");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_TRUE(fs::is_empty(record::RunDir(dir).control())) << "the unanswered command was left";
}

}  // namespace
}  // namespace det::experiment
