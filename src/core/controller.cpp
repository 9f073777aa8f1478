// The trial controller's loop: train periods, validations, stops, and the runner's next targets.
// Its parts: setup (trial_setup.cpp), validation (evaluation.cpp), the checkpoint keeper and the
// report builder.

#include "det/core/controller.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "checkpoint_keeper.h"
#include "det/config/metric.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "det/util/strings.h"
#include "device.h"
#include "evaluation.h"
#include "metrics.h"
#include "report_builder.h"
#include "trial_run.h"

namespace det {
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

struct TrialController::Impl {
  config::ExperimentConfig pending_config;  // until run() gives it to the harness
  TrialFactory factory;
  detail::TrialRun run;
  detail::CheckpointKeeper keeper{run};
  detail::ReportBuilder reports{run};
  detail::Evaluator evaluator{run};
  detail::MetricValues acc;       // the training period's metrics, by name
  bool first_batch_done = false;  // this process trained a batch (logged once: start-up time)

  TrialState& state() { return run.state(); }
  const StepClock& clock() const { return run.h->clock; }

  bool period_fires(const config::Length& p, bool epoch_end) {
    if (p.value < 1) return false;
    switch (p.unit) {
      case config::Unit::kBatches:
        return state().batches_trained % p.value == 0;
      case config::Unit::kRecords:
        return state().batches_trained % std::max<int64_t>(p.value / run.gbs, 1) == 0;
      case config::Unit::kEpochs:
        return epoch_end && state().epochs_trained % p.value == 0;
    }
    return false;
  }

  void set_train_mode(bool train) {
    for (auto& m : run.h->models) m->train(train);
  }

  void step_schedulers() {
    for (auto& s : run.h->schedulers)
      for (int n = clock().scheduler_steps(s.mode, s.frequency); n > 0; --n) s.scheduler->step();
  }

  // Trains the batch at the training position and advances it; returns whether it ended an
  // epoch.
  bool train_batch(data::BatchStream& stream) {
    auto& h = *run.h;
    const int64_t g = state().batches_trained, epoch_idx = clock().epoch();
    if (clock().is_epoch_start())
      run.each_callback([&](Callback& cb) { cb.on_training_epoch_start(epoch_idx); });
    const auto wait_start = Clock::now();
    data::Batch batch = stream.next();
    const double wait = seconds_since(wait_start);
    batch = run.ctx->to_device(batch);
    if (run.cfg().optimizations.channels_last) batch = detail::to_channels_last(std::move(batch));
    if (h.grad_sync) h.grad_sync->prepare(clock().is_update_batch());
    Metrics m = run.run_autocast([&] { return run.trial->train_batch(batch, epoch_idx, g); });
    // Once per update batch, after every optimizer stepped (Determined's auto-AMP).
    if (h.scaler && clock().is_update_batch() && h.scaler->has_pending()) h.scaler->update();
    step_schedulers();
    for (auto& [k, v] : m) acc[k].push_back(v.defined() ? v.detach() : v);
    reports.add_batch(batch.size(), wait);
    const bool epoch_end = clock().is_epoch_end();
    ++state().batches_trained;  // the clock moves with it
    if (!first_batch_done) {
      first_batch_done = true;
      // When a worker's training began (a promoted trial's start-up time; docs/performance.md).
      if (run.chief())
        util::logger()->info("trial {} [train] batch {}: the first of this process",
                             state().trial_id, state().batches_trained);
    }
    if (epoch_end) {
      ++state().epochs_trained;
      run.each_callback([&](Callback& cb) { cb.on_training_epoch_end(epoch_idx); });
    }
    return epoch_end;
  }

