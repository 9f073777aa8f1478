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
  Unit unit = Unit::kBatches;  ///< What `value` counts.
  int64_t value = 0;           ///< The count, >= 0 (a period of 0 means never).
  /// Same unit and value; `{epochs: 1}` never equals its count in batches.
  bool operator==(const Length& o) const { return unit == o.unit && value == o.value; }
};

/// The floating-point type autocast runs eligible ops in (`optimizations.mixed_precision`).
enum class Precision {
  kFloat32,   ///< no autocast
  kFloat16,   ///< fp16 autocast with dynamic loss scaling (CUDA only)
  kBFloat16,  ///< bf16 autocast, no loss scaling needed (CPU and CUDA)
};

/// The precision an `optimizations.mixed_precision` value means: "O0" is FP32; Apex's "O1" and
/// "O2" are fp16 autocast with dynamic loss scaling (native AMP keeps FP32 master weights, which
/// O2 emulated; docs/gpu.md); "fp16" and "bf16" name the type. Throws ConfigError for anything
/// else, "O3" included (the config refuses it).
Precision parse_precision(const std::string& mixed_precision);

/// The value to_json writes for a precision: "O0", "fp16" or "bf16".
std::string precision_name(Precision precision);

/// `searcher:`. Fields for every searcher are parsed; which apply depends on `name`.
struct SearcherConfig {
  /// single, random, grid, async_halving, adaptive_asha, bohb.
  std::string name;
  std::string metric;                ///< The validation metric the searcher optimises.
  bool smaller_is_better = true;     ///< The searcher metric's order (config::is_better).
  std::optional<Length> max_length;  ///< Required by every searcher here.
  int max_trials = 1;                ///< random, async_halving, adaptive_asha.
  int max_concurrent_trials = 16;    ///< 0 = unlimited.
  std::string mode = "standard";     ///< adaptive_asha: aggressive, standard, conservative.
  double divisor = 4;                ///< ASHA.
  int max_rungs = 5;                 ///< adaptive_asha.
  int num_rungs = 0;                 ///< async_halving.
  bool stop_once = false;            ///< ASHA: stopping-based instead of promotion-based.
  std::vector<int> bracket_rungs;    ///< adaptive_asha, bohb.
  /// bohb (docs/search.md): adaptive ASHA whose new trials a TPE model proposes. The share of
  /// new trials sampled at random even when a model exists.
  double random_fraction = 1.0 / 3;
  double top_fraction = 0.25;   ///< bohb: the share of a rung's results the model calls good.
  int min_observations = 0;     ///< bohb: results a rung needs for a model; 0 = dimensions + 1.
  int candidates = 64;          ///< bohb: samples drawn from the good density per proposal.
  double bandwidth_factor = 3;  ///< bohb: widening of the good density when drawing samples.
  /// Warm start from this trial's checkpoint: a ConfigError (not implemented in det).
  std::optional<int64_t> source_trial_id;
  /// Warm start from this checkpoint: a ConfigError (not implemented in det).
  std::optional<std::string> source_checkpoint_uuid;
};

/// `checkpoint_storage:` (type shared_fs, or directory).
struct CheckpointStorageConfig {
  /// "shared_fs" (host_path) or "directory" (container_path, kept in host_path).
  std::string type = "shared_fs";
  std::string host_path;     ///< Root directory; see docs/configs.md for the default.
  std::string storage_path;  ///< Sub-directory of host_path (optional).
  /// 0 to 1000; above 0 is a ConfigError (not implemented).
  int save_experiment_best = 0;
  /// 0 to 1000: checkpoints kept per trial with the best searcher metric.
  int save_trial_best = 1;
  int save_trial_latest = 1;  ///< 0 to 1000: most recent checkpoints kept per trial.
  /// host_path/storage_path, or the default root when no storage is configured.
  std::filesystem::path root() const;
};

/// `resources:`.
struct ResourcesConfig {
  int slots_per_trial = 1;       ///< 1 to 4096 data-parallel ranks per trial (docs/distributed.md).
  std::optional<int> max_slots;  ///< Slots the experiment may use at once (det-run --slots wins).
  double weight = 1;             ///< 0 to 1e6; a cluster scheduler's setting, a notice here.
  std::optional<int> priority;   ///< 1 to 99; a cluster scheduler's setting, a notice here.
  std::string resource_pool;     ///< A cluster setting: a notice here.
};

/// `slurm:` (Determined's section for Slurm clusters): with it, det-run places each trial, all its
/// ranks, in one Slurm job (docs/distributed.md, Searches on Slurm); `det-run --scheduler local`
/// runs the same config locally.
struct SlurmConfig {
  /// Options added to every trial's sbatch command line, one option (with its value) each, e.g.
  /// "--partition=gpu". Never shell-interpreted. The options det sets itself are refused.
  std::vector<std::string> sbatch_args;
  /// Ranks per node: a trial of resources.slots_per_trial ranks asks for
  /// ceil(slots_per_trial / slots_per_node) nodes (unset: Slurm places the tasks).
  std::optional<int> slots_per_node;
  /// A GPU type: each rank gets one GPU of it (`--gpus-per-task=<type>:1`); "" = no GPU request.
  std::string gpu_type;
};

