#pragma once
/// \file
/// File helpers: atomic writes, whole-file reads, checksums.

#include <cstdint>
#include <filesystem>
#include <string>

#include "det/util/error.h"

namespace det::util {

/// How a reader reports a file it cannot use: `throw_as<DataError>`, `throw_as<CheckpointError>`.
using Thrower = void (*)(const std::string& message);
/// Throws `E(message)`; a Thrower for ReadFile.
template <class E>
[[noreturn]] void throw_as(const std::string& message) {
  throw E(message);
}

/// A file opened for reading that is known to be a regular file before a byte of it is read.
/// It is opened with O_NONBLOCK, so that a FIFO without a writer, a terminal or a device cannot
/// block the open, then checked with fstat: a FIFO, a directory or a device is refused by name
/// ("not a regular file (a FIFO)"). The checked file is the one read: the descriptor, never the
/// name again (`proc_path()` hands it to a library that opens by name). Reads are bounded: no
/// read takes memory for more than the caller's limit or the file's size.
class ReadFile {
 public:
  /// Opens `path`; a failure is thrown through `fail` (default: det::Error) with a one-line
  /// message naming the file, what it is and `hint` (how to fix it), when `hint` is not empty.
  explicit ReadFile(const std::filesystem::path& path, Thrower fail = &throw_as<Error>,
                    const std::string& hint = "");
  ~ReadFile();
  ReadFile(const ReadFile&) = delete;
  ReadFile& operator=(const ReadFile&) = delete;

  /// The open descriptor (blocking mode).
  int fd() const { return fd_; }
  /// The file's size when it was opened.
  uint64_t size() const { return size_; }
  /// The file's name, as given.
  const std::filesystem::path& path() const { return path_; }
  /// A name that opens this very file again ("/proc/self/fd/N"), for libraries that take a path.
  std::string proc_path() const;
  /// Reads exactly `n` bytes at `offset`; a short file (it shrank) or a read error is thrown
  /// through the Thrower, naming `what`.
  void read_at(void* dst, uint64_t n, uint64_t offset, const std::string& what) const;
  /// The whole file, when it holds at most `max_bytes`; otherwise the Thrower says how large it
  /// is and what may hold at most that: "more than the N bytes `what` may hold".
  std::string read_all(uint64_t max_bytes, const std::string& what) const;

 private:
  std::filesystem::path path_;
  Thrower fail_;
  int fd_ = -1;
  uint64_t size_ = 0;
};

/// Writes `content` to `path` atomically: a temporary file in the same directory, fsync, rename.
/// A reader never sees a half-written file. Throws det::Error naming the path on failure
/// (e.g. a full disk), leaving any previous file intact.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

/// Appends one line (a newline is added) to `path`, creating it if needed, and flushes.
void append_line(const std::filesystem::path& path, const std::string& line);
/// Appends `bytes` to `path` in one write, creating it (and its directory) if needed.
void append_bytes(const std::filesystem::path& path, const std::string& bytes);

/// Reads a whole regular file of at most `max_bytes` (ReadFile). Throws det::Error naming the
/// path if it cannot be read, is not a regular file or is larger ("more than the N bytes `what`
/// may hold").
std::string read_file(const std::filesystem::path& path, uint64_t max_bytes = uint64_t{1} << 30,
                      const std::string& what = "a file det reads");

/// CRC-32 (zlib's polynomial) of a file's bytes; throws det::Error if it cannot be read.
uint32_t file_crc32(const std::filesystem::path& path);

/// fsyncs a directory so that a rename inside it is durable.
void fsync_dir(const std::filesystem::path& dir);

}  // namespace det::util
