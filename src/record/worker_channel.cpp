#include "det/record/worker_channel.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "det/record/run_dir.h"
#include "det/util/error.h"
#include "det/util/process.h"

namespace det::record {
namespace fs = std::filesystem;

ChannelFiles ChannelFiles::of(const fs::path& trial_dir, int launch) {
  const TrialDir dir(trial_dir);
  return {dir.channel_events(launch), dir.channel_answers(launch)};
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

LineTail::LineTail(fs::path path, uint64_t offset, std::optional<FileId> file, size_t max_line)
    : path_(std::move(path)), offset_(offset), file_(file), max_line_(max_line) {}

void LineTail::fail_changed(const std::string& what) const {
  throw Error("the worker channel " + path_.string() + " " + what + " after " +
              std::to_string(offset_) +
              " bytes were read from it: something else deletes or writes it; each trial launch "
              "needs its own (the worker is stopped and the trial goes on from its checkpoint)");
}

LineTail::~LineTail() {
  if (fd_ >= 0) ::close(fd_);
}

bool LineTail::open_file() {
  const int fd = ::open(path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT && !file_ && offset_ == 0) return false;  // not written yet
    if (errno == ENOENT) fail_changed("was deleted");
    fail("cannot read the worker channel", path_, errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    fail("cannot read the worker channel", path_, err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("the worker channel " + path_.string() +
                " is not a regular file: something else made it; each trial launch needs its own");
  }
  const FileId id{static_cast<uint64_t>(st.st_dev), static_cast<uint64_t>(st.st_ino)};
  if (file_ && !(*file_ == id)) {
    ::close(fd);
    fail_changed("was replaced by another file");
  }
  file_ = id;
  fd_ = fd;
  return true;
}

// The open file still has its name: not deleted (no links left), not replaced under it.
void LineTail::check_same_file() const {
  struct stat held {
  }, named{};
  if (::fstat(fd_, &held) != 0) fail("cannot read the worker channel", path_, errno);
  if (held.st_nlink == 0) fail_changed("was deleted");
  if (::stat(path_.c_str(), &named) != 0) {
    if (errno == ENOENT) fail_changed("was deleted");
    fail("cannot read the worker channel", path_, errno);
  }
  if (named.st_dev != held.st_dev || named.st_ino != held.st_ino)
    fail_changed("was replaced by another file");
}

std::vector<std::pair<std::string, uint64_t>> LineTail::read() {
  std::vector<std::pair<std::string, uint64_t>> lines;
  if (fd_ < 0) {
    if (!open_file()) return lines;
  } else {
    check_same_file();
  }
  const int fd = fd_;
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail("cannot read the worker channel", path_, errno);
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size < offset_) {
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
    if (n < 0) fail("cannot read the worker channel", path_, errno);
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
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
    // Lines are JSON text: a NUL or another control byte was never written by det.
    for (char c : *line)
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t')
        throw Error("the worker channel " + path_.string() + " holds a line at byte " +
                    std::to_string(offset_) + " that is not a det channel line (control byte " +
                    std::to_string(static_cast<unsigned char>(c)) +
                    "): something else writes it; each trial launch needs its own");
    offset_ += line->size() + 1;
    lines.emplace_back(std::move(*line), offset_);
  }
  return lines;
}

}  // namespace det::record
