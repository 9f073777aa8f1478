// Fuzz target: the safetensors layout checks (header length, JSON header, dtypes, shapes,
// offsets tiling the data area). The data of every tensor the checks admit is then read from the
// input, so an offset they wrongly admit is an out-of-bounds read the sanitizers report.
#include <cstdint>
#include <string>
#include <string_view>

#include "det/util/error.h"
#include "nn/safetensors_format.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const uint64_t n = det::nn::safetensors_header_length(data, size, "fuzz.safetensors");
    const auto index =
        det::nn::parse_safetensors_header(bytes.substr(8, n), size, "fuzz.safetensors");
    uint64_t covered = 0;
    volatile uint8_t sum = 0;
    for (const auto& e : index.tensors) {
      for (uint64_t i = e.begin; i < e.end; ++i) sum = sum + data[8 + n + i];
      covered += e.end - e.begin;
    }
    if (covered != index.data_bytes || 8 + n + index.data_bytes != size) __builtin_trap();
  } catch (const det::DataError&) {
  }
  return 0;
}
