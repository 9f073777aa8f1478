#pragma once
/// \file The run directory of an experiment and its experiment.json summary.
///
///   <root>/<name>-<YYYYmmdd-HHMMSS>/
///     config.yaml        the resolved config (every default filled in)
///     experiment.json    summary: every trial's hparams, state, validation metrics, checkpoints
///     det.log            the log
///     trial-<id>/metrics.jsonl, trial-<id>/checkpoints/<uuid>/

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"

namespace det::experiment {

/// Creates a fresh, uniquely named run directory under `root` for `config`.
std::filesystem::path create_run_dir(const std::filesystem::path& root, const std::string& name);

/// The experiment.json document, rewritten atomically on every `save()`.
class ExperimentSummary {
 public:
  ExperimentSummary(std::filesystem::path run_dir, const config::ExperimentConfig& config, uint32_t experiment_seed);
  /// Loads an existing summary (for resume); throws det::Error if it is missing or corrupt.
  static ExperimentSummary load(const std::filesystem::path& run_dir);

  /// The trial entry with this id (created if new).
  nlohmann::json& trial(int64_t id);
  /// Sets the experiment state (ACTIVE, COMPLETED, STOPPED, ERROR) and the end time if final.
  void set_state(const std::string& state);
  /// Records where the experiment store holds this experiment.
  void set_store(const std::string& path, int64_t experiment_id) {
    doc_["store"] = {{"path", path}, {"experiment_id", experiment_id}};
  }
  /// Writes experiment.json atomically.
  void save() const;
  const nlohmann::json& json() const { return doc_; }
  /// The document, for experiment-level fields (best_trial, searcher_progress, ...).
  nlohmann::json& json_mut() { return doc_; }
  const std::filesystem::path& run_dir() const { return run_dir_; }

 private:
  ExperimentSummary() = default;
  std::filesystem::path run_dir_;
  nlohmann::json doc_;
};

/// The most recently modified run directory (one with experiment.json) under `root`, or "".
std::filesystem::path latest_run_dir(const std::filesystem::path& root);

}  // namespace det::experiment
