#pragma once
// Peak resident memory of the test process, for tests that assert a hostile file is refused
// without taking the memory its header asks for.
#include <cstdint>
#include <fstream>
#include <string>

namespace det::testing {

/// A "VmHWM:" or "VmRSS:" line of /proc/self/status, in bytes (-1 when unavailable).
inline int64_t proc_status_bytes(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return std::stoll(line.substr(key.size())) * 1024;
  return -1;
}

/// Runs `f` and returns how far the process's peak resident memory rose above its resident
/// memory before (the peak is reset first: /proc/self/clear_refs "5", Linux 4.0+). -1 when the
/// peak cannot be reset or read, so callers can skip rather than pass without measuring.
template <typename F>
int64_t peak_rss_rise(F&& f) {
  {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.flush();
    if (!clear) return -1;
  }
  const int64_t before = proc_status_bytes("VmRSS:");
  if (before < 0 || proc_status_bytes("VmHWM:") > before + (int64_t{8} << 20)) return -1;
  f();
  const int64_t peak = proc_status_bytes("VmHWM:");
  return peak < 0 ? -1 : peak - before;
}

}  // namespace det::testing
