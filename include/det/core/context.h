#pragma once
/// \file
/// TrialContext: the tools the harness gives a trial (Determined's PyTorchTrialContext).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "det/config/args.h"
#include "det/config/experiment_config.h"
#include "det/core/amp.h"
#include "det/core/reducer.h"
#include "det/core/step_clock.h"
#include "det/data/batch.h"
#include "det/distributed/distributed_context.h"
#include "det/optim/lr_scheduler.h"
#include "det/util/error.h"

namespace det {

namespace detail {
struct TrialHarness;
}

/// Metric values: scalar tensors (kept on the device; the harness reduces them in one sync).
using Metrics = std::map<std::string, torch::Tensor>;

/// The context of one trial: its config and hyperparameters, device and ranks, and the calls a
/// trial makes to train (`wrap_*`, `backward`, `step_optimizer`).
class TrialContext {
 public:
  /// A context of its own (tests, tools): the loop's clock stays at batch 0.
  TrialContext(config::ExperimentConfig config, nlohmann::json hparams, int64_t trial_id,
               uint32_t trial_seed, torch::Device device,
               std::shared_ptr<distributed::DistributedContext> distributed);
  /// The controller's: it shares the harness state (registrations, the step clock) with the
  /// loop. detail::TrialHarness is internal to the core layer.
  explicit TrialContext(std::shared_ptr<detail::TrialHarness> harness);
  ~TrialContext();
  TrialContext(const TrialContext&) = delete;
  TrialContext& operator=(const TrialContext&) = delete;

  // ---- configuration ----
  // Naming: accessors are nouns (`hparams()`, `hparam(name)`, `data()`, `device()`), predicates
  // start with is_/has_, actions are verbs (`wrap_model`, `backward`, `request_stop`).

  /// The whole experiment config.
  const config::ExperimentConfig& experiment_config() const;
  /// The `data:` section as a typed view whose errors name the file position and key path
  /// (`data().get<int>("num_workers", 2, config::Range{0, 256})`; `data().json()` is the JSON).
  config::Args data() const;
  /// This trial's hyperparameter values (JSON; read single values through `hparam(name)`).
  const nlohmann::json& hparams() const;
  /// Whether hyperparameter `name` exists (a dotted name looks into nested hyperparameters).
  bool has_hparam(const std::string& name) const;
  /// Hyperparameter `name` (dotted for nested ones) as a typed view, the one way a trial reads a
  /// hyperparameter: `hparam("lr").as<double>()`, `hparam("lr").as<double>(Range{0, 1})`,
  /// `hparam("optimizer").get<double>("momentum", 0.9)`. A mistyped value fails with the file
  /// position and key path ("exp.yaml:14:9: hyperparameters.optimizer.lr: expected a number,
  /// found 'fast'"); a name that is not defined is a ConfigError naming the config file with a
  /// suggestion (a CheckpointError naming the checkpoint when the trial resumed from one).
  config::Args hparam(const std::string& name) const;
  /// The `global_batch_size` hyperparameter (effective: per_slot * slots).
  int64_t global_batch_size() const;
  /// global_batch_size / slots.
  int64_t per_slot_batch_size() const;
  /// The trial's id in its experiment.
  int64_t trial_id() const;
  /// The trial's seed (the harness seeds LibTorch's generator with it).
  uint32_t trial_seed() const;
  /// The batch this trial started (or resumed) from.
  int64_t initial_batch() const;
  /// True in `det-run --test`.
  bool is_test_mode() const;

  // ---- devices and ranks ----
  /// The device the models live on (cuda:LOCAL_RANK when CUDA is available, else cpu).
  const torch::Device& device() const;
  /// The ranks of the trial (size 1 without data parallelism).
  distributed::DistributedContext& distributed() const;
  /// This process's rank.
  int rank() const;
  /// The number of ranks.
  int size() const;
  /// Moves a batch's tensors to the device.
  data::Batch to_device(const data::Batch& batch) const;

  // ---- where the loop is ----
  /// The loop's clock: batch index, epoch length, aggregation frequency.
  const StepClock& clock() const;
  /// The batch being trained (global, continuing across resumes).
  int64_t current_train_batch() const { return clock().batch(); }
  /// current_train_batch() / batches per epoch.
  int64_t current_train_epoch() const { return clock().epoch(); }
  /// The first batch of an epoch.
  bool is_epoch_start() const { return clock().is_epoch_start(); }
  /// The last batch of an epoch.
  bool is_epoch_end() const { return clock().is_epoch_end(); }

