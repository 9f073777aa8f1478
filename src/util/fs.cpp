#include "det/util/fs.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

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

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string() + ": " + errno_text());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

uint32_t file_crc32(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + path.string() + ": " + errno_text());
  uLong crc = crc32(0L, Z_NULL, 0);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    std::streamsize n = in.gcount();
    if (n > 0) crc = crc32(crc, reinterpret_cast<const Bytef*>(buf.data()), static_cast<uInt>(n));
  }
  return static_cast<uint32_t>(crc);
}

}  // namespace det::util
