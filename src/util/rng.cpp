#include "det/util/rng.h"

#include <stdexcept>

namespace det::util {

int64_t NpRandom::intn(int64_t n) {
  if (n <= 0) throw std::invalid_argument("NpRandom::intn needs n > 0");
  uint64_t max = static_cast<uint64_t>(n - 1);
  if (max == 0) return 0;
  uint64_t mask = max;
  mask |= mask >> 1;
  mask |= mask >> 2;
  mask |= mask >> 4;
  mask |= mask >> 8;
  mask |= mask >> 16;
  mask |= mask >> 32;
  if (max <= 0xffffffffULL) {
    uint32_t m32 = static_cast<uint32_t>(mask);
    uint32_t v;
    while ((v = (bits32() & m32)) > max) {
    }
    return static_cast<int64_t>(v);
  }
  uint64_t v;
  while ((v = (bits64() & mask)) > max) {
  }
  return static_cast<int64_t>(v);
}

}  // namespace det::util