  // Trains until a boundary (length, validation, checkpoint, report, stop); returns true on stop.
  bool train_period(data::BatchStream& stream) {
    set_train_mode(true);
    detail::reset_reducers(run, true);
    acc.clear();
    reports.begin_period();
    const auto& cfg = run.cfg();
    bool val = false, ckpt = false, stop = false;
    for (;;) {
      const bool epoch_end = train_batch(stream);
      reports.show_progress();
      const bool done = state().batches_trained >= run.max_batches;
      if (!run.opt.test_mode) {
        val = period_fires(cfg.min_validation_period, epoch_end);
        ckpt = period_fires(cfg.min_checkpoint_period, epoch_end);
      }
      const bool report = state().batches_trained % cfg.scheduling_unit == 0;
      stop = run.h->stop_requested || (run.opt.stop_flag && run.opt.stop_flag->load());
      // Every rank stops after the same batch.
      stop = detail::any_rank(*run.h->distributed, stop, run.h->device);
      if (done || val || ckpt || report || stop) break;
    }
    report_training();
    if (val && state().last_validation != state().batches_trained) validate();
    if (ckpt) keeper.save_if_new();
    return stop;
  }

  void report_training() {
    json metrics = detail::average_across_ranks(
        *run.h->distributed,
        detail::reduce_tensors(acc, [](const std::string&, const std::vector<double>& v) {
          return reduce(Reducer::kAvg, v);
        }));
    detail::add_custom_reducers(run, metrics, true);
    reports.check_finite(metrics, "training");
    const auto report = reports.training(metrics);
    const Metrics tensors = detail::to_tensors(metrics);
    run.each_callback([&](Callback& cb) { cb.on_training_workload_end(tensors); });
    reports.emit_training(report);
  }

  void validate() {
    const auto start = Clock::now();
    set_train_mode(false);
    detail::reset_reducers(run, false);
    run.each_callback([](Callback& cb) { cb.on_validation_start(); });
    json metrics = evaluator.evaluate();
    detail::add_custom_reducers(run, metrics, false);
    set_train_mode(true);
    state().last_validation = state().batches_trained;
    const bool improved = record_validation(metrics);
    const Metrics tensors = detail::to_tensors(metrics);
    run.each_callback([&](Callback& cb) { cb.on_validation_end(tensors); });
    reports.emit_validation(metrics, seconds_since(start));
    const auto& policy = run.cfg().checkpoint_policy;
    if (policy == "all" || (policy == "best" && improved)) keeper.save_if_new();
  }

  // Checks the searcher metric and keeps the metrics as the last (and maybe best) validation;
  // returns whether they are the best so far.
  bool record_validation(const json& metrics) {
    const auto& cfg = run.cfg();
    const std::string& name = cfg.searcher.metric;
    if (!metrics.contains(name) || !metrics[name].is_number()) {
      std::vector<std::string> keys;
      for (auto it = metrics.begin(); it != metrics.end(); ++it) keys.push_back(it.key());
      throw Error(
          "the searcher metric '" + name +
          "' is not a numeric validation metric (validation returned: " + util::join(keys, ", ") +
          ")" + util::did_you_mean(name, keys) + "; fix searcher.metric in " + cfg.source);
    }
    reports.check_finite(metrics, "validation");
    const double value = metrics[name].get<double>();
    const bool improved =
        config::is_better(value, state().best_metric, cfg.searcher.smaller_is_better);
    if (improved) {
      state().best_metric = value;
      run.best_val_metrics = metrics;
    }
    run.last_val_metrics = metrics;
    return improved;
  }

  TrialResult result(TrialResult::Exit exit) const {
    TrialResult r;
    r.exit = exit;
    r.state = run.state();
    r.hparams = run.h->hparams;
    r.trial_seed = run.h->trial_seed;
    r.last_validation = run.last_val_metrics;
    r.best_validation = run.best_val_metrics;
    r.checkpoints = keeper.checkpoints();
    return r;
  }

  // Calls on_trial_shutdown also when the trial fails (never masking the failure).
  struct Shutdown {
    Impl& self;
    ~Shutdown() {
      try {
        self.run.each_callback([](Callback& cb) { cb.on_trial_shutdown(); });
      } catch (const std::exception& e) {
        util::logger()->warn("trial {}: a callback's on_trial_shutdown failed: {}",
                             self.state().trial_id, e.what());
      }
    }
  };

