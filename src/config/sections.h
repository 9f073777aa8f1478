// The parts of the experiment config that are more than one typed value (lengths,
// hyperparameters, storage, sbatch options) and the bounds of docs/configs.md (private to
// src/config: the schema table in schema.cpp reads through them).
#pragma once

#include <string>
#include <vector>

#include "det/config/experiment_config.h"
#include "yaml_tree.h"

namespace det::config::detail {

// ---- bounds (docs/configs.md): generous, but no value that would exhaust a machine ----

inline constexpr double kMaxLength = 1e12;  // batches, records or epochs of any length or period
inline const Range kLengthRange{1, kMaxLength};
inline const Range kPeriodRange{0, kMaxLength};
inline const Range kMaxTrialsRange{1, 100'000};
inline const Range kMaxConcurrentRange{0, 10'000};
inline const Range kDivisorRange{1, 100, /*min_excluded=*/true};
inline const Range kRungsRange{1, 32};
inline const Range kFractionRange{0, 1};
inline const Range kTopFractionRange{0, 1, /*min_excluded=*/true, /*max_excluded=*/true};
inline const Range kObservationsRange{2, 100'000};
inline const Range kCandidatesRange{1, 100'000};
inline const Range kBandwidthFactorRange{0, 100, /*min_excluded=*/true};
inline constexpr int64_t kMaxGridPoints = 100'000;
inline const Range kSchedulingUnitRange{1, 1'000'000};
inline const Range kMaxRestartsRange{0, 1'000};
inline const Range kSlotsPerTrialRange{1, 4'096};
inline const Range kMaxSlotsRange{1, 65'536};
inline const Range kSlotsPerNodeRange{1, 4'096};
inline const Range kWeightRange{0, 1e6};
inline const Range kPriorityRange{1, 99};
inline const Range kSeedRange{0, 4294967295.0};
inline const Range kAggregationRange{1, 10'000};
inline const Range kSaveCountRange{0, 1'000};
inline const Range kBatchIndexRange{0, kMaxLength};
inline const Range kTrialIdRange{0, 1e15};

/// `{batches: n}`, `{records: n}`, `{epochs: n}` or a bare number of batches, within `range`.
Length parse_length(const Node& n, const Range& range);
/// {unit: value}.
nlohmann::json length_json(const Length& l);

/// `hyperparameters:` (null: none), each value's location recorded under `logical`; then the
/// checks of the values the harness reads itself (global_batch_size, finite numbers).
HyperparameterSpace parse_hyperparameters(const Node& n, SourceMap& map);

/// A grid searcher's grid within kMaxGridPoints, else a ConfigError at `hparams`.
void check_grid_size(const HyperparameterSpace& space, const Node& hparams);

/// divisor^(rungs - 1) within 1e9, else a ConfigError at `n`.
void check_rung_factor(const Node& n, double divisor, int64_t rungs);

/// A storage mapping's `type` (shared_fs by default); the cloud stores are refused.
std::string parse_storage_type(const Node& n);

/// A checkpoint (or TensorBoard) storage mapping of type `type`, whose keys are `known`.
CheckpointStorageConfig parse_storage(const Node& n, const std::string& type,
                                      const std::vector<std::string>& known);

/// `slurm.sbatch_args`: a list of options, none of those det sets for every trial's job.
std::vector<std::string> parse_sbatch_args(const Node& a);

/// `slurm.gpu_type`: a GPU type name.
std::string parse_gpu_type(const Node& n);

}  // namespace det::config::detail
