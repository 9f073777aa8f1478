#pragma once
// Internal to the app layer: the tables det-run prints from the experiment store.

#include <filesystem>
#include <string>
#include <vector>

#include "det/experiment/store.h"

namespace det::app {

/// `det-run experiments`: one line per experiment.
std::string format_experiments(const std::vector<experiment::ExperimentRow>& rows);
/// `det-run describe`: an experiment, its trials, hyperparameters, best metrics and checkpoints.
std::string format_experiment(experiment::ExperimentStore& store, int64_t experiment_id);
/// `det-run metrics`: `format` "table", "csv" or "json" (det::UsageError otherwise).
std::string format_metrics(const std::vector<experiment::MetricRow>& rows,
                           const std::string& format);

/// The experiment store a `--store` option names (a det.db file or the directory holding it;
/// default runs/det.db); det::UsageError when there is none.
std::filesystem::path store_path_or_default(const std::string& given);

}  // namespace det::app
