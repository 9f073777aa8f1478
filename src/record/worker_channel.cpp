#include "det/record/worker_channel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "det/util/error.h"
#include "det/util/process.h"

namespace det::record {
namespace fs = std::filesystem;

ChannelFiles ChannelFiles::of(const fs::path& trial_dir, int launch) {
  const fs::path dir = trial_dir / "channel";
  const std::string stem = "launch-" + std::to_string(launch);
  return {dir / (stem + ".events"), dir / (stem + ".answers")};
}

namespace {

[[noreturn]] void fail(const std::string& what, const fs::path& path, int err) {
  std::string msg = what + " " + path.string() + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT || err == EROFS) throw StorageError(msg);
  throw Error(msg);
}

}  // namespace

void append_channel_line(const fs::path& path, const std::string& line) {
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  const std::string bytes = line + "\n";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot open the worker channel", path, errno);
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = n < 0 ? errno : EIO;
      ::close(fd);
      fail("cannot write to the worker channel", path, err);
    }
    done += static_cast<size_t>(n);
  }
  // close() is where a network file system sends the data (and reports a full disk).
  if (::close(fd) != 0 && errno != EINTR) fail("cannot write to the worker channel", path, errno);
}

LineTail::LineTail(fs::path path, uint64_t offset, size_t max_line)
    : path_(std::move(path)), offset_(offset), max_line_(max_line) {}

std::vector<std::pair<std::string, uint64_t>> LineTail::read() {
  std::vector<std::pair<std::string, uint64_t>> lines;
  const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return lines;
    fail("cannot read the worker channel", path_, errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("cannot read the worker channel", path_, err);
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < offset_) {
    ::close(fd);
    throw Error("the worker channel " + path_.string() + " shrank from " + std::to_string(offset_) +
                " to " + std::to_string(size) +
                " bytes: something else writes it; each trial launch needs its own");
  }
  // Reads at most one line's limit past the offset per call: what is beyond waits for the next.
  const uint64_t want = std::min<uint64_t>(size - offset_, max_line_ + 1);
  std::string buf(static_cast<size_t>(want), '\0');
  size_t got = 0;
  while (got < buf.size()) {
    const ssize_t n =
        ::pread(fd, buf.data() + got, buf.size() - got, static_cast<off_t>(offset_ + got));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      fail("cannot read the worker channel", path_, err);
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  buf.resize(got);
  // Whole lines only: a partly written last line stays for the next read.
  util::LineBuffer split(max_line_);
  try {
    split.append(buf.data(), buf.size());
  } catch (const Error&) {
    throw Error("the worker channel " + path_.string() + " holds a line of more than " +
                std::to_string(max_line_) + " bytes at byte " + std::to_string(offset_) +
                ": not a det worker's; remove the file and resume the experiment");
  }
  while (auto line = split.next_line()) {
    offset_ += line->size() + 1;
    lines.emplace_back(std::move(*line), offset_);
  }
  return lines;
}

}  // namespace det::record
