#pragma once
/// \file
/// The operations a searcher asks of the trials (Determined's operations.go) and the ways a
/// trial can end early.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/search/create.h"

namespace det::search {

/// "Train until the trial's total length equals `length`, then validate" (cumulative, in the
/// unit of the config's max_length).
struct ValidateAfter {
  std::string request_id;  ///< The trial.
  int64_t length = 0;      ///< Total units trained when the validation happens.
};

/// The searcher is done with the trial: it should checkpoint and exit.
struct Close {
  std::string request_id;  ///< The trial.
};

/// The whole search is over.
struct Shutdown {
  bool cancel = false;   ///< Every trial was cancelled by the user.
  bool failure = false;  ///< Every trial failed.
};

/// One searcher operation.
using Operation = std::variant<Create, ValidateAfter, Close, Shutdown>;

/// Why a trial stopped before the searcher closed it (Determined's ExitedReason).
enum class ExitedReason {
  kInvalidHP,     ///< The trial rejected its hyperparameters; searchers replace it.
  kUserCanceled,  ///< The user (or the trial itself) asked it to stop.
  kErrored,       ///< The trial failed.
};

/// One-line text for an operation, e.g. "ValidateAfter(<id>, 300)" (logs and test messages).
std::string to_string(const Operation& op);

/// A Create with given hyperparameter values: request id and seed drawn like NewCreate does after
/// sampling (grid points are fixed, so nothing is sampled).
Create make_create_with(nlohmann::json hparams, util::NpRandom& rng);

}  // namespace det::search
