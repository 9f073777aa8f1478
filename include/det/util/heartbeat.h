#pragma once
/// \file
/// A liveness signal from a process to whoever watches it: a thread that touches a file
/// every interval. A stopped or hung process stops touching it; a busy one (a long batch, a
/// wait in a collective) does not. det-launch watches its ranks' files (docs/distributed.md).

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

namespace det::util {

/// Touches `path` (its modification time) now and every `interval` until destroyed.
class Heartbeat {
 public:
  /// Starts beating. Throws det::Error when the file cannot be created.
  Heartbeat(std::filesystem::path path, std::chrono::milliseconds interval);
  ~Heartbeat();
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;

  /// Seconds since `path` was last touched (by anyone), or a negative number when it does not
  /// exist: what a watcher reads.
  static double age_seconds(const std::filesystem::path& path);

 private:
  void beat();
  std::filesystem::path path_;
  std::chrono::milliseconds interval_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace det::util
