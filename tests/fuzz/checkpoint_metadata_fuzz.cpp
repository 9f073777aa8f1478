// Fuzz target: a checkpoint's metadata.json (det::record::CheckpointMetadata) on arbitrary text,
// as `det-run --resume` and the experiment recorder read it from a directory they did not
// write. CheckpointError is the expected answer to bad input; anything else escaping is a bug,
// and what is accepted must round-trip.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "det/record/checkpoint.h"
#include "det/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;  // not JSON: the reader says so before this parser runs
  try {
    auto meta = det::record::CheckpointMetadata::from_json(j, "fuzz/metadata.json");
    auto again = det::record::CheckpointMetadata::from_json(meta.to_json(), "again");
    if (again.to_json() != meta.to_json()) __builtin_trap();
    for (const auto& [name, digest] : meta.files)
      if (!det::record::is_plain_file_name(name)) __builtin_trap();  // confined to the directory
  } catch (const det::CheckpointError&) {
  }
  return 0;
}
