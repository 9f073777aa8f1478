// Fuzz target: the experiment-config parser (YAML text -> validated ExperimentConfig) on
// arbitrary text. ConfigError is the expected answer to bad input; anything else escaping is a
// bug.
#include <cstdint>
#include <string>

#include "det/config/experiment_config.h"
#include "det/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    auto config = det::config::parse_experiment_config(text, "fuzz.yaml");
    // What det-run does next with a valid config: the resolved config round-trips.
    (void)det::config::to_yaml(det::config::to_json(config));
  } catch (const det::Error&) {
  }
  return 0;
}
