#pragma once
/// \file TrialController: the training loop of one trial (Determined's _PyTorchTrialController).

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"
#include "det/core/registry.h"
#include "det/dist/distributed_context.h"

namespace det {

/// A checkpoint the trial wrote.
struct CheckpointRecord {
  std::string uuid;
  std::filesystem::path path;
  int64_t batches = 0;
  std::optional<double> metric;  ///< The searcher metric validated at the same batch, if any.
};

/// What the controller knows about the trial's progress (saved in every checkpoint).
struct TrialState {
  int64_t trial_id = 1;
  int64_t batches_trained = 0;
  int64_t epochs_trained = 0;
  std::optional<int64_t> last_validation;  ///< batches_trained at the last validation.
  std::optional<int64_t> last_checkpoint;  ///< batches_trained at the last checkpoint.
  std::optional<double> best_metric;       ///< Best searcher metric so far.
};

/// Receives what the trial reports (the experiment runner or det-run's summary writer).
struct TrialListener {
  virtual ~TrialListener() = default;
  virtual void on_training_metrics(int64_t /*batches*/, const nlohmann::json& /*report*/) {}
  virtual void on_validation_metrics(int64_t /*batches*/, const nlohmann::json& /*report*/) {}
  virtual void on_checkpoint(const CheckpointRecord& /*record*/, const std::vector<CheckpointRecord>& /*kept*/) {}
};

/// How to run one trial.
struct TrialRunOptions {
  int64_t trial_id = 1;
  nlohmann::json hparams = nlohmann::json::object();  ///< Sampled hyperparameter values.
  uint32_t trial_seed = 0;
  std::filesystem::path trial_dir;                    ///< metrics.jsonl, checkpoints/ go here.
  bool test_mode = false;                             ///< One batch, one validation batch, one checkpoint.
  std::optional<std::filesystem::path> resume_from;   ///< A checkpoint directory to continue from.
  std::optional<int64_t> max_length_batches;          ///< Train until this many batches (else the searcher's max_length).
  /// The experiment runner's target: train until this total length (in the searcher's unit), then
  /// validate there. Takes precedence over max_length_batches.
  std::optional<config::Length> target;
  /// The experiment runner's hook, called each time the trial reaches its target, after the
  /// validation there, with the target and the searcher metric it gave. Returns the next target
  /// (a longer total length) to keep training in this process, or nullopt to checkpoint and return.
  std::function<std::optional<config::Length>(const config::Length& reached, double metric)> next_target;
  bool show_progress = true;                          ///< Progress line on a TTY / log lines otherwise.
  std::shared_ptr<dist::DistributedContext> distributed;  ///< Default: single process.
  TrialListener* listener = nullptr;
  /// Set (e.g. by a signal handler) to checkpoint and stop after the current batch.
  const std::atomic<bool>* stop_flag = nullptr;
};

/// How the trial ended.
struct TrialResult {
  /// kStopped: the stop flag was set (Ctrl-C, the runner); kStopRequested: the trial itself asked
  /// to stop (TrialContext::set_stop_requested), which the searcher sees as an early exit.
  enum class Exit { kCompleted, kStopped, kStopRequested };
  Exit exit = Exit::kCompleted;
  TrialState state;
  nlohmann::json hparams;
  uint32_t trial_seed = 0;
  std::optional<nlohmann::json> last_validation;  ///< Metrics of the last validation.
  std::optional<nlohmann::json> best_validation;  ///< Metrics of the best validation.
  std::vector<CheckpointRecord> checkpoints;      ///< Checkpoints still on disk.
};

/// Owns the loop: builds the trial, restores a checkpoint, trains to the target length with the
/// validation, checkpoint and report periods of the config, reduces metrics, and writes
/// metrics.jsonl and checkpoints under the trial directory.
class TrialController {
 public:
  TrialController(config::ExperimentConfig config, TrialFactory factory, TrialRunOptions options);
  ~TrialController();
  TrialController(const TrialController&) = delete;
  TrialController& operator=(const TrialController&) = delete;

  /// Runs the trial to completion (or to a requested stop). Throws det::Error subclasses on
  /// failures (InvalidHP from the trial is passed through).
  TrialResult run();

  /// The trial's context (valid after run() has built the trial).
  TrialContext& context();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Reads the trial state and hparams stored in a checkpoint's metadata (for resume).
TrialState trial_state_from_metadata(const nlohmann::json& metadata);

}  // namespace det