  // ---- wrapping: call these from the trial's constructor ----
  /// Moves the model to the device and registers it for checkpoints, train/eval mode and
  /// data-parallel gradient averaging (with several ranks). Accepts a module holder or a
  /// shared_ptr.
  template <typename M>
  M wrap_model(M model) {
    register_model(module_ptr(model));
    return model;
  }
  /// Registers an optimizer (built over parameters of wrapped models) for stepping and checkpoints.
  template <typename O>
  std::shared_ptr<O> wrap_optimizer(std::shared_ptr<O> optimizer) {
    static_assert(std::is_base_of_v<torch::optim::Optimizer, O>,
                  "wrap_optimizer takes a torch::optim::Optimizer");
    register_optimizer(optimizer);
    return optimizer;
  }
  /// Registers an LR scheduler; the harness steps it per `mode` and checkpoints it.
  template <typename S>
  std::shared_ptr<S> wrap_lr_scheduler(std::shared_ptr<S> scheduler, StepMode mode,
                                       int frequency = 1) {
    static_assert(std::is_base_of_v<optim::LRScheduler, S>,
                  "wrap_lr_scheduler takes a det::optim::LRScheduler");
    register_scheduler(scheduler, mode, frequency);
    return scheduler;
  }
  /// Registers a custom metric reducer. With a name its result is that metric; without, it must
  /// return an object of metrics.
  template <typename R>
  std::shared_ptr<R> wrap_reducer(std::shared_ptr<R> reducer, const std::string& name = "",
                                  bool for_training = true, bool for_validation = true) {
    static_assert(std::is_base_of_v<MetricReducer, R>, "wrap_reducer takes a det::MetricReducer");
    register_reducer(reducer, name, for_training, for_validation);
    return reducer;
  }
  /// A reducer over a function of all values passed to `update()`, published as metric `name`.
  std::shared_ptr<SimpleReducer> wrap_reducer(std::function<double(const std::vector<double>&)> fn,
                                              const std::string& name, bool for_training = true,
                                              bool for_validation = true);

  /// Registers the trial's own loss scaler (Determined's wrap_scaler): step_optimizer steps
  /// through it, the harness calls its update() once per update batch and checkpoints its
  /// state. The trial scales its loss itself (`context.backward(scaler->scale(loss))`) and opens
  /// its own Autocast scopes. At most once, and not with optimizations.mixed_precision fp16
  /// (the harness owns a scaler then).
  std::shared_ptr<GradScaler> wrap_scaler(std::shared_ptr<GradScaler> scaler);
  /// The loss scaler in use (the harness's or the trial's), or null.
  GradScaler* scaler() const;
  /// The autocast precision of train_batch and evaluate_* (optimizations.mixed_precision).
  Precision precision() const;

  // ---- training ----
  /// Back-propagates `loss` (outside autocast). With optimizations.mixed_precision fp16 it
  /// back-propagates `loss * scale` (the harness's GradScaler).
  void backward(const torch::Tensor& loss, bool retain_graph = false, bool create_graph = false);
  /// Steps `optimizer` on the last batch of every aggregation_frequency batches: waits for the
  /// gradients averaged across ranks (several ranks), averages the accumulated gradients
  /// (average_aggregated_gradients), unscales them with a loss scaler, applies `clip_grads`,
  /// steps (a scaler skips the step when a gradient is inf/NaN), and zeroes the gradients when
  /// `auto_zero_grads`. On other batches it returns and gradients accumulate.
  void step_optimizer(torch::optim::Optimizer& optimizer,
                      const std::function<void(const std::vector<torch::Tensor>&)>& clip_grads = {},
                      bool auto_zero_grads = true);
  /// True on the batches where step_optimizer steps.
  bool is_update_batch() const { return clock().is_update_batch(); }
  /// Asks the harness to checkpoint and exit after the current batch (Determined's
  /// `request_stop(True)`); the searcher sees an early exit.
  void request_stop();
  /// Whether request_stop() was called.
  bool stop_requested() const;

  /// The wrapped models, in wrap order.
  const std::vector<std::shared_ptr<torch::nn::Module>>& models() const;
  /// The wrapped optimizers, in wrap order.
  const std::vector<std::shared_ptr<torch::optim::Optimizer>>& optimizers() const;

 private:
  template <typename M>
  static std::shared_ptr<torch::nn::Module> module_ptr(const M& holder) {
    return holder.ptr();  // a torch::nn::ModuleHolder (e.g. torch::nn::Sequential)
  }
  template <typename M>
  static std::shared_ptr<torch::nn::Module> module_ptr(const std::shared_ptr<M>& m) {
    return m;
  }
  void register_model(std::shared_ptr<torch::nn::Module> model);
  void register_optimizer(std::shared_ptr<torch::optim::Optimizer> optimizer);
  void register_scheduler(std::shared_ptr<optim::LRScheduler> scheduler, StepMode mode,
                          int frequency);
  void register_reducer(std::shared_ptr<MetricReducer> reducer, const std::string& name,
                        bool for_training, bool for_validation);
  const nlohmann::json* find_hparam(const std::string& name) const;

  std::shared_ptr<detail::TrialHarness> h_;
};

}  // namespace det
