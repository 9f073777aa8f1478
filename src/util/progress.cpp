#include "det/util/progress.h"

#include <unistd.h>

#include <cstdio>

#include "det/util/log.h"

namespace det::util {

ProgressLine::ProgressLine(bool enabled, std::chrono::milliseconds interval)
    : enabled_(enabled && ::isatty(STDOUT_FILENO)), interval_(interval) {
  if (enabled_) set_before_console_line(this, [this] { clear(); });
}

ProgressLine::~ProgressLine() {
  if (enabled_) {
    clear();
    set_before_console_line(this, nullptr);
  }
}

void ProgressLine::update(const std::string& text, bool force) {
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (shown_ && !force && now - last_ < interval_) return;
  last_ = now;
  shown_ = true;
  std::printf("\r\033[K%s", text.c_str());
  std::fflush(stdout);
}

void ProgressLine::clear() {
  if (!enabled_ || !shown_) return;
  std::printf("\r\033[K");
  std::fflush(stdout);
  shown_ = false;
}

}  // namespace det::util
