#pragma once
/// \file
/// experiment.json: the summary of an experiment in its run directory, rewritten
/// atomically by the experiment recorder after every change. Version 2 is this struct; version 1
/// (det 0.1) had the same fields, some optional, and `final_validation` for local runs.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/record/checkpoint.h"

namespace det::record {

/// Metrics at a batch.
struct MetricPoint {
  int64_t batches = 0;
  nlohmann::json metrics = nlohmann::json::object();
};

/// One trial in experiment.json.
struct TrialSummary {
  int64_t id = 0;
  std::string request_id;
  nlohmann::json hparams = nlohmann::json::object();
  uint32_t seed = 0;
  /// ACTIVE, PAUSED, QUEUED, RUNNING, COMPLETED, STOPPED, ERROR, INVALID_HP.
  std::string state = "ACTIVE";
  int restarts = 0;
  int launches = 0;
  std::optional<int64_t> target;  ///< The length it trains toward, in the searcher's unit.
  int64_t batches_trained = 0;
  std::optional<MetricPoint> latest_training, latest_validation, best_validation;
  std::vector<CheckpointRef> checkpoints;  ///< Kept on disk.
  std::optional<std::string> latest_checkpoint;  ///< Its uuid.
  std::string message;  ///< Why it failed or was rejected.
  bool early_exit = false;  ///< It stopped at its own request.
};

/// experiment.json.
struct ExperimentSummary {
  /// The version written; readers accept 1..kFormatVersion.
  static constexpr int kFormatVersion = 2;

  int format_version = kFormatVersion;
  std::string name, description;
  std::vector<std::string> labels;
  std::string config_file = "config.yaml";  ///< The resolved config, beside experiment.json.
  std::string source_config;                ///< The YAML file the experiment was started from.
  std::string entrypoint;
  uint32_t experiment_seed = 0;
  std::string searcher_name, searcher_metric;
  bool smaller_is_better = true;
  /// ACTIVE, COMPLETED, STOPPED or ERROR.
  std::string state = "ACTIVE";
  std::string start_time;
  std::optional<std::string> end_time;
  std::optional<std::string> store_path;        ///< The experiment store (det.db).
  std::optional<int64_t> store_experiment_id;   ///< This experiment's id there.
  std::optional<int64_t> best_trial;
  std::optional<double> searcher_progress;      ///< 0..1.
  std::vector<TrialSummary> trials;

  /// The trial with this id, created when new.
  TrialSummary& trial(int64_t id);
  /// The trial with this id, or null.
  const TrialSummary* find_trial(int64_t id) const;

  /// As experiment.json's JSON.
  nlohmann::json to_json() const;
  /// Reads versions 1 and 2; throws det::Error naming `where` and the field.
  static ExperimentSummary from_json(const nlohmann::json& j, const std::string& where);
  /// Reads `<run_dir>/experiment.json`; throws det::Error when it is missing or invalid.
  static ExperimentSummary load(const std::filesystem::path& run_dir);
  /// Writes `<run_dir>/experiment.json` atomically.
  void save(const std::filesystem::path& run_dir) const;
};

}  // namespace det::record
