#include "det/util/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <spdlog/sinks/base_sink.h>

#include <functional>
#include <string_view>

#include <mutex>
#include "det/util/error.h"
#include "det/util/strings.h"

namespace det::util {

namespace {

struct ConsoleHook {
  std::mutex mutex;  // set by one thread, called by whichever logs
  const void* owner = nullptr;
  std::function<void()> fn;
};
ConsoleHook& console_hook() {
  static ConsoleHook hook;
  return hook;
}

// stderr, with a chance to erase a status line on the terminal before each log line.
class ConsoleSink : public spdlog::sinks::base_sink<std::mutex> {
 public:
  ConsoleSink() : inner_(std::make_shared<spdlog::sinks::stderr_color_sink_mt>()) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    {
      std::lock_guard<std::mutex> lock(console_hook().mutex);
      if (console_hook().fn) console_hook().fn();
    }
    // User text in a log line (a file name, a hyperparameter) reaches the terminal escaped: no
    // raw ESC sequence or newline from it.
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    for (char ch : payload) {
      const auto c = static_cast<unsigned char>(ch);
      if (c < 0x20 || c == 0x7f) {
        const std::string escaped = one_line(std::string(payload));
        spdlog::details::log_msg copy = msg;
        copy.payload = spdlog::string_view_t(escaped.data(), escaped.size());
        inner_->log(copy);
        return;
      }
    }
    inner_->log(msg);
  }
  void flush_() override { inner_->flush(); }
  void set_pattern_(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter_(std::unique_ptr<spdlog::formatter> f) override {
    inner_->set_formatter(std::move(f));
  }

 private:
  std::shared_ptr<spdlog::sinks::stderr_color_sink_mt> inner_;
};

}  // namespace

void set_before_console_line(const void* owner, std::function<void()> hook) {
  auto& h = console_hook();
  std::lock_guard<std::mutex> lock(h.mutex);
  if (hook) {
    h.owner = owner;
    h.fn = std::move(hook);
  } else if (h.owner == owner) {
    h.owner = nullptr;
    h.fn = nullptr;
  }
}

namespace {

// spdlog reads an unknown name as "off": a typo would hide every line. Refused instead.
spdlog::level::level_enum parse_level(const std::string& level) {
  for (const char* name : {"trace", "debug", "info", "warn", "error", "critical", "off"})
    if (level == name) return spdlog::level::from_str(level);
  throw UsageError("log level '" + shorten(level, 20) +
                   "' is not one of trace, debug, info, warn, error, critical, off");
}

}  // namespace

void set_console_level(const std::string& level) {
  logger()->sinks().front()->set_level(parse_level(level));
}

std::shared_ptr<spdlog::logger> logger() {
  static std::once_flag once;
  static std::shared_ptr<spdlog::logger> log;
  std::call_once(once, [] {
    auto sink = std::make_shared<ConsoleSink>();
    sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
    log = std::make_shared<spdlog::logger>("det", sink);
    log->set_level(spdlog::level::info);
    log->flush_on(spdlog::level::info);
  });
  return log;
}

void set_log_level(const std::string& level) { logger()->set_level(parse_level(level)); }

void add_log_file(const std::filesystem::path& path) {
  auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path.string(), false);
  sink->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%l] %v");
  sink->set_level(spdlog::level::debug);
  logger()->sinks().push_back(sink);
}

}  // namespace det::util
