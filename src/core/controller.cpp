#include "det/core/controller.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>

#include <spdlog/spdlog.h>
#include <torch/cuda.h>

#include "det/config/metric.h"
#include "det/core/checkpoint.h"
#include "det/core/registry.h"
#include "det/distributed/gradient_sync.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "det/util/progress.h"
#include "det/util/strings.h"
#include "device.h"
#include "harness.h"
#include "metrics.h"

namespace det {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

namespace {

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

bool not_overridden(const Metrics& m) { return m.size() == 1 && m.count(detail::kNotOverridden); }

}  // namespace

struct TrialController::Impl {
  config::ExperimentConfig cfg;
  TrialFactory factory;
  TrialRunOptions opt;

  std::shared_ptr<detail::TrialHarness> h = std::make_shared<detail::TrialHarness>();
  std::unique_ptr<TrialContext> ctx;
  std::unique_ptr<Trial> trial;
  Callbacks callbacks;
  std::shared_ptr<data::DataLoader> train_loader, val_loader;
  std::shared_ptr<data::DataLoader>
      val_shard;  // this rank's share of val_loader (== val_loader on one rank)
  int64_t gbs = 0, max_batches = 0;
  TrialState state;
  std::optional<record::CheckpointMetadata> resume_meta;
  std::vector<record::CheckpointRef> checkpoints;
  std::optional<json> last_val_metrics, best_val_metrics;
  std::unique_ptr<util::ProgressLine> progress = std::make_unique<util::ProgressLine>(false);
  /// Which evaluate method the trial overrides, learnt at its first validation.
  enum class Evaluation { kUnknown, kFullDataset, kBatches } evaluation = Evaluation::kUnknown;

  // Training period accumulators.
  detail::MetricValues acc;
  int64_t acc_batches = 0, acc_samples = 0;
  double acc_wait = 0;
  Clock::time_point period_start, run_start;
  int64_t run_first_batch = 0;
  std::string last_summary;       // the last training report's metrics, for the progress line
  bool first_batch_done = false;  // this process trained a batch (logged once: start-up time)

  int world() const { return ctx->size(); }
  bool chief() const { return ctx->distributed().is_chief(); }
  const StepClock& clock() const { return h->clock; }
  int64_t epoch_len() const { return h->clock.epoch_len(); }

  template <typename F>
  void each_callback(F&& f) {
    for (auto& [name, cb] : callbacks) f(*cb);
  }

  bool period_fires(const config::Length& p, bool epoch_end) const {
    if (p.value < 1) return false;
    switch (p.unit) {
      case config::Unit::kBatches:
        return state.batches_trained % p.value == 0;
      case config::Unit::kRecords:
        return state.batches_trained % std::max<int64_t>(p.value / gbs, 1) == 0;
      case config::Unit::kEpochs:
        return epoch_end && state.epochs_trained % p.value == 0;
    }
    return false;
  }

  // ---- setup ----

