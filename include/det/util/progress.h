#pragma once
/// \file
/// A status line rewritten in place on a terminal (training progress, search progress);
/// silent when the output is not a terminal, where log lines take its place.

#include <chrono>
#include <string>

namespace det::util {

/// One line on stdout, redrawn at most every `interval` unless forced; erased before each of
/// det's log lines (util/log.h), and drawn again by the next update.
class ProgressLine {
 public:
  /// Draws only when `enabled` and stdout is a terminal.
  explicit ProgressLine(bool enabled,
                        std::chrono::milliseconds interval = std::chrono::milliseconds(200));
  /// Stops erasing itself before log lines.
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  /// Whether it draws at all.
  bool enabled() const { return enabled_; }
  /// Replaces the line with `text` (skipped when the last redraw is too recent, unless `force`).
  void update(const std::string& text, bool force = false);
  /// Erases the line (before a log line is printed).
  void clear();

 private:
  bool enabled_;
  bool shown_ = false;
  std::chrono::milliseconds interval_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace det::util
