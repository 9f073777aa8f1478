#include "det/record/worker_channel.h"

#include <sys/stat.h>

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "det/record/worker_protocol.h"
#include "det/util/error.h"

namespace det::record {
namespace {
namespace fs = std::filesystem;

class WorkerChannel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("det_channel_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void append_raw(const fs::path& p, const std::string& bytes) {
    std::ofstream(p, std::ios::app | std::ios::binary) << bytes;
  }
  fs::path dir_;
};

TEST_F(WorkerChannel, FilesAreNamedByLaunch) {
  auto f = ChannelFiles::of(dir_ / "trial-3", 2);
  EXPECT_EQ(f.events, dir_ / "trial-3" / "channel" / "launch-2.events");
  EXPECT_EQ(f.answers, dir_ / "trial-3" / "channel" / "launch-2.answers");
}

TEST_F(WorkerChannel, ReadsOnlyCompleteLinesAndResumesAtAnOffset) {
  const fs::path p = dir_ / "channel" / "launch-1.events";
  LineTail tail(p);
  EXPECT_TRUE(tail.read().empty()) << "a file not written yet has no lines";
  append_channel_line(p, "one");
  append_channel_line(p, "two");
  struct stat st {};
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the channel is the experiment owner's alone";
  append_raw(p, "thr");  // a line being written
  auto lines = tail.read();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].first, "one");
  EXPECT_EQ(lines[0].second, 4u);
  EXPECT_EQ(lines[1].first, "two");
  EXPECT_EQ(tail.offset(), 8u);
  EXPECT_TRUE(tail.read().empty()) << "the partial line waits for its newline";
  append_raw(p, "ee\n");
  lines = tail.read();
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].first, "three");
  // A reader started again at a saved offset reads on from there (a restarted runner).
  LineTail again(p, 4);
  lines = again.read();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].first, "two");
}

TEST_F(WorkerChannel, RefusesAFileThatShrankOrALineWithoutEnd) {
  const fs::path p = dir_ / "events";
  fs::create_directories(dir_);
  append_raw(p, "abc\n");
  LineTail tail(p, 0, std::nullopt, 16);
  ASSERT_EQ(tail.read().size(), 1u);
  fs::resize_file(p, 2);
  EXPECT_THROW(tail.read(), Error);
  const fs::path q = dir_ / "long";
  append_raw(q, std::string(100, 'x'));  // a hostile file: no newline, past the limit
  LineTail bounded(q, 0, std::nullopt, 16);
  try {
    bounded.read();
    FAIL() << "a line past the limit was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more than 16 bytes"), std::string::npos) << e.what();
  }
}

// Issue 23 item 4: a channel file deleted (and made again) or replaced while a trial runs is
// another file: read at the old offset it lost a partial line and hung runner and worker.
TEST_F(WorkerChannel, RefusesAFileDeletedOrReplacedAfterItWasRead) {
  const fs::path p = dir_ / "events";
  fs::create_directories(dir_);
  append_raw(p, "one\n");
  LineTail tail(p);
  ASSERT_EQ(tail.read().size(), 1u);
  ASSERT_TRUE(tail.file().has_value());
  fs::remove(p);
  try {
    tail.read();
    FAIL() << "a deleted channel file was read as not written yet";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("events was deleted after 4 bytes were read from it"),
              std::string::npos)
        << e.what();
  }
  // Made again, longer than the old offset: another inode, refused (a new reader that is told
  // which file was read, as the runner's readers are, too).
  append_raw(p, "two\nthree\n");
  EXPECT_THROW(tail.read(), Error);
  LineTail again(p, 4, tail.file());
  try {
    again.read();
    FAIL() << "a replaced channel file was read at the old offset";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("was replaced by another file"), std::string::npos)
        << e.what();
  }
  // Before anything was read, a missing file is simply not written yet.
  LineTail fresh(dir_ / "not-yet");
  EXPECT_TRUE(fresh.read().empty());
}

TEST_F(WorkerChannel, RefusesControlBytesAndFilesThatAreNotRegular) {
  ::alarm(30);  // a FIFO that blocks kills the test in 30 s instead of hanging it
  const fs::path p = dir_ / "events";
  fs::create_directories(dir_);
  append_raw(p, std::string("{\"v\":3}\n{\"x\0\":1}\n", 17));
  LineTail tail(p);
  try {
    tail.read();
    FAIL() << "a line with a NUL was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a det channel line (control byte 0)"),
              std::string::npos)
        << e.what();
  }
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  LineTail on_fifo(fifo);
  try {
    on_fifo.read();  // must not block on a FIFO without a writer
    FAIL() << "a FIFO was read as a channel file";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is not a regular file"), std::string::npos) << e.what();
  }
  ::alarm(0);
}

TEST_F(WorkerChannel, AnswersNameTheEventTheyAnswer) {
  RunnerAnswer a;
  a.kind = RunnerAnswer::Kind::kTarget;
  a.target = 200;
  a.re = 7;
  std::string line = encode(a);
  EXPECT_NE(line.find("\"re\":7"), std::string::npos) << line;
  line.pop_back();
  RunnerAnswer back = decode_answer(line);
  EXPECT_EQ(back.kind, RunnerAnswer::Kind::kTarget);
  EXPECT_EQ(back.target, 200);
  EXPECT_EQ(back.re, 7);
  // Version 2's answers had no "re".
  EXPECT_EQ(decode_answer(R"({"v":2,"exit":true})").re, -1);
}

}  // namespace
}  // namespace det::record
