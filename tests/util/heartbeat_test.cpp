#include "det/util/heartbeat.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "det/util/error.h"

namespace det::util {
namespace {
namespace fs = std::filesystem;
using std::chrono::milliseconds;

fs::path test_path(const std::string& name) {
  return fs::temp_directory_path() / ("det-heartbeat-" + std::to_string(::getpid()) + "-" + name);
}

// Sets the file's modification time `seconds` into the past, as a hung process would leave it.
void age_by(const fs::path& path, int seconds) {
  struct timespec now {};
  ::clock_gettime(CLOCK_REALTIME, &now);
  struct timespec times[2] = {now, now};
  times[1].tv_sec -= seconds;
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
}

TEST(Heartbeat, MissingFileHasANegativeAge) {
  EXPECT_LT(Heartbeat::age_seconds(test_path("never-created")), 0.0);
}

TEST(Heartbeat, AgeIsTheTimeSinceTheLastTouch) {
  const fs::path p = test_path("age");
  { std::ofstream(p.string()) << "x"; }
  age_by(p, 100);
  const double age = Heartbeat::age_seconds(p);
  EXPECT_GE(age, 100.0);
  EXPECT_LT(age, 101.0);
  fs::remove(p);
}

TEST(Heartbeat, CreatesTheFileAndTouchesItEveryInterval) {
  const fs::path p = test_path("beat");
  fs::remove(p);
  Heartbeat beat(p, milliseconds(20));
  ASSERT_TRUE(fs::is_regular_file(p));
  EXPECT_LT(Heartbeat::age_seconds(p), 1.0);
  // A stale time is overwritten within a few intervals, and again after a second staling.
  for (int round = 0; round < 2; ++round) {
    age_by(p, 100);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (Heartbeat::age_seconds(p) > 50 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(5));
    EXPECT_LT(Heartbeat::age_seconds(p), 1.0) << "round " << round;
  }
  fs::remove(p);
}

TEST(Heartbeat, StopsTouchingOnceDestroyedAndStopsAtOnce) {
  const fs::path p = test_path("stop");
  const auto start = std::chrono::steady_clock::now();
  {
    // A long interval: the destructor wakes the thread instead of waiting the interval out.
    Heartbeat beat(p, std::chrono::seconds(30));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  { Heartbeat beat(p, milliseconds(10)); }
  age_by(p, 100);
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_GE(Heartbeat::age_seconds(p), 100.0);
  fs::remove(p);
}

TEST(Heartbeat, KeepsAnExistingFilesContent) {
  const fs::path p = test_path("content");
  { std::ofstream(p.string()) << "rank 3"; }
  { Heartbeat beat(p, milliseconds(10)); }
  std::ifstream in(p.string());
  std::string got;
  std::getline(in, got);
  EXPECT_EQ(got, "rank 3");
  fs::remove(p);
}

TEST(Heartbeat, AFileThatCannotBeCreatedIsAnErrorNamingIt) {
  const fs::path p = test_path("no-such-dir") / "beat";
  try {
    Heartbeat beat(p, milliseconds(10));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot create the heartbeat file " + p.string() + ": No such file or directory");
  }
}

}  // namespace
}  // namespace det::util