  void setup() {
    h->config = cfg;
    h->hparams = opt.hparams;
    h->trial_seed = opt.trial_seed;
    h->trial_id = opt.trial_id;
    h->test_mode = opt.test_mode;
    if (opt.resume_from) {
      opt.resume_from = checkpoint::normalize_dir(*opt.resume_from);
      resume_meta = checkpoint::read_metadata(*opt.resume_from);
      const auto& m = *resume_meta;
      if (!m.entrypoint.empty() && m.entrypoint != cfg.entrypoint)
        throw CheckpointError(opt.resume_from->string() + ": written by trial '" + m.entrypoint +
                              "', but the config's entrypoint is '" + cfg.entrypoint + "'");
      h->hparams = m.hparams;
      h->hparams_source = (*opt.resume_from / record::kMetadataFile).string();
      h->trial_seed = m.trial_seed;
      h->trial_id = m.trial_state.trial_id;
      if (opt.trial_dir.empty()) opt.trial_dir = opt.resume_from->parent_path().parent_path();
    }
    h->distributed = opt.distributed ? opt.distributed : distributed::make_local_context();
    h->device = torch::cuda::is_available()
                    ? torch::Device(torch::kCUDA, h->distributed->local_rank())
                    : torch::Device(torch::kCPU);
    h->precision = parse_precision(cfg.optimizations.mixed_precision);
    check_precision_supported(h->precision, h->device);
    if (h->precision == Precision::kFloat16) {  // fp16 needs loss scaling; bf16's range does not
      h->scaler = std::make_shared<GradScaler>();
      h->harness_scaler = true;
    }
    torch::manual_seed(h->trial_seed);
    std::srand(h->trial_seed);
    h->clock = StepClock(0, cfg.optimizations.aggregation_frequency);
    ctx = std::make_unique<TrialContext>(h);
    TrialRegistry::instance().check_config(cfg.entrypoint, *ctx);  // as validate-config does
    trial = factory(*ctx);
    if (h->models.empty())
      throw Error("trial '" + cfg.entrypoint +
                  "' wrapped no model: call context.wrap_model(...) in its constructor");
    if (h->optimizers.empty())
      throw Error("trial '" + cfg.entrypoint +
                  "' wrapped no optimizer: call context.wrap_optimizer(...) in its constructor");
    callbacks = trial->build_callbacks();
    std::set<std::string> names;
    for (const auto& [name, cb] : callbacks) {
      if (!cb) throw Error("trial '" + cfg.entrypoint + "': callback '" + name + "' is null");
      if (!names.insert(name).second)
        throw Error("trial '" + cfg.entrypoint + "': two callbacks are named '" + name +
                    "'; names key their checkpointed state");
    }
    for (const auto& line : detail::apply_backend_options(cfg.optimizations, h->device))
      if (chief()) util::logger()->info("{} ({})", line, cfg.source);
    if (cfg.optimizations.channels_last) detail::to_channels_last(h->models);
    train_loader = trial->build_training_data_loader();
    val_loader = trial->build_validation_data_loader();
    if (!train_loader || !val_loader)
      throw Error("trial '" + cfg.entrypoint + "' returned a null data loader");
    train_loader = shard_for_ranks(train_loader, "training");
    val_shard = shard_for_ranks(val_loader, "validation");
    if (opt.test_mode) {  // Determined's test mode: one validation batch
      val_loader = val_loader->limited(1);
      val_shard = val_shard->limited(1);
    }
    const int64_t len = train_loader->batches_per_epoch();
    if (len < 1)
      throw DataError("the training data loader yields no batch (is the dataset empty?)");
    h->clock = StepClock(len, cfg.optimizations.aggregation_frequency);
    gbs = ctx->has_hparam("global_batch_size") ? ctx->global_batch_size()
                                               : train_loader->batch_size() * ctx->size();
    // Determined's calculate_batch_sizes: per-slot batch = gbs // slots, and the batch trained is
    // per-slot * slots, said once when it is not the one asked for.
    if (ctx->has_hparam("global_batch_size") && chief())
      if (const auto asked = ctx->hparam("global_batch_size").as<int64_t>(); asked != gbs)
        util::logger()->warn(
            "trial {}: global_batch_size {} is not a multiple of the {} ranks: each trains {} "
            "examples a batch, {} in all",
            h->trial_id, asked, ctx->size(), gbs / ctx->size(), gbs);
    state.trial_id = h->trial_id;
    if (resume_meta) state = resume_meta->trial_state;
    h->initial_batch = state.batches_trained;
    h->clock.set_batch(state.batches_trained);

    if (opt.test_mode) {
      max_batches = state.batches_trained + 1;
    } else if (opt.target) {
      max_batches = config::to_batches(*opt.target, gbs, len);
    } else if (opt.max_length_batches) {
      max_batches = *opt.max_length_batches;
    } else {
      if (!cfg.searcher.max_length)
        throw ConfigError(cfg.source + ": searcher.max_length is required");
      max_batches = config::to_batches(*cfg.searcher.max_length, gbs, len);
    }
  }

  std::string callback_names() const {
    std::vector<std::string> names;
    for (const auto& [name, cb] : callbacks) names.push_back(util::quote(name));
    return names.empty() ? "none" : util::join(names, ", ");
  }

