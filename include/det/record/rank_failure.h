#pragma once
/// \file
/// A rank's error file: what a data-parallel rank records when its top-level error handler runs
/// (DET_ERROR_FILE, as torchrun's error files), so that det-launch can name the rank that failed
/// first rather than the first to exit. One JSON object:
///
///   {"v":1,"message":"<first line of the error>","peer_failure":false,"unix_ns":N}
///
/// Files written before the version field (det 0.1) have no "v"; from_json reads both.

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace det::record {

/// One rank's recorded failure.
struct RankFailure {
  /// The version written.
  static constexpr int kVersion = 1;
  std::string message;        ///< The error's first line.
  bool peer_failure = false;  ///< Whether the error was a PeerFailure (an echo of another rank's).
  int64_t unix_ns = 0;        ///< When it was recorded, nanoseconds since the Unix epoch.

  /// As JSON, with "v".
  nlohmann::json to_json() const;
  /// Reads a rank failure; throws det::Error naming `where` and the field.
  static RankFailure from_json(const nlohmann::json& j, const std::string& where);
};

}  // namespace det::record
