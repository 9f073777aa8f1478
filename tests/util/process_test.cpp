#include "det/util/process.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <chrono>
#include <thread>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "det/util/error.h"

namespace det::util {
namespace {

TEST(Spawn, ArgumentsReachTheProgramVerbatimWithoutAShell) {
  // A would-be injection is one plain argument: nothing runs, nothing is created.
  const std::string marker = "/tmp/det-spawn-pwned-" + std::to_string(::getpid());
  SpawnOptions o;
  o.argv = {"/bin/echo", "a'$(touch " + marker + ")'b"};
  o.null_stdio = true;
  auto status = run(o, std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
  EXPECT_FALSE(std::filesystem::exists(marker));
}

TEST(Spawn, EnvironmentDescriptorsAndExitStatus) {
  int p[2];
  ASSERT_EQ(::pipe(p), 0);
  SpawnOptions o;
  // The child writes its variable to fd 5, which is the pipe's write end.
  o.argv = {"/bin/sh", "-c", "printf %s \"$DET_X\" >&5; exit 7"};
  o.env = environment({"DET_X"}, {"DET_X=hello"});
  o.fds = {{5, p[1]}};
  pid_t pid = spawn(o);
  ::close(p[1]);
  LineBuffer buf;
  char chunk[64];
  std::string got;
  for (ssize_t n; (n = ::read(p[0], chunk, sizeof chunk)) > 0;)
    got.append(chunk, static_cast<size_t>(n));
  ::close(p[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(exit_code_of(status), 7);
  EXPECT_EQ(describe_wait_status(status), "exited with status 7");
}

TEST(Spawn, MissingProgramExits127AndTimeoutKills) {
  SpawnOptions o;
  o.argv = {"/nonexistent/program"};
  o.null_stdio = true;
  auto status = run(o, std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(exit_code_of(*status), 127);
  o.argv = {"/bin/sleep", "30"};
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(run(o, std::chrono::milliseconds(200)).has_value());
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_THROW(spawn(SpawnOptions{}), Error);
}

TEST(LineBuffer, SplitsLinesAcrossChunksAndBoundsALine) {
  LineBuffer b(16);
  b.append("ab", 2);
  EXPECT_FALSE(b.next_line().has_value());
  b.append("c\nde\nf", 6);
  EXPECT_EQ(*b.next_line(), "abc");
  EXPECT_EQ(*b.next_line(), "de");
  EXPECT_FALSE(b.next_line().has_value());
  EXPECT_EQ(b.pending(), 1u);
  std::string long_line(40, 'x');
  EXPECT_THROW(b.append(long_line.data(), long_line.size()), Error);
}

TEST(ProcessAge, GrowsWithTheProcess) {
  const double a = process_age_seconds();
  EXPECT_GE(a, 0.0);
  EXPECT_LT(a, 3600.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(120));
  const double b = process_age_seconds();
  EXPECT_GE(b - a, 0.09) << a << " then " << b;
  EXPECT_LT(b - a, 2.0);
}

}  // namespace
}  // namespace det::util
