#pragma once
/// \file
/// An experiment's TensorBoard runs, written by the experiment recorder (so by the chief only,
/// from the same reports as the store): one run per trial, `<root>/trial-<id>/`, holding its
/// training and validation metrics, learning rates and throughput at their batch counts, and the
/// HParams plugin's session records (hyperparameters at the start, status at the end); the
/// experiment's HParams columns in `<root>` itself. `tensorboard --logdir <root>` shows them.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"
#include "det/record/states.h"
#include "det/record/tensorboard.h"
#include "det/record/worker_protocol.h"

namespace det::experiment {

/// The scalar tags of a report, in the order written: "training/<metric>",
/// "validation/<metric>", "learning_rate" (or "learning_rate/<optimizer>.<group>") and
/// "throughput/<key>", with their values
/// (non-numeric metrics are left out).
std::vector<std::pair<std::string, double>> tensorboard_scalars(const record::MetricsReport& r);

/// The HParams columns of a hyperparameter space: nested ones flattened to "outer.inner".
std::vector<record::tensorboard::hparams::HParamInfo> hparam_infos(
    const config::HyperparameterSpace& space);

/// A trial's hyperparameters as the HParams plugin's flat map ("outer.inner" -> value).
nlohmann::json flat_hparams(const nlohmann::json& hparams);

/// Writes one experiment's TensorBoard runs. Every method appends; nothing is rewritten.
class TensorBoardLog {
 public:
  /// Runs under `root` (created when first written).
  explicit TensorBoardLog(std::filesystem::path root) : root_(std::move(root)) {}
  /// The directory `tensorboard --logdir` takes.
  const std::filesystem::path& root() const { return root_; }
  /// The run of trial `trial`.
  std::filesystem::path trial_dir(int64_t trial) const;

  /// The experiment's HParams columns: its hyperparameters and the searcher's metric (and
  /// set_columns).
  void experiment(const config::ExperimentConfig& config, double time);
  /// The columns' types, so that a trial's values are written as its columns hold them (a
  /// categorical of mixed types is a text column: its numbers go as text).
  void set_columns(const config::HyperparameterSpace& space);
  /// A new trial and its hyperparameters.
  void trial_started(int64_t trial, const nlohmann::json& hparams, double time,
                     const std::string& model_uri);
  /// A training report or validation, at its batch count.
  void report(int64_t trial, const record::MetricsReport& report);
  /// The trial goes back to its checkpoint at `batches`: a SessionLog START at batches + 1 makes
  /// TensorBoard forget what the trial reported after its checkpoint, so what it reports again
  /// replaces it (no duplicate steps).
  void restart(int64_t trial, int64_t batches, double time);
  /// The trial ended in `state` (COMPLETED succeeds; ERROR and INVALID_HP fail).
  void trial_ended(int64_t trial, record::TrialStatus state, double time);

 private:
  record::tensorboard::EventFileWriter& writer(int64_t trial, double time);

  std::filesystem::path root_;
  std::map<int64_t, std::unique_ptr<record::tensorboard::EventFileWriter>> writers_;
  std::map<std::string, record::tensorboard::hparams::HParamInfo::Type> column_types_;
};

}  // namespace det::experiment