  TrialResult run_trial() {
    detail::build_trial_run(run, std::move(pending_config), factory);
    Shutdown shutdown{*this};
    if (!start()) return result(TrialResult::Exit::kCompleted);
    std::optional<config::Length> target = run.opt.target;
    for (;;) {
      if (state().batches_trained < run.max_batches) {
        auto stream = run.train_loader->stream(state().batches_trained, run.max_batches);
        while (state().batches_trained < run.max_batches)
          if (train_period(*stream)) return stop();
      }
      if (state().last_validation != state().batches_trained) validate();
      if (trial_asked_to_stop()) return stop();
      if (!run.opt.next_target || !target) break;
      target = next_target(*target);
      if (!target) break;
    }
    keeper.save_if_new();
    reports.clear_progress();
    reports.log_gradient_sync();
    return result(TrialResult::Exit::kCompleted);
  }

  // Startup callbacks, the checkpoint's state, the ranks' weights, the initial validation.
  // Returns false when there is nothing to train.
  bool start() {
    auto& s = state();
    std::optional<std::string> uuid;
    if (run.resume_meta) uuid = run.resume_meta->uuid;
    run.each_callback([&](Callback& cb) { cb.on_trial_startup(s.batches_trained, uuid); });
    if (run.resume_meta)
      keeper.restore();
    else if (run.warm_meta)
      keeper.warm_start();
    if (run.world() > 1) detail::start_data_parallel(run);
    reports.begin_run();
    if (run.resume_meta && s.batches_trained > run.max_batches && !run.opt.test_mode)
      throw CheckpointError(run.opt.resume_from->string() + ": the checkpoint has trained " +
                            std::to_string(s.batches_trained) + " batches, past this run's " +
                            std::to_string(run.max_batches) +
                            " (searcher.max_length); raise it to go on from there, or resume an "
                            "earlier checkpoint");
    if (s.batches_trained >= run.max_batches && !run.opt.next_target) {
      if (run.chief())
        util::logger()->info(
            "trial {}: already trained {} batches, the target is {}: nothing to do", s.trial_id,
            s.batches_trained, run.max_batches);
      return false;
    }
    run.each_callback([](Callback& cb) { cb.on_training_start(); });
    if (run.cfg().perform_initial_validation && s.batches_trained == 0 && !s.last_validation)
      validate();
    return true;
  }

  // The runner decides what comes next: a longer target, or checkpoint and exit (pause/close).
  std::optional<config::Length> next_target(const config::Length& reached) {
    const double metric = (*run.last_val_metrics)[run.cfg().searcher.metric].get<double>();
    reports.clear_progress();
    std::optional<config::Length> next = run.opt.next_target(reached, metric);
    if (!next) return std::nullopt;
    const int64_t next_batches = config::to_batches(*next, run.gbs, run.epoch_len());
    if (next_batches < state().batches_trained)
      throw Error("the experiment runner asked trial " + std::to_string(state().trial_id) +
                  " to train to batch " + std::to_string(next_batches) +
                  ", but it has already trained " + std::to_string(state().batches_trained));
    run.max_batches = next_batches;
    return next;
  }

  // Checkpoints where the loop stopped (a stop flag, or the trial's own request) and returns.
  // Every rank calls it at the same point.
  TrialResult stop() {
    keeper.save_if_new();
    reports.clear_progress();
    const bool own = trial_asked_to_stop();
    if (run.chief())
      util::logger()->warn("trial {}: stopped at batch {} {}", state().trial_id,
                           state().batches_trained,
                           own ? "because the trial asked to stop" : "on request");
    return result(own ? TrialResult::Exit::kStopRequested : TrialResult::Exit::kStopped);
  }

  // TrialContext::request_stop on any rank (a collective on several ranks).
  bool trial_asked_to_stop() {
    return detail::any_rank(*run.h->distributed, run.h->stop_requested, run.h->device);
  }
};

TrialController::TrialController(config::ExperimentConfig config, TrialFactory factory,
                                 TrialRunOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->pending_config = std::move(config);
  impl_->factory = std::move(factory);
  impl_->run.opt = std::move(options);
}

TrialController::~TrialController() = default;

TrialResult TrialController::run() { return impl_->run_trial(); }

TrialContext& TrialController::context() {
  if (!impl_->run.ctx) throw Error("TrialController::context() called before run()");
  return *impl_->run.ctx;
}

const distributed::GradientSynchronizer* TrialController::gradient_sync() const {
  return impl_->run.h ? impl_->run.h->grad_sync.get() : nullptr;
}

}  // namespace det
