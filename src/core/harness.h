#pragma once
// Internal to the core layer: the state a trial's context and its controller share. The context
// writes the registrations (wrap_*) and reads the position through the clock; the controller
// advances the position and reads the registrations. Neither reaches into the other's private
// members.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"
#include "det/core/amp.h"
#include "det/core/reducer.h"
#include "det/core/step_clock.h"
#include "det/distributed/distributed_context.h"
#include "det/distributed/gradient_sync.h"
#include "det/optim/lr_scheduler.h"
#include "det/record/checkpoint.h"

namespace det::detail {

/// The metrics a default Trial::evaluate_* returns: "this method is not overridden".
inline const char* const kNotOverridden = "__det_not_overridden__";

/// An LR scheduler and when the harness steps it.
struct WrappedScheduler {
  std::shared_ptr<optim::LRScheduler> scheduler;
  StepMode mode;
  int frequency;
};

/// A custom reducer and where its result goes.
struct WrappedReducer {
  std::shared_ptr<MetricReducer> reducer;
  std::string name;
  bool for_training, for_validation;
};

/// Everything about one trial that both its context and its controller see.
struct TrialHarness {
  /// The clock is built here once, over `state`, with the config's aggregation frequency.
  explicit TrialHarness(config::ExperimentConfig cfg)
      : config(std::move(cfg)), clock(state, config.optimizations.aggregation_frequency) {}
  TrialHarness(const TrialHarness&) = delete;  // `clock` points into this object
  TrialHarness& operator=(const TrialHarness&) = delete;

  config::ExperimentConfig config;
  nlohmann::json hparams;
  /// Where `hparams` came from, for messages: "" (the config) or a checkpoint's metadata.json.
  std::string hparams_source;
  uint32_t trial_seed = 0;
  torch::Device device{torch::kCPU};
  std::shared_ptr<distributed::DistributedContext> distributed;
  bool test_mode = false;
  int64_t initial_batch = 0;
  bool stop_requested = false;
  /// The one training position (its trial_id is the trial's): the loop advances it, checkpoints
  /// save it, a resume restores it.
  record::TrialState state;
  StepClock clock;  ///< Reads `state`.
  std::vector<std::shared_ptr<torch::nn::Module>> models;
  std::vector<std::shared_ptr<torch::optim::Optimizer>> optimizers;
  std::vector<WrappedScheduler> schedulers;
  std::vector<WrappedReducer> reducers;
  std::unique_ptr<distributed::GradientSynchronizer> grad_sync;  ///< With several ranks.
  /// optimizations.mixed_precision: autocast around train_batch and evaluate_*.
  Precision precision = Precision::kFloat32;
  /// The loss scaler: the harness's (fp16) or the trial's (wrap_scaler); null without one.
  std::shared_ptr<GradScaler> scaler;
  /// Whether `scaler` is the harness's own: then backward() scales the loss itself.
  bool harness_scaler = false;
};

}  // namespace det::detail
