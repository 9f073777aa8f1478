#pragma once
/// \file
/// TrialController: the training loop of one trial (Determined's _PyTorchTrialController).

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
#include "det/distributed/distributed_context.h"
#include "det/record/checkpoint.h"
#include "det/record/worker_protocol.h"

namespace det {

namespace distributed {
class GradientSynchronizer;
}

/// What the loop knows about a trial's progress (saved in every checkpoint).
using TrialState = record::TrialState;

/// Receives what the trial reports: the experiment recorder (through a worker's channel files or
/// in process), or a test. Called on the chief only.
struct TrialListener {
  virtual ~TrialListener() = default;
  /// A training report (the average since the last one) or a validation.
  virtual void on_report(const record::MetricsReport& /*report*/) {}
  /// A checkpoint is complete on disk. Returns once it is recorded: the controller deletes the
  /// checkpoints not in `event.kept` only afterwards, so no record names a deleted checkpoint.
  virtual void on_checkpoint(const record::CheckpointEvent& /*event*/) {}
};

/// How to run one trial.
struct TrialRunOptions {
  /// The trial's number; a resumed checkpoint's own id wins.
  int64_t trial_id = 1;
  nlohmann::json hparams = nlohmann::json::object();  ///< Sampled hyperparameter values.
  /// Seeds LibTorch and std::rand; a resumed checkpoint's own seed wins.
  uint32_t trial_seed = 0;
  std::filesystem::path trial_dir;  ///< checkpoints/ go here.
  bool test_mode = false;           ///< One batch, one validation batch, one checkpoint.
  std::optional<std::filesystem::path> resume_from;  ///< A checkpoint directory to continue from.
  /// A checkpoint to warm-start from (searcher.source_trial_id / source_checkpoint_uuid): its
  /// models, optimizers, LR schedulers, callbacks, loss scaler and RNG states are loaded, but the
  /// trial keeps its own hyperparameters and its counters start at 0. Unused with resume_from.
  std::optional<std::filesystem::path> warm_start_from;
  std::optional<int64_t>
      max_length_batches;  ///< Train until this many batches (else the searcher's max_length).
  /// The experiment runner's target: train until this total length (in the searcher's unit), then
  /// validate there. Takes precedence over max_length_batches.
  std::optional<config::Length> target;
  /// The experiment runner's hook, called each time the trial reaches its target, after the
  /// validation there, with the target and the searcher metric it gave. Returns the next target
  /// (a longer total length) to keep training in this process, or nullopt to checkpoint and return.
  std::function<std::optional<config::Length>(const config::Length& reached, double metric)>
      next_target;
  bool show_progress = true;  ///< Progress line on a TTY / log lines otherwise.
  std::shared_ptr<distributed::DistributedContext> distributed;  ///< Default: single process.
  /// Gets reports and checkpoints on the chief; null: none.
  TrialListener* listener = nullptr;
  /// Set (e.g. by a signal handler) to checkpoint and stop after the current batch.
  const std::atomic<bool>* stop_flag = nullptr;
};

/// How the trial ended.
struct TrialResult {
  /// kStopped: the stop flag was set (Ctrl-C, the runner); kStopRequested: the trial itself asked
  /// to stop (TrialContext::request_stop), which the searcher sees as an early exit.
  enum class Exit { kCompleted, kStopped, kStopRequested };
  Exit exit = Exit::kCompleted;  ///< Why run() returned.
  TrialState state;              ///< Progress at the end.
  /// The hyperparameters trained with (a checkpoint's when resumed).
  nlohmann::json hparams;
  /// The seed trained with (a checkpoint's when resumed).
  uint32_t trial_seed = 0;
  std::optional<nlohmann::json> last_validation;   ///< Metrics of the last validation.
  std::optional<nlohmann::json> best_validation;   ///< Metrics of the best validation.
  std::vector<record::CheckpointRef> checkpoints;  ///< Checkpoints still on disk, oldest first.
};

/// Owns the loop: builds the trial, restores a checkpoint, trains to the target length with the
/// validation, checkpoint and report periods of the config, reduces metrics, calls the trial's
/// callbacks, writes checkpoints under the trial directory (keeping those the retention rule
/// keeps) and reports to its listener.
class TrialController {
 public:
  /// Only stores its arguments; run() builds the trial from `factory` and does the work.
  TrialController(config::ExperimentConfig config, TrialFactory factory, TrialRunOptions options);
  ~TrialController();
  TrialController(const TrialController&) = delete;
  TrialController& operator=(const TrialController&) = delete;

  /// Runs the trial to completion (or to a requested stop). Throws det::Error subclasses on
  /// failures (InvalidHP from the trial is passed through).
  TrialResult run();

  /// The trial's context (valid after run() has built the trial).
  TrialContext& context();
  /// The data-parallel gradient averaging (its statistics), or null on one rank.
  const distributed::GradientSynchronizer* gradient_sync() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace det
