#pragma once
/// \file
/// Creating a trial the way Determined's searchers do (NewCreate): sample the
/// hyperparameters, then a 16-byte request id, then the trial seed, all from one generator.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "det/config/hyperparameters.h"
#include "det/util/rng.h"

namespace det::search {

/// A new trial: its request id, seed and hyperparameter values.
struct Create {
  std::string request_id;   ///< UUID text from 16 random bytes.
  uint32_t trial_seed = 0;  ///< In [0, 2^31).
  nlohmann::json hparams;  ///< Sampled values: an object keyed like the space, nested sections too.
};

/// Draws a Create in Determined's order: sampleAll, 4x Bits32 (request id), Int64n(1<<31).
Create make_create(const config::HyperparameterSpace& space, util::NpRandom& rng);

}  // namespace det::search
