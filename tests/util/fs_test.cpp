#include "det/util/fs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "det/util/error.h"
#include "support/test_support.h"

namespace det::util {
namespace {
namespace fs = std::filesystem;

// A fresh directory of its own for each test, removed afterwards.
class FsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("det-fs-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<std::string> names_in(const fs::path& d) const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(d)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
};

TEST_F(FsTest, AtomicWriteCreatesDirectoriesReplacesAndLeavesNoTemporary) {
  const fs::path file = dir_ / "a" / "b" / "state.json";
  write_file_atomic(file, "first");
  EXPECT_EQ(read_file(file), "first");
  write_file_atomic(file, std::string("second\0with a NUL", 17));
  EXPECT_EQ(read_file(file), std::string("second\0with a NUL", 17));
  write_file_atomic(file, "");
  EXPECT_EQ(read_file(file), "");
  EXPECT_EQ(names_in(file.parent_path()), std::vector<std::string>{"state.json"});
}

TEST_F(FsTest, AtomicWriteThatCannotRenameKeepsTheTargetAndRemovesItsTemporary) {
  // The target is a non-empty directory: the temporary is written, the rename fails.
  const fs::path target = dir_ / "taken";
  fs::create_directories(target / "inside");
  const std::string msg = test::error_of<Error>([&] { write_file_atomic(target, "x"); });
  EXPECT_EQ(msg.rfind("cannot rename " + target.string() + ".tmp-", 0), 0u) << msg;
  EXPECT_NE(msg.find(" to " + target.string() + ": "), std::string::npos) << msg;
  EXPECT_TRUE(fs::is_directory(target / "inside"));
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"taken"});
}

TEST_F(FsTest, AtomicWriteUnderARegularFileNamesTheDirectory) {
  write_file_atomic(dir_ / "plain", "x");
  const std::string msg =
      test::error_of<Error>([&] { write_file_atomic(dir_ / "plain" / "f", "y"); });
  EXPECT_EQ(msg.rfind("cannot create " + (dir_ / "plain").string() + ": ", 0), 0u) << msg;
  EXPECT_EQ(read_file(dir_ / "plain"), "x");
}

TEST_F(FsTest, ReadFileIsBoundedByItsLimit) {
  const fs::path file = dir_ / "ten";
  write_file_atomic(file, "0123456789");
  EXPECT_EQ(read_file(file, 10, "a test file"), "0123456789");
  EXPECT_EQ(test::error_of<Error>([&] { read_file(file, 9, "a test file"); }),
            file.string() + ": holds 10 bytes, more than the 9 bytes a test file may hold");
}

TEST_F(FsTest, ReadFileRefusesFifosDirectoriesAndMissingFilesByName) {
  const fs::path fifo = dir_ / "fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  // A FIFO without a writer would block a plain open forever: it is refused at once. Should
  // the open block, a writer turns up after a second, so the test fails instead of hanging.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread unblock([&] {
    std::unique_lock<std::mutex> lock(mu);
    if (cv.wait_for(lock, std::chrono::seconds(1), [&] { return done; })) return;
    const int fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
  });
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(test::error_of<Error>([&] { read_file(fifo); }),
            fifo.string() + ": not a regular file (a FIFO)");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  unblock.join();
  EXPECT_EQ(test::error_of<Error>([&] { read_file(dir_); }),
            dir_.string() + ": not a regular file (a directory)");
  EXPECT_EQ(test::error_of<Error>([&] { read_file(dir_ / "missing"); }),
            (dir_ / "missing").string() + ": cannot open (No such file or directory)");
  EXPECT_EQ(test::error_of<Error>([&] { read_file("/dev/null"); }),
            "/dev/null: not a regular file (a character device)");
}

TEST_F(FsTest, ReadFileThrowsThroughItsThrowerWithTheHint) {
  const fs::path missing = dir_ / "missing.bin";
  EXPECT_EQ(test::error_of<DataError>(
                [&] { ReadFile f(missing, &throw_as<DataError>, "download it first"); }),
            missing.string() + ": cannot open (No such file or directory); download it first");
  EXPECT_EQ(test::error_of<CheckpointError>([&] { ReadFile f(dir_, &throw_as<CheckpointError>); }),
            dir_.string() + ": not a regular file (a directory)");
}

TEST_F(FsTest, ReadAtReadsAtOffsetsAndReportsAShortFile) {
  const fs::path file = dir_ / "data";
  write_file_atomic(file, "abcdefgh");
  ReadFile f(file, &throw_as<DataError>);
  EXPECT_EQ(f.size(), 8u);
  EXPECT_EQ(f.path(), file);
  char buf[4] = {};
  f.read_at(buf, 3, 5, "the tail");
  EXPECT_EQ(std::string(buf, 3), "fgh");
  EXPECT_EQ(test::error_of<DataError>([&] { f.read_at(buf, 4, 6, "the tail"); }),
            file.string() + ": cannot read the tail (the file shrank while read)");
  // read_all holds the size seen at open: a file cut after it was opened is reported.
  ASSERT_EQ(::truncate(file.c_str(), 2), 0);
  EXPECT_EQ(test::error_of<DataError>([&] { f.read_all(100, "the record"); }),
            file.string() + ": cannot read the record (the file shrank while read)");
}

TEST_F(FsTest, ProcPathOpensTheCheckedFileEvenAfterItsNameIsGone) {
  const fs::path file = dir_ / "opened";
  write_file_atomic(file, "the checked bytes");
  ReadFile f(file);
  write_file_atomic(file, "a replacement");  // the name now points at another file
  std::ifstream in(f.proc_path(), std::ios::binary);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, "the checked bytes");
  EXPECT_EQ(f.proc_path(), "/proc/self/fd/" + std::to_string(f.fd()));
}

TEST_F(FsTest, AppendCreatesTheDirectoryAndAddsInOrder) {
  const fs::path file = dir_ / "logs" / "events.txt";
  append_line(file, "one");
  append_bytes(file, "two");
  append_line(file, "-three");
  EXPECT_EQ(read_file(file), "one\ntwo-three\n");
}

TEST_F(FsTest, AFullDiskIsAStorageError) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full here";
  EXPECT_EQ(test::error_of<StorageError>([] { append_bytes("/dev/full", "x"); }),
            "cannot write /dev/full: No space left on device (free space, then continue)");
}

TEST_F(FsTest, Crc32MatchesZlibAcrossItsReadChunks) {
  const fs::path check = dir_ / "check";
  write_file_atomic(check, "123456789");
  EXPECT_EQ(file_crc32(check), 0xCBF43926u);  // CRC-32's published check value
  // Larger than the 1 MiB read buffer, not a multiple of it.
  std::string big((3u << 20) + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131 + i / 7) & 0xff);
  write_file_atomic(dir_ / "big", big);
  const auto expected =
      static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(big.data()),
                                  static_cast<uInt>(big.size())));
  EXPECT_EQ(file_crc32(dir_ / "big"), expected);
  EXPECT_EQ(test::error_of<Error>([&] { file_crc32(dir_ / "none"); }),
            (dir_ / "none").string() + ": cannot open (No such file or directory)");
}

}  // namespace
}  // namespace det::util
