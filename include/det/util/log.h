#pragma once
/// \file
/// Logging through spdlog: one logger, "det", to stderr and optionally a file.

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

namespace spdlog {
class logger;
}

namespace det::util {

/// The project's logger (created on first use, printing to stderr at info level).
std::shared_ptr<spdlog::logger> logger();

/// Sets the console level: "trace", "debug", "info", "warn", "error", "critical" or "off";
/// throws UsageError on any other word.
void set_log_level(const std::string& level);

/// Only lines at `level` or above reach the console (a file added keeps its own level); the
/// levels of set_log_level.
void set_console_level(const std::string& level);
/// `hook` is called before each console log line (a status line erases itself); an empty hook
/// removes `owner`'s (and only its own).
void set_before_console_line(const void* owner, std::function<void()> hook);
/// Also write every log line to `path` (appending).
void add_log_file(const std::filesystem::path& path);

}  // namespace det::util