/// `optimizations:`.
struct OptimizationsConfig {
  /// 1 to 10000: step the optimizer every this many batches.
  int aggregation_frequency = 1;
  /// Divide accumulated gradients by aggregation_frequency.
  bool average_aggregated_gradients = true;
  /// det's own: a NaN or infinite training loss or validation metric fails the trial (without
  /// restarts) instead of a warning. Off by default, as Determined never checks.
  bool fail_on_non_finite = false;
  /// false only earns a notice: metrics are always averaged.
  bool average_training_metrics = true;
  /// true is a ConfigError (fp16 allreduce is not implemented).
  bool gradient_compression = false;
  /// Read from "O0" (FP32), "O1"/"O2"/"fp16" (fp16 autocast with dynamic loss scaling, CUDA
  /// only) or "bf16" (bf16 autocast); "O3" is a ConfigError. docs/gpu.md, Mixed precision.
  Precision mixed_precision = Precision::kFloat32;
  /// det's own: cuDNN picks the fastest convolution algorithms per shape (CUDA; off by default,
  /// as LibTorch's).
  bool cudnn_benchmark = false;
  /// det's own: TF32 for CUDA matmuls and cuDNN convolutions (Ampere and later); unset keeps
  /// LibTorch's defaults (matmul off, cuDNN on).
  std::optional<bool> tf32;
  /// det's own: 4-D parameters and input batches in channels-last memory format.
  bool channels_last = false;
};

/// `profiling:`.
struct ProfilingConfig {
  bool enabled = false;  ///< true is a ConfigError (det has no profiler).
  /// Parsed and range-checked; unused, as profiling is off.
  int64_t begin_on_batch = 0;
  /// Parsed and range-checked; unused, as profiling is off.
  std::optional<int64_t> end_after_batch;
  bool sync_timings = true;  ///< Parsed; unused, as profiling is off.
};

/// The whole experiment config.
struct ExperimentConfig {
  /// Names the run directory (`<name>-<timestamp>`); may be empty.
  std::string name;
  /// Free text, recorded in experiment.json and the store.
  std::string description;
  std::vector<std::string> labels;                 ///< Free-form tags, recorded in experiment.json.
  nlohmann::json data = nlohmann::json::object();  ///< Free-form, passed to the trial.
  std::string entrypoint;                          ///< A registered trial name (or module:Class).
  /// Empty when the config has none.
  HyperparameterSpace hyperparameters;
  SearcherConfig searcher;  ///< Required in the file.
  /// Parsed; ignored, as by PyTorchTrial (a notice).
  int64_t records_per_epoch = 0;
  Length min_validation_period;  ///< {batches: 0} = no periodic validation.
  Length min_checkpoint_period;  ///< {batches: 0} = no periodic checkpoint.
  /// 1 to 1e6: batches per training-metrics report.
  int64_t scheduling_unit = 100;
  /// Validate once before the first batch.
  bool perform_initial_validation = false;
  std::string checkpoint_policy = "best";  ///< best, all, none.
  /// Empty when the file has none; storage() gives the default then.
  std::optional<CheckpointStorageConfig> checkpoint_storage;
  /// `tensorboard_storage:` (shared_fs): where the TensorBoard runs go,
  /// <host_path>/<storage_path>/<run directory's name>; by default the run directory itself.
  std::optional<CheckpointStorageConfig> tensorboard_storage;
  /// 0 to 1000 restarts of a failed trial before it is ERROR.
  int max_restarts = 5;
  ResourcesConfig resources;  ///< `resources:`.
  /// `slurm:`; present selects the Slurm scheduler for det-run's searches.
  std::optional<SlurmConfig> slurm;
  std::optional<uint32_t> experiment_seed;  ///< reproducibility.experiment_seed
  OptimizationsConfig optimizations;        ///< `optimizations:`.
  /// `profiling:` (only `enabled: false` is implemented).
  ProfilingConfig profiling;
  bool debug = false;  ///< true: det-run logs at debug level.
  /// Determined's workspace name: written back by to_json, otherwise unused (a notice).
  std::string workspace, project;  ///< Determined's project name: likewise kept, unused (a notice).

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
  CheckpointStorageConfig storage() const {
    return checkpoint_storage.value_or(CheckpointStorageConfig{});
  }
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

/// Every key path of the config schema, each section before its keys (docs/configs.md lists
/// them; a test checks that the two agree).
std::vector<std::string> config_keys();

/// JSON rendered as block-style YAML (for the resolved config.yaml in a run directory).
std::string to_yaml(const nlohmann::json& value);

/// Converts a length to batches: batches as is, records // global_batch_size (at least 1),
/// epochs * batches_per_epoch.
int64_t to_batches(const Length& length, int64_t global_batch_size, int64_t batches_per_epoch);

}  // namespace det::config