  // Restores the checkpoint's state (after on_trial_startup, as Determined does).
  void restore() {
    const auto& m = *resume_meta;
    each_callback([&](Callback& cb) { cb.on_checkpoint_load_start(m); });
    checkpoint::load(*opt.resume_from, h->models, h->optimizers, /*restore_rng=*/true);
    if (m.lr_schedulers.size() != h->schedulers.size())
      throw CheckpointError(opt.resume_from->string() + ": the checkpoint holds " +
                            std::to_string(m.lr_schedulers.size()) +
                            " LR scheduler(s) but the trial wraps " +
                            std::to_string(h->schedulers.size()));
    for (size_t i = 0; i < m.lr_schedulers.size(); ++i)
      h->schedulers[i].scheduler->load_state_dict(m.lr_schedulers[i]);
    for (auto& [name, cb] : callbacks) {
      auto it = m.callbacks.find(name);
      if (it != m.callbacks.end()) cb->load_state_dict(it->second);
    }
    restore_scaler(m);
    for (const auto& [name, s] : m.callbacks)
      if (std::none_of(callbacks.begin(), callbacks.end(),
                       [&](const auto& c) { return c.first == name; }))
        throw CheckpointError(opt.resume_from->string() +
                              ": the checkpoint holds the state of callback " + util::quote(name) +
                              ", which trial '" + cfg.entrypoint +
                              "' does not have (its callbacks: " + callback_names() +
                              "); resume it with the trial that wrote it");
    if (m.epoch_len != epoch_len())
      util::logger()->warn(
          "the checkpoint was written with {} batches per epoch, the data now gives {}: the data "
          "position is not exactly where training stopped",
          m.epoch_len, epoch_len());
    last_val_metrics = m.last_validation_metrics;
    best_val_metrics = m.best_validation_metrics;
    scan_existing_checkpoints();
    if (chief())
      util::logger()->info("trial {}: resumed from {} at batch {} (epoch {})", state.trial_id,
                           opt.resume_from->string(), state.batches_trained, state.epochs_trained);
  }

  // The loss scale continues where it was, so a resumed fp16 run equals an uninterrupted one.
  void restore_scaler(const record::CheckpointMetadata& m) {
    const std::string where = opt.resume_from->string();
    if (h->scaler && m.grad_scaler) {
      try {
        h->scaler->load_state_dict(*m.grad_scaler);
      } catch (const CheckpointError& e) {
        throw CheckpointError(where + ": " + e.what());
      }
    } else if (h->scaler && h->scaler->is_enabled() && chief()) {
      util::logger()->warn(
          "trial {}: {} was written without loss scaling; the scaler starts at its initial "
          "scale {}",
          state.trial_id, where, h->scaler->get_scale());
    } else if (!h->scaler && m.grad_scaler && chief()) {
      util::logger()->warn(
          "trial {}: {} holds a loss scaler's state but this run scales no loss "
          "(optimizations.mixed_precision is {}); ignored",
          state.trial_id, where, cfg.optimizations.mixed_precision);
    }
  }

  // Determined's DistributedBatchSampler: rank r keeps the loader's batches r, r + n, ...
  std::shared_ptr<data::DataLoader> shard_for_ranks(const std::shared_ptr<data::DataLoader>& loader,
                                                    const char* which) {
    const int n = world(), r = ctx->rank();
    if (n == 1) return loader;
    const auto& o = loader->options();
    if (o.num_replicas() == n && o.rank() == r) return loader;  // the trial sharded it itself
    if (o.num_replicas() != 1)
      throw Error(std::string("the ") + which + " data loader of trial '" + cfg.entrypoint +
                  "' is sharded " + std::to_string(o.num_replicas()) +
                  " ways but the trial runs on " + std::to_string(n) +
                  " ranks; leave sharding to the harness");
    return loader->sharded(n, r);
  }

  // Every rank starts from rank 0's weights (the trials seed alike, but a model may not), then
  // gradients are averaged from autograd hooks (distributed::GradientSynchronizer).
  void setup_data_parallel() {
    auto& d = ctx->distributed();
    std::vector<torch::Tensor> params;
    {
      torch::NoGradGuard no_grad;
      for (auto& m : h->models) {
        for (auto& p : m->parameters()) {
          torch::Tensor t = p;
          d.broadcast(t, 0);
          params.push_back(p);
        }
        for (auto& b : m->buffers()) {
          torch::Tensor t = b;
          d.broadcast(t, 0);
        }
      }
    }
    h->grad_sync = std::make_unique<distributed::GradientSynchronizer>(h->distributed, params);
    if (chief())
      util::logger()->info(
          "trial {}: data-parallel on {} ranks ({}), {} gradient bucket(s), per-slot batch {}, "
          "{} intra-op thread(s) a rank",
          state.trial_id, world(), d.backend(), h->grad_sync->num_buckets(),
          train_loader->batch_size(), at::get_num_threads());
  }

