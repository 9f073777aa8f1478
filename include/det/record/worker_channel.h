#pragma once
/// \file
/// The worker channel: where one launch of a trial's worker and the experiment runner exchange
/// the worker protocol (det/record/worker_protocol.h). Two append-only files in the trial's
/// directory, one writer each:
///
///   <trial dir>/channel/launch-<K>.events    the worker appends events, the runner reads
///   <trial dir>/channel/launch-<K>.answers   the runner appends answers, the worker reads
///
/// Every line is appended by open, one write, close, and read by open, read, close: on a
/// network file system (NFS's close-to-open consistency) a line is seen by the other host at its
/// next read, so the runner and its workers need nothing but the shared storage that
/// checkpoints already need: no port, no connection from a compute node back to a login node,
/// and the channel outlives either end (a restarted runner reads on where it stopped).
/// docs/design.md (The worker channel) gives the reasons.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace det::record {

/// The two files of one launch.
struct ChannelFiles {
  std::filesystem::path events;   ///< Worker -> runner.
  std::filesystem::path answers;  ///< Runner -> worker.
  /// The files of launch `launch` (from 1) of the trial whose directory is `trial_dir`.
  static ChannelFiles of(const std::filesystem::path& trial_dir, int launch);
};

/// Appends one line (a newline is added) to a channel file in one write, creating it with mode
/// 0600. Throws det::StorageError when the disk is full, det::Error on another failure.
void append_channel_line(const std::filesystem::path& path, const std::string& line);

/// Which file a path named when it was read (device and inode): a channel file deleted and
/// created again, or replaced, is another file.
struct FileId {
  uint64_t dev = 0;  ///< st_dev.
  uint64_t ino = 0;  ///< st_ino.
  /// Equal device and inode.
  bool operator==(const FileId& o) const { return dev == o.dev && ino == o.ino; }
};

/// Reads the complete lines appended to a file since the last read. A file that does not exist
/// yet has no lines. Memory is bounded: a line longer than the limit is an error. Once the file
/// has been opened it stays open, so that its inode cannot be reused by a file made in its place
/// and a deletion is seen (no links left) however fast a new file follows.
class LineTail {
 public:
  /// Reads `path` from byte `offset` (a position just after a newline, or 0). `file`: the file
  /// an earlier reader read up to `offset` (LineTail::file), when known.
  explicit LineTail(std::filesystem::path path, uint64_t offset = 0,
                    std::optional<FileId> file = std::nullopt, size_t max_line = size_t{16} << 20);
  ~LineTail();
  LineTail(const LineTail&) = delete;
  LineTail& operator=(const LineTail&) = delete;
  /// The complete lines appended since the last call, each without its newline and with the
  /// offset just past it. A partly written last line waits for its newline. Throws det::Error
  /// when the file is not the one read so far: it shrank, it was deleted after bytes were read
  /// from it, or it was replaced by another file (another inode); and when a line passes the
  /// limit or is not a channel line (not text: a NUL or another control character).
  std::vector<std::pair<std::string, uint64_t>> read();
  /// Bytes consumed: the offset just past the last complete line read.
  uint64_t offset() const { return offset_; }
  /// The file read, once it has been seen.
  std::optional<FileId> file() const { return file_; }
  /// The file's name.
  const std::filesystem::path& path() const { return path_; }

 private:
  [[noreturn]] void fail_changed(const std::string& what) const;
  bool open_file();  // false: not written yet
  void check_same_file() const;

  std::filesystem::path path_;
  int fd_ = -1;
  uint64_t offset_ = 0;
  std::optional<FileId> file_;
  size_t max_line_;
};

}  // namespace det::record
