#pragma once
// Internal to the core layer: a trial built and ready to train, which the controller's parts
// share: setup (trial_setup.cpp) builds it, the loop (controller.cpp) and validation
// (validation.cpp) drive it, the checkpoint keeper saves and restores it, the report builder
// reports it.

#include <cstdint>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "det/core/amp.h"
#include "det/core/callback.h"
#include "det/core/context.h"
#include "det/core/controller.h"
#include "det/core/trial.h"
#include "det/data/loader.h"
#include "det/record/checkpoint.h"
#include "harness.h"

namespace det::detail {

/// One trial, built: its harness (the training position included), context, trial object,
/// callbacks and loaders, and the batch arithmetic. Members are destroyed in reverse order: the
/// loaders and callbacks before the trial, the trial before its context.
struct TrialRun {
  TrialRunOptions opt;
  std::shared_ptr<TrialHarness> h;
  std::unique_ptr<TrialContext> ctx;
  std::unique_ptr<Trial> trial;
  Callbacks callbacks;
  std::shared_ptr<data::DataLoader> train_loader, val_loader;
  std::shared_ptr<data::DataLoader> val_shard;  // this rank's share of val_loader (the same on one)
  int64_t gbs = 0;          // the global batch size trained: per-slot batch * ranks
  int64_t max_batches = 0;  // train until this many batches
  std::optional<record::CheckpointMetadata> resume_meta;  // the checkpoint resumed from
  std::optional<record::CheckpointMetadata> warm_meta;    // the checkpoint warm-started from
  std::optional<nlohmann::json> last_val_metrics, best_val_metrics;

  const config::ExperimentConfig& cfg() const { return h->config; }
  TrialState& state() { return h->state; }
  const TrialState& state() const { return h->state; }
  int world() const { return h->distributed->size(); }
  bool chief() const { return h->distributed->is_chief(); }
  int64_t epoch_len() const { return h->clock.epoch_len(); }

  template <typename F>
  void each_callback(F&& f) {
    for (auto& [name, cb] : callbacks) f(*cb);
  }

  // Runs a trial method under autocast when optimizations.mixed_precision asks for it.
  template <typename F>
  Metrics run_autocast(F&& f) {
    if (h->precision == Precision::kFloat32) return f();
    Autocast scope(h->device, h->precision);
    return f();
  }
};

/// Builds the trial (device, seed, precision, the trial object and its callbacks, the sharded
/// loaders, the batch arithmetic) and reads the checkpoint's metadata when resuming; the
/// checkpoint's state itself is restored later (CheckpointKeeper::restore), after
/// on_trial_startup. `run` receives each piece as soon as it exists, so that a failure part-way
/// leaves what was built (the context) to the caller.
void build_trial_run(TrialRun& run, config::ExperimentConfig config, const TrialFactory& factory);

/// Starts data parallelism on several ranks: every rank takes rank 0's weights and gradients are
/// averaged from autograd hooks (distributed::GradientSynchronizer).
void start_data_parallel(TrialRun& run);

}  // namespace det::detail
