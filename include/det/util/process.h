#pragma once
/// \file
/// Child processes without a shell, and newline-framed reading (the worker channel's lines). Every
/// program det starts (trial workers, launcher ranks, downloads) goes through `spawn`: an argument
/// vector (never a shell command line), a chosen environment, pipes at fixed descriptor numbers,
/// its own process group and, optionally, death with its parent.

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace det::util {

/// How to start a child process.
struct SpawnOptions {
  /// argv[0] is the program: a path, or a name looked up in PATH. Never interpreted by a shell.
  std::vector<std::string> argv;
  /// The child's whole environment as "KEY=VALUE" entries; unset: this process's environment.
  std::optional<std::vector<std::string>> env;
  /// Descriptors handed to the child at fixed numbers, as {child_fd, parent_fd} (e.g. {3, pipe}).
  std::vector<std::pair<int, int>> fds;
  /// setpgid(0, 0): a terminal's Ctrl-C reaches the parent alone, which decides what to forward.
  bool new_process_group = true;
  /// PR_SET_PDEATHSIG: the signal the child receives when the parent dies (0: none). A child
  /// whose parent is already gone when it starts exits at once.
  int parent_death_signal = 0;
  /// stdin, stdout and stderr from/to /dev/null (for helper programs whose output is noise).
  bool null_stdio = false;
};

/// Starts a child process (fork, then only async-signal-safe calls, then execvp). Returns its
/// pid. Throws det::Error when the process cannot be created; when the program cannot be
/// executed the child writes one line to stderr and exits with status 127.
pid_t spawn(const SpawnOptions& options);

/// Runs a program to its end, at most `timeout` (then SIGKILL). Returns its wait status, or
/// nullopt when it timed out.
std::optional<int> run(const SpawnOptions& options, std::chrono::milliseconds timeout);

/// This process's environment without the variables named in `drop` and with `set` ("KEY=VALUE")
/// added, replacing any variable of the same name.
std::vector<std::string> environment(const std::vector<std::string>& drop,
                                     const std::vector<std::string>& set = {});

/// A wait status as a verb phrase: "exited with status 1", "was killed by signal 9 (Killed)".
std::string describe_wait_status(int status);

/// The status a shell reports for a wait status: the exit status, or 128 + the signal.
int exit_code_of(int status);

/// Seconds since this process started (exec, library loading and all), to 1/100 s; 0 when
/// /proc cannot tell.
double process_age_seconds();

/// Splits a byte stream into newline-terminated lines (JSON lines). A line longer
/// than the limit is an error rather than unbounded memory.
class LineBuffer {
 public:
  /// `max_line`: the longest line accepted, in bytes.
  explicit LineBuffer(size_t max_line = size_t{16} << 20) : max_line_(max_line) {}
  /// Adds bytes read from the stream. Throws det::Error when a line grows past the limit.
  void append(const char* data, size_t size);
  /// The next complete line without its newline, or nullopt when none is complete yet.
  std::optional<std::string> next_line();
  /// Bytes held that do not yet form a complete line.
  size_t pending() const { return buffer_.size() - start_; }

 private:
  std::string buffer_;
  size_t start_ = 0;
  size_t max_line_;
};

}  // namespace det::util
