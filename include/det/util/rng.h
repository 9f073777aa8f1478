#pragma once
/// \file
/// A clone of numpy's RandomState (MT19937) as Determined's master uses it (nprand), so that
/// hyperparameter samples and trial seeds match the reference for the same experiment seed.

#include <cstdint>
#include <random>
#include <sstream>
#include <string>

namespace det::util {

/// numpy-RandomState-compatible generator: seeding and tempering of std::mt19937, numpy's masked
/// rejection sampling for integers and its 53-bit doubles.
class NpRandom {
 public:
  /// Seeds exactly as `numpy.random.RandomState(seed)` does for a 32-bit seed.
  explicit NpRandom(uint32_t seed) : mt_(seed) {}

  /// Next 32 random bits.
  uint32_t bits32() { return static_cast<uint32_t>(mt_()); }
  /// Next 64 random bits (high word first, as numpy).
  uint64_t bits64() {
    uint64_t hi = bits32();
    return (hi << 32) | bits32();
  }
  /// Uniform integer in [0, n), numpy's masked rejection sampling. `n` must be > 0.
  int64_t intn(int64_t n);
  /// Uniform integer in [0, n) drawn as Determined's Int64n (same algorithm as intn).
  int64_t int64n(int64_t n) { return intn(n); }
  /// Uniform double in [0, 1) with 53 random bits.
  double unit_interval() {
    uint64_t a = bits32() >> 5, b = bits32() >> 6;
    return (static_cast<double>(a) * 67108864.0 + static_cast<double>(b)) / 9007199254740992.0;
  }
  /// Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * unit_interval(); }

  /// The full generator state as text, so a searcher snapshot can resume the exact stream.
  std::string state() const {
    std::ostringstream out;
    out << mt_;
    return out.str();
  }
  /// Restores a state produced by state().
  void set_state(const std::string& text) {
    std::istringstream in(text);
    in >> mt_;
  }

 private:
  std::mt19937 mt_;
};

}  // namespace det::util