  // The trial's complete checkpoints already on disk (a resumed trial's), for retention.
  void scan_existing_checkpoints() {
    fs::path dir = opt.trial_dir / "checkpoints";
    if (!fs::is_directory(dir)) return;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_directory() || record::is_staging_name(entry.path().filename().string()))
        continue;
      try {
        auto meta = record::read_checkpoint_metadata(entry.path(), /*verify_files=*/false);
        checkpoints.push_back(
            {meta.uuid, entry.path(), meta.trial_state.batches_trained, meta.searcher_metric});
      } catch (const Error&) {
        // Not a complete checkpoint: the experiment recorder cleans those up.
      }
    }
    std::sort(checkpoints.begin(), checkpoints.end(),
              [](const auto& a, const auto& b) { return a.batches < b.batches; });
  }

  // ---- training ----

  void set_train_mode(bool train) {
    for (auto& m : h->models) m->train(train);
  }

  void reset_reducers(bool training) {
    for (auto& r : h->reducers)
      if (training ? r.for_training : r.for_validation) r.reducer->reset();
  }

  void add_custom_reducers(json& metrics, bool training) {
    for (auto& r : h->reducers) {
      if (!(training ? r.for_training : r.for_validation)) continue;
      auto gathered = ctx->distributed().allgather(r.reducer->per_slot_reduce());
      json value = r.reducer->cross_slot_reduce(gathered);
      if (!r.name.empty()) {
        metrics[r.name] = value;
      } else if (value.is_object()) {
        for (auto it = value.begin(); it != value.end(); ++it) metrics[it.key()] = it.value();
      } else {
        throw Error("a reducer wrapped without a name must return an object of metrics, got " +
                    util::shorten(value.dump()));
      }
    }
  }

  // Runs a trial method under autocast when optimizations.mixed_precision asks for it.
  template <typename F>
  Metrics run_autocast(F&& f) {
    if (h->precision == Precision::kFloat32) return f();
    Autocast scope(h->device, h->precision);
    return f();
  }

  void step_schedulers() {
    for (auto& s : h->schedulers)
      for (int n = clock().scheduler_steps(s.mode, s.frequency); n > 0; --n) s.scheduler->step();
  }

  // Trains until a boundary (length, validation, checkpoint, report, stop); returns true on stop.
  bool train_period(data::BatchStream& stream) {
    set_train_mode(true);
    reset_reducers(true);
    acc.clear();
    acc_batches = acc_samples = 0;
    acc_wait = 0;
    period_start = Clock::now();
    bool val = false, ckpt = false, stop = false;
    for (;;) {
      const int64_t g = state.batches_trained;
      h->clock.set_batch(g);
      const int64_t epoch_idx = clock().epoch();
      if (clock().is_epoch_start())
        each_callback([&](Callback& cb) { cb.on_training_epoch_start(epoch_idx); });
      auto wait_start = Clock::now();
      data::Batch batch = stream.next();
      acc_wait += seconds_since(wait_start);
      batch = ctx->to_device(batch);
      if (cfg.optimizations.channels_last) batch = detail::to_channels_last(std::move(batch));
      if (h->grad_sync) h->grad_sync->prepare(clock().is_update_batch());
      Metrics m = run_autocast([&] { return trial->train_batch(batch, epoch_idx, g); });
      // Once per update batch, after every optimizer stepped (Determined's auto-AMP).
      if (h->scaler && clock().is_update_batch() && h->scaler->has_pending()) h->scaler->update();
      step_schedulers();
      for (auto& [k, v] : m) acc[k].push_back(v.defined() ? v.detach() : v);
      ++acc_batches;
      acc_samples += batch.size();
      ++state.batches_trained;
      if (!first_batch_done) {
        first_batch_done = true;
        // When a worker's training began (a promoted trial's start-up time; docs/performance.md).
        if (chief())
          util::logger()->info("trial {} [train] batch {}: the first of this process",
                               state.trial_id, state.batches_trained);
      }
      const bool epoch_end = clock().is_epoch_end();
      if (epoch_end) {
        ++state.epochs_trained;
        each_callback([&](Callback& cb) { cb.on_training_epoch_end(epoch_idx); });
      }
      show_progress();

      const bool done = state.batches_trained >= max_batches;
      if (!opt.test_mode) {
        val = period_fires(cfg.min_validation_period, epoch_end);
        ckpt = period_fires(cfg.min_checkpoint_period, epoch_end);
      }
      const bool report = state.batches_trained % cfg.scheduling_unit == 0;
      stop = h->stop_requested || (opt.stop_flag && opt.stop_flag->load());
      stop = detail::any_rank(ctx->distributed(), stop,
                              ctx->device());  // every rank stops after the same batch
      if (done || val || ckpt || report || stop) break;
    }
    report_training();
    if (val && state.last_validation != state.batches_trained) validate();
    if (ckpt && state.last_checkpoint != state.batches_trained) checkpoint();
    return stop;
  }

  void show_progress() {
    if (!progress->enabled()) return;
    double elapsed = seconds_since(run_start);
    double rate =
        static_cast<double>(state.batches_trained - run_first_batch) / std::max(elapsed, 1e-9);
    double pct = max_batches > 0 ? 100.0 * static_cast<double>(state.batches_trained) /
                                       static_cast<double>(max_batches)
                                 : 0;
    char buf[256];
    std::snprintf(
        buf, sizeof buf, "[train] batch %lld/%lld (%.1f%%) epoch %.2f | %.0f samples/s | ETA %s",
        static_cast<long long>(state.batches_trained), static_cast<long long>(max_batches), pct,
        static_cast<double>(state.batches_trained) / static_cast<double>(epoch_len()),
        rate * static_cast<double>(gbs),
        util::format_duration(static_cast<double>(max_batches - state.batches_trained) /
                              std::max(rate, 1e-9))
            .c_str());
    progress->update(buf + last_summary, state.batches_trained >= max_batches);
  }

  // Non-finite metrics are visible: a warning naming them and the batch, or, with
  // optimizations.fail_on_non_finite, the end of the trial. Every rank holds the same reduced
  // metrics, so every rank decides alike.
  void check_finite(const json& metrics, const char* what) {
    std::vector<std::string> bad;
    for (auto it = metrics.begin(); it != metrics.end(); ++it)
      if (it.value().is_number_float() && !std::isfinite(it.value().get<double>()))
        bad.push_back(it.key() + "=" + record::portable_metrics(it.value()).get<std::string>());
    if (bad.empty()) return;
    const std::string msg = "trial " + std::to_string(state.trial_id) + ": non-finite " + what +
                            " metric(s) " + util::join(bad, ", ") + " at batch " +
                            std::to_string(state.batches_trained);
    if (cfg.optimizations.fail_on_non_finite)
      throw NonFiniteMetric(msg + "; the trial stops (optimizations.fail_on_non_finite)");
    if (chief())
      util::logger()->warn(
          "{}; training goes on (optimizations.fail_on_non_finite: true stops a trial instead)",
          msg);
  }

  record::MetricsReport make_report(record::MetricsReport::Kind kind, const json& metrics) const {
    record::MetricsReport r;
    r.kind = kind;
    r.trial_id = state.trial_id;
    r.batches = state.batches_trained;
    r.epochs = static_cast<double>(state.batches_trained) / static_cast<double>(epoch_len());
    r.metrics = metrics;
    r.ranks = world();
    r.time = util::utc_now_iso8601();
    return r;
  }

  // Every parameter group's learning rate, as the LR schedulers left it.
  json learning_rates() const {
    json out = json::object();
    size_t groups = 0;
    for (const auto& o : h->optimizers) groups += o->param_groups().size();
    for (size_t i = 0; i < h->optimizers.size(); ++i) {
      const auto& pg = h->optimizers[i]->param_groups();
      for (size_t j = 0; j < pg.size(); ++j) {
        double lr;
        try {
          lr = pg[j].options().get_lr();
        } catch (const std::exception&) {
          continue;  // an optimizer whose options have no learning rate
        }
        out[groups == 1 ? std::string("lr") : "lr/" + std::to_string(i) + "." + std::to_string(j)] =
            lr;
      }
    }
    return out;
  }

  void report_training() {
    double elapsed = std::max(seconds_since(period_start), 1e-9);
    json metrics = detail::average_across_ranks(
        ctx->distributed(),
        detail::reduce_tensors(acc, [](const std::string&, const std::vector<double>& v) {
          return reduce(Reducer::kAvg, v);
        }));
    add_custom_reducers(metrics, true);
    check_finite(metrics, "training");
    auto report = make_report(record::MetricsReport::Kind::kTraining, metrics);
    // Samples of every rank (each trains the same number of batches): the trial's throughput.
    report.throughput = {
        {"samples_per_second", static_cast<double>(acc_samples * world()) / elapsed},
        {"batches_per_second", static_cast<double>(acc_batches) / elapsed},
        {"data_wait_fraction", acc_wait / elapsed}};
    report.learning_rates = learning_rates();
    if (h->scaler && h->scaler->is_enabled()) {
      report.throughput["loss_scale"] = h->scaler->get_scale();
      report.throughput["skipped_steps"] = h->scaler->skipped_steps();
    }
    if (auto peak = detail::peak_device_memory(h->device)) {
      report.throughput["peak_memory_bytes"] = *peak;
      detail::reset_peak_device_memory(h->device);
    }
    each_callback([&](Callback& cb) { cb.on_training_workload_end(metrics); });
    if (!chief()) return;
    last_summary = " | " + detail::format_metrics(metrics);
    progress->clear();
    util::logger()->info(
        "trial {} [train] batch {}/{} epoch {:.2f}: {} | {:.1f} samples/s, {:.2f} batches/s, data "
        "wait {:.1f}%",
        state.trial_id, state.batches_trained, max_batches, report.epochs,
        detail::format_metrics(metrics), report.throughput["samples_per_second"].get<double>(),
        report.throughput["batches_per_second"].get<double>(),
        100.0 * report.throughput["data_wait_fraction"].get<double>());
    if (report.throughput.contains("loss_scale"))
      util::logger()->debug("trial {}: loss scale {}, {} step(s) skipped so far", state.trial_id,
                            h->scaler->get_scale(), h->scaler->skipped_steps());
    if (opt.listener) opt.listener->on_report(report);
  }

  // ---- validation ----

  // evaluate_full_dataset runs on the chief alone over the whole validation set (spec 1.3) and
  // its metrics are broadcast; evaluate_batch runs on every rank over its shard.
  json evaluate() {
    torch::NoGradGuard no_grad;
    if (evaluation != Evaluation::kBatches) {
      json full_metrics;
      bool full = false;
      if (chief()) {
        Metrics m = run_autocast([&] { return trial->evaluate_full_dataset(*val_loader); });
        full = !not_overridden(m);
        if (full) {
          detail::MetricValues one;
          for (auto& [k, v] : m) one[k].push_back(v);
          full_metrics = detail::reduce_tensors(
              one, [](const std::string&, const std::vector<double>& v) { return v[0]; });
        }
      }
      if (world() > 1) {
        auto shared = ctx->distributed().broadcast(json{{"full", full}, {"metrics", full_metrics}});
        full = shared["full"].get<bool>();
        full_metrics = shared["metrics"];
      }
      evaluation = full ? Evaluation::kFullDataset : Evaluation::kBatches;
      if (full) return full_metrics;
    }
    auto stream = val_shard->stream(0, val_shard->batches_in_one_pass());
    detail::MetricValues values;
    int64_t n = 0;
    while (!stream->done()) {
      data::Batch batch = ctx->to_device(stream->next());
      if (cfg.optimizations.channels_last) batch = detail::to_channels_last(std::move(batch));
      Metrics m = run_autocast([&] { return trial->evaluate_batch(batch, n); });
      if (n == 0 && not_overridden(m))
        throw Error("trial '" + cfg.entrypoint +
                    "' must override evaluate_batch or evaluate_full_dataset");
      if (n > 0 && m.size() != values.size())
        throw Error("evaluate_batch returned different metric names at batch " + std::to_string(n) +
                    "; every batch must return the same metrics");
      for (auto& [k, v] : m) {
        if (n > 0 && !values.count(k))
          throw Error("evaluate_batch returned metric '" + k + "' at batch " + std::to_string(n) +
                      " but not at batch 0");
        values[k].push_back(v.defined() ? v.detach() : v);
      }
      ++n;
    }
    if (n == 0 && world() == 1)
      throw DataError("the validation data loader is empty: validation needs at least one batch");
    ReducerSpec spec = trial->evaluation_reducer();
    if (spec.is_map() && n > 0) {
      for (const auto& kv : spec.per_metric())
        if (!values.count(kv.first))
          throw Error("evaluation_reducer() names metric '" + kv.first +
                      "' that evaluate_batch does not return");
    }
    json mine =
        detail::reduce_tensors(values, [&](const std::string& k, const std::vector<double>& v) {
          return reduce(spec.for_metric(k), v);
        });
    if (world() == 1) return mine;
    return detail::reduce_validation_across_ranks(ctx->distributed(), mine, n, spec);
  }

  void validate() {
    auto start = Clock::now();
    set_train_mode(false);
    reset_reducers(false);
    each_callback([](Callback& cb) { cb.on_validation_start(); });
    json metrics = evaluate();
    add_custom_reducers(metrics, false);
    set_train_mode(true);
    state.last_validation = state.batches_trained;

    const std::string& name = cfg.searcher.metric;
    if (!metrics.contains(name) || !metrics[name].is_number()) {
      std::vector<std::string> keys;
      for (auto it = metrics.begin(); it != metrics.end(); ++it) keys.push_back(it.key());
      throw Error(
          "the searcher metric '" + name +
          "' is not a numeric validation metric (validation returned: " + util::join(keys, ", ") +
          ")" + util::did_you_mean(name, keys) + "; fix searcher.metric in " + cfg.source);
    }
    check_finite(metrics, "validation");
    const double value = metrics[name].get<double>();
    const bool improved =
        config::is_better(value, state.best_metric, cfg.searcher.smaller_is_better);
    if (improved) {
      state.best_metric = value;
      best_val_metrics = metrics;
    }
    last_val_metrics = metrics;
    each_callback([&](Callback& cb) { cb.on_validation_end(metrics); });
    if (chief()) {
      auto report = make_report(record::MetricsReport::Kind::kValidation, metrics);
      report.seconds = seconds_since(start);
      progress->clear();
      util::logger()->info("trial {} [validation] batch {}: {} ({:.1f}s)", state.trial_id,
                           state.batches_trained, detail::format_metrics(metrics), report.seconds);
      if (opt.listener) opt.listener->on_report(report);
    }
    if (state.last_checkpoint != state.batches_trained) {
      if (cfg.checkpoint_policy == "all" || (cfg.checkpoint_policy == "best" && improved))
        checkpoint();
    }
  }

  // ---- checkpoints ----

  void checkpoint() {
    state.last_checkpoint = state.batches_trained;
    if (!chief()) return;
    record::CheckpointMetadata meta;
    meta.uuid = checkpoint::new_uuid();
    meta.time = util::utc_now_iso8601();
    meta.entrypoint = cfg.entrypoint;
    meta.experiment_name = cfg.name;
    meta.trial_state = state;
    meta.trial_seed = ctx->trial_seed();
    meta.hparams = ctx->hparams();
    meta.epoch_len = epoch_len();
    for (auto& s : h->schedulers) meta.lr_schedulers.push_back(s.scheduler->state_dict());
    if (h->scaler && h->scaler->is_enabled()) meta.grad_scaler = h->scaler->state_dict();
    if (state.last_validation == state.batches_trained && last_val_metrics &&
        (*last_val_metrics)[cfg.searcher.metric].is_number())
      meta.searcher_metric = (*last_val_metrics)[cfg.searcher.metric].get<double>();
    meta.last_validation_metrics = last_val_metrics;
    meta.best_validation_metrics = best_val_metrics;
    each_callback([&](Callback& cb) { cb.on_checkpoint_save_start(meta); });
    for (auto& [name, cb] : callbacks) {
      json s = cb->state_dict();
      if (!s.is_null()) meta.callbacks[name] = std::move(s);
    }
    auto start = Clock::now();
    const fs::path parent = opt.trial_dir / "checkpoints";
    const fs::path staged = checkpoint::write(parent, meta, h->models, h->optimizers);
    record::CheckpointRef ref{meta.uuid, parent / meta.uuid, state.batches_trained,
                              meta.searcher_metric};
    checkpoints.push_back(ref);
    const auto storage = cfg.storage();
    auto kept =
        record::checkpoints_to_keep(checkpoints, storage.save_trial_latest, storage.save_trial_best,
                                    cfg.searcher.smaller_is_better);
    // Recorded, then committed, then the old ones deleted: whatever moment the process dies at,
    // every checkpoint on disk is recorded and every recorded one is whole (a recorded but
    // uncommitted one is committed when the experiment resumes).
    if (opt.listener) opt.listener->on_checkpoint({ref, kept});
    checkpoint::commit(staged);
    progress->clear();
    util::logger()->info("trial {} [checkpoint] batch {}: {} ({:.2f}s)", state.trial_id,
                         state.batches_trained, ref.path.string(), seconds_since(start));
    each_callback([&](Callback& cb) { cb.on_checkpoint_write_end(ref.path); });
    for (const auto& c : checkpoints) {
      if (std::any_of(kept.begin(), kept.end(), [&](const auto& k) { return k.uuid == c.uuid; }))
        continue;
      std::error_code ec;
      fs::remove_all(c.path, ec);
      util::logger()->debug("deleted checkpoint {} (batch {})", c.path.string(), c.batches);
    }
    checkpoints = kept;
  }

  void log_gradient_sync() const {
    if (!h->grad_sync || !chief()) return;
    auto s = h->grad_sync->stats();
    if (s.reductions == 0) return;
    int64_t launched = s.buckets_in_backward + s.buckets_at_finish;
    util::logger()->info(
        "trial {}: gradient allreduce: {} reductions, {:.0f}% of buckets launched during backward, "
        "{:.2f} ms per step waited after backward",
        state.trial_id, s.reductions, launched ? 100.0 * s.buckets_in_backward / launched : 0.0,
        1000.0 * s.wait_seconds / s.reductions);
  }

  TrialResult result(TrialResult::Exit exit) const {
    TrialResult r;
    r.exit = exit;
    r.state = state;
    r.hparams = ctx->hparams();
    r.trial_seed = ctx->trial_seed();
    r.last_validation = last_val_metrics;
    r.best_validation = best_val_metrics;
    r.checkpoints = checkpoints;
    return r;
  }

  TrialResult run() {
    setup();
    // on_trial_shutdown also when the trial fails (never masking the failure).
    struct Shutdown {
      Impl& self;
      ~Shutdown() {
        try {
          self.each_callback([](Callback& cb) { cb.on_trial_shutdown(); });
        } catch (const std::exception& e) {
          util::logger()->warn("trial {}: a callback's on_trial_shutdown failed: {}",
                               self.state.trial_id, e.what());
        }
      }
    } shutdown{*this};
    std::optional<std::string> uuid;
    if (resume_meta) uuid = resume_meta->uuid;
    each_callback([&](Callback& cb) { cb.on_trial_startup(state.batches_trained, uuid); });
    if (resume_meta) restore();
    if (world() > 1) setup_data_parallel();
    progress = std::make_unique<util::ProgressLine>(opt.show_progress && chief());
    run_start = Clock::now();
    run_first_batch = state.batches_trained;
    if (resume_meta && state.batches_trained > max_batches && !opt.test_mode)
      throw CheckpointError(opt.resume_from->string() + ": the checkpoint has trained " +
                            std::to_string(state.batches_trained) + " batches, past this run's " +
                            std::to_string(max_batches) +
                            " (searcher.max_length); raise it to go on from there, or resume an "
                            "earlier checkpoint");
    if (state.batches_trained >= max_batches && !opt.next_target) {
      if (chief())
        util::logger()->info(
            "trial {}: already trained {} batches, the target is {}: nothing to do", state.trial_id,
            state.batches_trained, max_batches);
      return result(TrialResult::Exit::kCompleted);
    }
    each_callback([](Callback& cb) { cb.on_training_start(); });
    if (cfg.perform_initial_validation && state.batches_trained == 0 && !state.last_validation)
      validate();
    std::optional<config::Length> target = opt.target;
    for (;;) {
      if (state.batches_trained < max_batches) {
        auto stream = train_loader->stream(state.batches_trained, max_batches);
        while (state.batches_trained < max_batches) {
          if (train_period(*stream)) return stop();
        }
      }
      if (state.last_validation != state.batches_trained) validate();
      if (trial_asked_to_stop()) return stop();
      if (!opt.next_target || !target) break;
      // The runner decides what comes next: a longer target, or checkpoint and exit (pause/close).
      double metric = (*last_val_metrics)[cfg.searcher.metric].get<double>();
      progress->clear();
      std::optional<config::Length> next = opt.next_target(*target, metric);
      if (!next) break;
      int64_t next_batches = config::to_batches(*next, gbs, epoch_len());
      if (next_batches < state.batches_trained)
        throw Error("the experiment runner asked trial " + std::to_string(state.trial_id) +
                    " to train to batch " + std::to_string(next_batches) +
                    ", but it has already trained " + std::to_string(state.batches_trained));
      target = next;
      max_batches = next_batches;
    }
    if (state.last_checkpoint != state.batches_trained) checkpoint();
    progress->clear();
    log_gradient_sync();
    return result(TrialResult::Exit::kCompleted);
  }

  // Checkpoints where the loop stopped (a stop flag, or the trial's own request) and returns.
  // Every rank calls it at the same point.
  TrialResult stop() {
    if (state.last_checkpoint != state.batches_trained) checkpoint();
    progress->clear();
    bool own = trial_asked_to_stop();
    if (chief())
      util::logger()->warn("trial {}: stopped at batch {} {}", state.trial_id,
                           state.batches_trained,
                           own ? "because the trial asked to stop" : "on request");
    return result(own ? TrialResult::Exit::kStopRequested : TrialResult::Exit::kStopped);
  }

  // TrialContext::request_stop on any rank (a collective on several ranks).
  bool trial_asked_to_stop() {
    return detail::any_rank(ctx->distributed(), h->stop_requested, ctx->device());
  }
};

TrialController::TrialController(config::ExperimentConfig config, TrialFactory factory,
                                 TrialRunOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->cfg = std::move(config);
  impl_->factory = std::move(factory);
  impl_->opt = std::move(options);
}

TrialController::~TrialController() = default;

TrialResult TrialController::run() { return impl_->run(); }

TrialContext& TrialController::context() {
  if (!impl_->ctx) throw Error("TrialController::context() called before run()");
  return *impl_->ctx;
}

const distributed::GradientSynchronizer* TrialController::gradient_sync() const {
  return impl_->h->grad_sync.get();
}

}  // namespace det
