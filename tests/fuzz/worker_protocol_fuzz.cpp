// Fuzz target: a line of the worker protocol (det::record::decode_event / decode_answer), as the
// runner reads it from a worker and a worker from the runner. det::Error is the expected answer
// to a bad line; what is accepted must encode and decode to the same line.
#include <cstdint>
#include <string>

#include "det/record/worker_protocol.h"
#include "det/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string line(reinterpret_cast<const char*>(data), size);
  try {
    auto event = det::record::decode_event(line);
    const std::string encoded = det::record::encode(event);
    if (det::record::encode(det::record::decode_event(encoded.substr(0, encoded.size() - 1))) !=
        encoded)
      __builtin_trap();
  } catch (const det::Error&) {
  }
  try {
    (void)det::record::decode_answer(line);
  } catch (const det::Error&) {
  }
  return 0;
}
