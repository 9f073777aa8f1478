// Fuzz target: the CIFAR-10 / CIFAR-100 record reader, plain and gzip. DataError is the expected
// answer to bad input; anything else, or more memory than the limit, is a bug.
#include <cstdint>
#include <string_view>
#include <vector>

#include "data/formats.h"
#include "det/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  constexpr uint64_t kLimit = 1 << 20;
  for (int mode = 0; mode < 3; ++mode) {
    const int classes = mode == 0 ? 10 : 100;
    std::vector<uint8_t> pixels, labels;
    try {
      det::data::InputFile in(bytes, "fuzz.bin");
      det::data::read_cifar_records(in, classes, mode == 2, kLimit, pixels, labels);
      if (pixels.size() != labels.size() * 3072 || pixels.size() > kLimit) __builtin_trap();
    } catch (const det::DataError&) {
    }
  }
  return 0;
}
