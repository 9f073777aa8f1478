#include "det/util/fs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <vector>

#include "det/util/error.h"

namespace det::util {
namespace fs = std::filesystem;

namespace {
std::string errno_text() { return std::strerror(errno); }

// A full or read-only disk is a StorageError (the experiment stops, resumable), anything else
// a plain det::Error.
[[noreturn]] void fail_io(const std::string& what) {
  const int e = errno;
  const std::string msg = what + ": " + std::strerror(e);
  if (is_storage_errno(e)) throw StorageError(msg + " (free space, then continue)");
  throw Error(msg);
}

void write_all(int fd, const char* data, size_t size, const fs::path& path) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_io("cannot write " + path.string());
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
}
}  // namespace

void fsync_dir(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

void write_file_atomic(const fs::path& path, const std::string& content) {
  fs::path dir = path.parent_path();
  std::error_code ec;
  if (!dir.empty()) fs::create_directories(dir, ec);
  if (ec) {
    errno = ec.value();
    fail_io("cannot create " + dir.string());
  }
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  fs::path tmp = path;
  tmp += ".tmp-" + std::to_string(rng());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail_io("cannot create " + tmp.string());
  try {
    write_all(fd, content.data(), content.size(), path);
    if (::fsync(fd) != 0) fail_io("cannot sync " + path.string());
  } catch (...) {
    ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    errno = e;
    fail_io("cannot rename " + tmp.string() + " to " + path.string());
  }
  fsync_dir(dir);
}

void append_line(const fs::path& path, const std::string& line) { append_bytes(path, line + "\n"); }

void append_bytes(const fs::path& path, const std::string& bytes) {
  if (!path.parent_path().empty()) fs::create_directories(path.parent_path());
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) fail_io("cannot open " + path.string() + " for appending");
  try {
    write_all(fd, bytes.data(), bytes.size(), path);
  } catch (...) {
    ::close(fd);
    throw;
  }
  ::close(fd);
}

namespace {
const char* kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a file";
}
}  // namespace

ReadFile::ReadFile(const fs::path& path, Thrower fail, const std::string& hint)
    : path_(path), fail_(fail) {
  const std::string fix = hint.empty() ? "" : "; " + hint;
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever.
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd_ < 0) fail_(path.string() + ": cannot open (" + errno_text() + ")" + fix);
  struct stat st {};
  if (::fstat(fd_, &st) != 0) {
    const std::string err = errno_text();
    ::close(fd_);
    fail_(path.string() + ": cannot read (" + err + ")" + fix);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd_);
    fail_(path.string() + ": not a regular file (" + kind_of(st.st_mode) + ")" + fix);
  }
  const int flags = ::fcntl(fd_, F_GETFL);
  if (flags >= 0) ::fcntl(fd_, F_SETFL, flags & ~O_NONBLOCK);
  size_ = static_cast<uint64_t>(st.st_size);
}

ReadFile::~ReadFile() {
  if (fd_ >= 0) ::close(fd_);
}

std::string ReadFile::proc_path() const { return "/proc/self/fd/" + std::to_string(fd_); }

void ReadFile::read_at(void* dst, uint64_t n, uint64_t offset, const std::string& what) const {
  auto* p = static_cast<char*>(dst);
  while (n > 0) {
    const ssize_t r =
        ::pread(fd_, p, std::min<uint64_t>(n, uint64_t{1} << 30), static_cast<off_t>(offset));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0)
      fail_(path_.string() + ": cannot read " + what +
            (r < 0 ? " (" + errno_text() + ")" : std::string(" (the file shrank while read)")));
    p += r;
    n -= static_cast<uint64_t>(r);
    offset += static_cast<uint64_t>(r);
  }
}

std::string ReadFile::read_all(uint64_t max_bytes, const std::string& what) const {
  if (size_ > max_bytes)
    fail_(path_.string() + ": holds " + std::to_string(size_) + " bytes, more than the " +
          std::to_string(max_bytes) + " bytes " + what + " may hold");
  std::string out(static_cast<size_t>(size_), '\0');
  read_at(out.data(), size_, 0, what);
  return out;
}

std::string read_file(const fs::path& path, uint64_t max_bytes, const std::string& what) {
  ReadFile f(path);
  return f.read_all(max_bytes, what);
}

uint32_t file_crc32(const fs::path& path) {
  ReadFile f(path);
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<char> buf(1 << 20);
  for (uint64_t at = 0; at < f.size();) {
    const auto n = static_cast<size_t>(std::min<uint64_t>(buf.size(), f.size() - at));
    f.read_at(buf.data(), n, at, "its bytes");
    crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(n));
    at += n;
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace det::util
