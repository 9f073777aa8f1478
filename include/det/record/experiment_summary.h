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
#include "det/record/run_dir.h"
#include "det/record/states.h"

namespace det::record {

/// Metrics at a batch.
struct MetricPoint {
  /// batches_trained when the metrics were reported.
  int64_t batches = 0;
  /// name -> value, as in MetricsReport::metrics.
  nlohmann::json metrics = nlohmann::json::object();
};

/// One trial in experiment.json.
struct TrialSummary {
  int64_t id = 0;  ///< The trial's number in the experiment, from 1.
  /// The searcher's request id (UUID text); "" after det-run --resume.
  std::string request_id;
  nlohmann::json hparams = nlohmann::json::object();  ///< The sampled hyperparameter values.
  /// The trial seed (searchers draw it in [0, 2^31)).
  uint32_t seed = 0;
  TrialStatus state = TrialStatus::kActive;  ///< Where the trial is.
  int restarts = 0;  ///< Times the trial was restarted after a failure (at most max_restarts).
  /// Worker processes started for it: the first, restarts, resumes after a pause.
  int launches = 0;
  std::optional<int64_t> target;  ///< The length it trains toward, in the searcher's unit.
  int64_t batches_trained = 0;    ///< The latest batches_trained reported (rolled back on restart).
  /// @{
  /// The latest training report, the latest validation, and the validation with the best
  /// searcher metric (config::is_better); empty until there is one.
  std::optional<MetricPoint> latest_training, latest_validation, best_validation;
  /// @}
  std::vector<CheckpointRef> checkpoints;        ///< Kept on disk.
  std::optional<std::string> latest_checkpoint;  ///< Its uuid.
  std::string message;                           ///< Why it failed or was rejected.
  bool early_exit = false;                       ///< It stopped at its own request.
};

/// experiment.json.
struct ExperimentSummary {
  /// The version written; readers accept 1..kFormatVersion.
  static constexpr int kFormatVersion = 2;

  /// 1..kFormatVersion, as read; always kFormatVersion when written.
  int format_version = kFormatVersion;
  /// @{
  /// The config's name and description (either may be empty).
  std::string name, description;
  /// @}
  std::vector<std::string> labels;                ///< The config's labels.
  std::string config_file = RunDir::kConfigFile;  ///< The resolved config, beside experiment.json.
  std::string source_config;  ///< The YAML file the experiment was started from.
  std::string entrypoint;     ///< The config's entrypoint.
  /// Seeds hyperparameter sampling and trial seeds (given or drawn).
  uint32_t experiment_seed = 0;
  /// @{
  /// The config's searcher.name and searcher.metric.
  std::string searcher_name, searcher_metric;
  /// @}
  bool smaller_is_better = true;               ///< The config's searcher.smaller_is_better.
  RunState state = RunState::kActive;          ///< Where the experiment is.
  std::string start_time;                      ///< UTC, ISO 8601.
  std::optional<std::string> end_time;         ///< UTC, ISO 8601; empty while ACTIVE.
  std::optional<std::string> store_path;       ///< The experiment store (det.db).
  std::optional<int64_t> store_experiment_id;  ///< This experiment's id there.
  /// Where the TensorBoard runs are when not in the run directory (tensorboard_storage).
  std::optional<std::string> tensorboard_dir;
  /// The id of the trial with the best validation, once finished.
  std::optional<int64_t> best_trial;
  std::optional<double> searcher_progress;  ///< 0..1.
  std::vector<TrialSummary> trials;         ///< In order of creation (ids 1, 2, ...).

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
