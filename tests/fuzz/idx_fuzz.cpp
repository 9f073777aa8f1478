// Fuzz target: the IDX (MNIST) reader, plain and gzip, as image (3-d) and label (1-d) files.
// DataError is the expected answer to bad input; a crash, a sanitizer report, another exception
// or an allocation the header asked for beyond the limit is a bug.
#include <cstdint>
#include <string_view>
#include <vector>

#include "data/formats.h"
#include "det/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  constexpr uint64_t kLimit = 1 << 20;  // the fuzzer's stand-in for DET_MAX_DATA_FILE_BYTES
  for (int ndims : {1, 3}) {
    try {
      det::data::InputFile in(bytes, "fuzz.idx");
      const auto header = det::data::read_idx_header(in, ndims, kLimit);
      if (header.body_bytes > kLimit) __builtin_trap();  // the limit must hold
      std::vector<uint8_t> body(header.body_bytes);
      det::data::read_idx_body(in, header, body.data());
    } catch (const det::DataError&) {
    }
  }
  return 0;
}
