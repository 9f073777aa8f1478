#pragma once
/// \file
/// What a trial's chief broadcasts to its other ranks (DistributedContext::broadcast carries one
/// JSON value): one record each, with a version, read strictly.
///
///   the trial's options   {"v":2,"trial_id":N,"hparams":{...},"trial_seed":S,
///                          "trial_dir":"...","resume_from":"..."|null}
///   the next target       {"v":2,"target":L|null}    (null: checkpoint and exit)
///   a full validation     {"v":2,"full":true|false,"metrics":{...}|null}
///
/// Version 1 (det 0.2) had no "v", and sent the next target as {"target":L} or null; both
/// are still read.

#include <cstdint>
#include <filesystem>
#include <optional>

#include <nlohmann/json.hpp>

namespace det::record {

/// The rank broadcast version written.
constexpr int kRankBroadcastVersion = 2;

/// The chief's options of the trial it runs, for every other rank (det-launch -- det-run).
struct TrialOptionsBroadcast {
  int64_t trial_id = 1;                               ///< The trial's number.
  nlohmann::json hparams = nlohmann::json::object();  ///< Its hyperparameter values.
  uint32_t trial_seed = 0;                            ///< Its seed.
  /// The chief's trial directory: read for a resume (checkpoints on shared storage).
  std::filesystem::path trial_dir;
  std::optional<std::filesystem::path> resume_from;  ///< The checkpoint resumed from, if any.
  /// As JSON.
  nlohmann::json to_json() const;
  /// Reads one; throws det::DistributedError naming the field.
  static TrialOptionsBroadcast from_json(const nlohmann::json& j);
};

/// The runner's answer when the trial reached its target, as the chief shares it.
struct NextTargetBroadcast {
  /// The next target length (the searcher's unit); nullopt: checkpoint and exit.
  std::optional<int64_t> target;
  /// As JSON.
  nlohmann::json to_json() const;
  /// Reads one; throws det::DistributedError naming the field.
  static NextTargetBroadcast from_json(const nlohmann::json& j);
};

/// The chief's evaluate_full_dataset metrics, or that the trial does not override it.
struct FullValidationBroadcast {
  bool full = false;  ///< Whether the trial overrides evaluate_full_dataset.
  /// The reduced metrics when `full`: name -> number or null.
  nlohmann::json metrics;
  /// As JSON.
  nlohmann::json to_json() const;
  /// Reads one; throws det::DistributedError naming the field.
  static FullValidationBroadcast from_json(const nlohmann::json& j);
};

}  // namespace det::record
