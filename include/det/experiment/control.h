#pragma once
/// \file
/// Operating a running experiment from any terminal that sees its run directory (`det-run
/// pause`, `activate`, `cancel`, `kill`, `kill-trial`, `set max-slots`; docs/operating.md).
/// The runner holds an exclusive lock on the run directory's runner.lock while it runs; a
/// command is a file in control/ (record::ControlCommand) that the runner reads within a fraction
/// of a second and answers beside it (record::ControlAnswer). Files rather than the store:
/// a rename is atomic on every file system det supports, NFS included, where SQLite's locking
/// is not to be trusted (docs/design.md).

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "det/record/control.h"

namespace det::experiment {

/// The runner's hold on its run directory: an exclusive flock on runner.lock, released when the
/// runner's process ends however it ends (the kernel drops the lock).
class RunnerLock {
 public:
  /// Takes the lock of `run_dir`; throws det::Error naming the runner that holds it.
  explicit RunnerLock(const std::filesystem::path& run_dir);
  ~RunnerLock();
  RunnerLock(const RunnerLock&) = delete;
  RunnerLock& operator=(const RunnerLock&) = delete;

  /// The runner holding `run_dir`'s lock ("pid 4711 on node0"), or nothing when none runs.
  static std::optional<std::string> holder(const std::filesystem::path& run_dir);

 private:
  int fd_ = -1;
};

/// The runner's side of control/: the commands not answered yet, and their answers.
class ControlInbox {
 public:
  /// The inbox of `run_dir` (control/ is made when missing).
  explicit ControlInbox(const std::filesystem::path& run_dir);
  /// The commands waiting, oldest first, with their ids. A file that is not a command is
  /// answered at once with what is wrong with it.
  std::vector<std::pair<std::string, record::ControlCommand>> pending();
  /// Answers command `id` (the answer file first, then the command file goes).
  void answer(const std::string& id, const record::ControlAnswer& answer);

 private:
  std::filesystem::path dir_;
};

/// The command line's side: sends `command` to the runner of `run_dir` and returns its answer.
/// Throws det::Error when no runner runs the experiment (naming --resume-experiment), or when
/// the runner does not answer within `timeout`.
record::ControlAnswer send_control(const std::filesystem::path& run_dir,
                                   const record::ControlCommand& command,
                                   std::chrono::milliseconds timeout);

}  // namespace det::experiment
