#include "det/util/log.h"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/strings.h"

namespace det::util {
namespace {
namespace fs = std::filesystem;

// The logger is process-wide: every test leaves it as it found it (info, console unfiltered).
class LogTest : public ::testing::Test {
 protected:
  void TearDown() override {
    set_log_level("info");
    set_console_level("trace");
  }
};

// What reached stderr, one entry per line, without the "[time] " prefix and without colour
// codes (the console sink colours the level when stderr was a terminal when it was made).
std::vector<std::string> console_lines(const std::string& captured) {
  const std::string plain = std::regex_replace(captured, std::regex("\x1b\\[[0-9;]*m"), "");
  std::vector<std::string> out;
  for (const auto& line : split(plain, '\n')) {
    if (line.empty()) continue;
    const auto close = line.find("] ");
    out.push_back(close == std::string::npos ? line : line.substr(close + 2));
  }
  return out;
}

TEST_F(LogTest, TheLevelFiltersWhatIsLogged) {
  ::testing::internal::CaptureStderr();
  logger()->debug("hidden at info");
  logger()->info("shown at info");
  set_log_level("warn");
  logger()->info("hidden at warn");
  logger()->warn("shown at warn");
  set_log_level("debug");
  logger()->debug("shown at debug");
  logger()->trace("hidden at debug");
  logger()->flush();
  EXPECT_EQ(console_lines(::testing::internal::GetCapturedStderr()),
            (std::vector<std::string>{"[info] shown at info", "[warning] shown at warn",
                                      "[debug] shown at debug"}));
}

TEST_F(LogTest, AFileGetsDebugLinesTheConsoleLevelHides) {
  const fs::path file = fs::temp_directory_path() / ("det-log-" + std::to_string(::getpid()));
  fs::remove(file);
  add_log_file(file);
  set_log_level("debug");
  set_console_level("error");
  ::testing::internal::CaptureStderr();
  logger()->trace("t-line");
  logger()->debug("d-line");
  logger()->warn("w-line");
  logger()->error("e-line");
  logger()->flush();
  EXPECT_EQ(console_lines(::testing::internal::GetCapturedStderr()),
            std::vector<std::string>{"[error] e-line"});
  EXPECT_EQ(console_lines(read_file(file)),
            (std::vector<std::string>{"[debug] d-line", "[warning] w-line", "[error] e-line"}));
  fs::remove(file);
}

TEST_F(LogTest, ControlCharactersReachTheConsoleEscaped) {
  ::testing::internal::CaptureStderr();
  logger()->info("file a\nb\x1b[2Jc.jpg");
  logger()->flush();
  EXPECT_EQ(console_lines(::testing::internal::GetCapturedStderr()),
            std::vector<std::string>{"[info] file a\\nb\\x1b[2Jc.jpg"});
}

TEST_F(LogTest, TheConsoleHookRunsBeforeEachShownLineAndOnlyItsOwnerRemovesIt) {
  int owner = 0, other = 0;
  int calls = 0;
  set_before_console_line(&owner, [&calls] { ++calls; });
  ::testing::internal::CaptureStderr();
  logger()->info("one");
  logger()->info("two");
  logger()->debug("filtered: no line, no call");
  EXPECT_EQ(calls, 2);
  set_before_console_line(&other, {});  // not its hook: it stays
  logger()->info("three");
  EXPECT_EQ(calls, 3);
  set_before_console_line(&owner, {});
  logger()->info("four");
  logger()->flush();
  ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(calls, 3);
}

TEST_F(LogTest, AnUnknownLevelIsRefusedNotReadAsOff) {
  try {
    det::util::set_log_level("verbose");
    FAIL() << "accepted";
  } catch (const det::UsageError& e) {
    EXPECT_EQ(std::string(e.what()),
              "log level 'verbose' is not one of trace, debug, info, warn, error, critical, off");
  }
  EXPECT_THROW(det::util::set_console_level("INFO"), det::UsageError);
  EXPECT_NE(det::util::logger()->level(), spdlog::level::off);
}

}  // namespace
}  // namespace det::util
