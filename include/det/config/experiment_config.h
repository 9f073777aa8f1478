#pragma once
/// \file
/// The experiment config: Determined's YAML schema as typed structs with Determined's
/// defaults. Every mistake is a ConfigError naming file:line:column, the key path, what was
/// expected and what was found.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/config/args.h"
#include "det/config/hyperparameters.h"

namespace det::config {

/// The most values (scalars, lists, mappings) a config may hold once YAML aliases are expanded.
inline constexpr int64_t kMaxConfigValues = 1'000'000;
/// The deepest nesting of lists and mappings a config may have.
inline constexpr int kMaxConfigDepth = 64;

/// The unit of a length: Determined's `{batches: n}`, `{records: n}` or `{epochs: n}`.
enum class Unit { kBatches, kRecords, kEpochs };

/// "batches", "records" or "epochs".
std::string unit_name(Unit unit);

/// A training length or period.
struct Length {
  Unit unit = Unit::kBatches;
  int64_t value = 0;
  bool operator==(const Length& o) const { return unit == o.unit && value == o.value; }
};

/// `searcher:`. Fields for every searcher are parsed; which apply depends on `name`.
struct SearcherConfig {
  std::string name;                   ///< single, random, grid, async_halving, adaptive_asha.
  std::string metric;                 ///< The validation metric the searcher optimises.
  bool smaller_is_better = true;
  std::optional<Length> max_length;   ///< Required by every searcher here.
  int max_trials = 1;                 ///< random, async_halving, adaptive_asha.
  int max_concurrent_trials = 16;     ///< 0 = unlimited.
  std::string mode = "standard";      ///< adaptive_asha: aggressive, standard, conservative.
  double divisor = 4;                 ///< ASHA.
  int max_rungs = 5;                  ///< adaptive_asha.
  int num_rungs = 0;                  ///< async_halving.
  bool stop_once = false;             ///< ASHA: stopping-based instead of promotion-based.
  std::vector<int> bracket_rungs;     ///< adaptive_asha.
  std::optional<int64_t> source_trial_id;
  std::optional<std::string> source_checkpoint_uuid;
};

/// `checkpoint_storage:` (type shared_fs, or directory).
struct CheckpointStorageConfig {
  std::string type = "shared_fs";
  std::string host_path;     ///< Root directory; see docs/configs.md for the default.
  std::string storage_path;  ///< Sub-directory of host_path (optional).
  int save_experiment_best = 0;
  int save_trial_best = 1;
  int save_trial_latest = 1;
  /// host_path/storage_path, or the default root when no storage is configured.
  std::filesystem::path root() const;
};

/// `resources:`.
struct ResourcesConfig {
  int slots_per_trial = 1;
  std::optional<int> max_slots;
  double weight = 1;
  std::optional<int> priority;
  std::string resource_pool;
};

/// `optimizations:`.
struct OptimizationsConfig {
  int aggregation_frequency = 1;
  bool average_aggregated_gradients = true;
  /// det's own: a NaN or infinite training loss or validation metric fails the trial (without
  /// restarts) instead of a warning. Off by default, as Determined never checks.
  bool fail_on_non_finite = false;
  bool average_training_metrics = true;
  bool gradient_compression = false;
  std::string mixed_precision = "O0";
};

/// `profiling:`.
struct ProfilingConfig {
  bool enabled = false;
  int64_t begin_on_batch = 0;
  std::optional<int64_t> end_after_batch;
  bool sync_timings = true;
};

/// The whole experiment config.
struct ExperimentConfig {
  std::string name;
  std::string description;
  std::vector<std::string> labels;
  nlohmann::json data = nlohmann::json::object();  ///< Free-form, passed to the trial.
  std::string entrypoint;                           ///< A registered trial name (or module:Class).
  HyperparameterSpace hyperparameters;
  SearcherConfig searcher;
  int64_t records_per_epoch = 0;
  Length min_validation_period;  ///< {batches: 0} = no periodic validation.
  Length min_checkpoint_period;  ///< {batches: 0} = no periodic checkpoint.
  int64_t scheduling_unit = 100;
  bool perform_initial_validation = false;
  std::string checkpoint_policy = "best";  ///< best, all, none.
  std::optional<CheckpointStorageConfig> checkpoint_storage;
  int max_restarts = 5;
  ResourcesConfig resources;
  std::optional<uint32_t> experiment_seed;  ///< reproducibility.experiment_seed
  OptimizationsConfig optimizations;
  ProfilingConfig profiling;
  bool debug = false;
  std::string workspace, project;

  std::string source;  ///< Where the config came from (a file path), for error messages.
  /// Settings det accepts from Determined configs but that have no effect here (cluster-only
  /// settings, ones Determined's PyTorchTrial ignores too), one line each with where and why;
  /// det-run logs them as warnings (docs/configs.md lists them). A setting det would have to
  /// honour but cannot is a ConfigError instead.
  std::vector<std::string> notices;
  /// Where every key path under `data` and `hyperparameters` was written (as the trial sees
  /// them), for `Args` errors; null for a config built in code. Shared by copies.
  std::shared_ptr<const SourceMap> sources;

  /// The checkpoint storage in force (configured or default).
  CheckpointStorageConfig storage() const { return checkpoint_storage.value_or(CheckpointStorageConfig{}); }
};

/// Reads and validates a config file, applying `--config key.path=value` overrides first.
/// Throws ConfigError (with file:line:column) on any mistake, including what a hostile file
/// could do: a YAML alias that contains itself, more than kMaxConfigValues values after aliases
/// are expanded, nesting deeper than kMaxConfigDepth, duplicate keys, a second document, numbers
/// outside the bounds of docs/configs.md, a storage_path that leaves host_path.
ExperimentConfig load_experiment_config(const std::filesystem::path& path,
                                        const std::vector<std::string>& overrides = {});

/// Parses YAML text; `source` names it in error messages.
ExperimentConfig parse_experiment_config(const std::string& yaml_text, const std::string& source,
                                         const std::vector<std::string>& overrides = {});

/// The config with every default filled in, as JSON (round-trips through the parser).
nlohmann::json to_json(const ExperimentConfig& config);

/// JSON rendered as block-style YAML (for the resolved config.yaml in a run directory).
std::string to_yaml(const nlohmann::json& value);

/// Converts a length to batches: batches as is, records // global_batch_size (at least 1),
/// epochs * batches_per_epoch.
int64_t to_batches(const Length& length, int64_t global_batch_size, int64_t batches_per_epoch);

}  // namespace det::config
