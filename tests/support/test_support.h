#pragma once
// What the suites share: the message of an error a call is expected to throw, and the fixtures
// under tests/testdata (DET_TEST_DATA_DIR). Header-only, so that the torch-free and the LibTorch
// suites both use it; one definition, so that a unity build (DET_UNITY_BUILD) compiles the
// suites together.

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "det/util/fs.h"

namespace det::test {

/// The message of the E that `fn` throws, or "(no error)" when it returns; any other
/// exception goes on to the test.
template <class E, class F>
std::string error_of(F&& fn) {
  try {
    std::forward<F>(fn)();
  } catch (const E& e) {
    return e.what();
  }
  return "(no error)";
}

/// Sets an environment variable for its lifetime, then puts back what was there.
struct ScopedEnv {
  /// Sets `n` to `value`.
  ScopedEnv(const char* n, const char* value) : name(n) {
    if (const char* v = std::getenv(n)) old = v;
    ::setenv(n, value, 1);
  }
  ~ScopedEnv() { old ? ::setenv(name.c_str(), old->c_str(), 1) : ::unsetenv(name.c_str()); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  std::string name;                ///< The variable.
  std::optional<std::string> old;  ///< Its value before, if it had one.
};

/// `v` as 4 big-endian bytes (IDX headers, PNG chunks).
inline std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

#ifdef DET_TEST_DATA_DIR
/// The path of tests/testdata/RELATIVE.
inline std::string testdata_path(const std::string& relative) {
  return std::string(DET_TEST_DATA_DIR) + "/" + relative;
}
/// tests/testdata/RELATIVE, parsed as JSON.
inline nlohmann::json testdata_json(const std::string& relative) {
  return nlohmann::json::parse(util::read_file(testdata_path(relative)));
}
#endif

}  // namespace det::test

/// EXPECT that `haystack` (anything a std::string is made from) contains `needle`.
#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)
