#include "det/core/controller.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>

#include "det/core/checkpoint.h"
#include "det/dist/gradient_sync.h"
#include "detail.h"
#include <spdlog/spdlog.h>
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/log.h"
#include "det/util/strings.h"

namespace det {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string format_metrics(const nlohmann::json& m) {
  std::string out;
  for (auto it = m.begin(); it != m.end(); ++it) {
    if (!out.empty()) out += " ";
    char buf[64];
    if (it.value().is_number()) {
      std::snprintf(buf, sizeof buf, "%.6g", it.value().get<double>());
      out += it.key() + "=" + buf;
    } else {
      out += it.key() + "=" + it.value().dump();
    }
  }
  return out;
}

// A progress line rewritten in place on a terminal; silent otherwise (reports are logged).
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled) : enabled_(enabled && ::isatty(STDOUT_FILENO)) {}
  void update(int64_t done, int64_t total, double epoch, double rate, double eta, const std::string& tail) {
    if (!enabled_) return;
    auto now = Clock::now();
    if (shown_ && std::chrono::duration<double>(now - last_).count() < 0.2 && done < total) return;
    last_ = now;
    shown_ = true;
    double pct = total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 0;
    std::printf("\r\033[K[train] batch %lld/%lld (%.1f%%) epoch %.2f | %.0f samples/s | ETA %s%s",
                static_cast<long long>(done), static_cast<long long>(total), pct, epoch, rate,
                util::format_duration(eta).c_str(), tail.c_str());
    std::fflush(stdout);
  }
  void clear() {
    if (!enabled_ || !shown_) return;
    std::printf("\r\033[K");
    std::fflush(stdout);
    shown_ = false;
  }

 private:
  bool enabled_;
  bool shown_ = false;
  Clock::time_point last_;
};

// Scalar metric tensors -> doubles in one device sync per key; non-scalars become null.
nlohmann::json reduce_tensors(const std::map<std::string, std::vector<torch::Tensor>>& acc,
                              const std::function<double(const std::string&, const std::vector<double>&)>& reduce_fn) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [key, values] : acc) {
    bool scalar = !values.empty();
    for (const auto& v : values) scalar = scalar && v.defined() && v.numel() == 1;
    if (!scalar) {
      out[key] = nullptr;
      continue;
    }
    std::vector<torch::Tensor> flat;
    flat.reserve(values.size());
    for (const auto& v : values) flat.push_back(v.reshape({}).to(torch::kDouble));
    auto cpu = torch::stack(flat).to(torch::kCPU).contiguous();
    const double* p = cpu.data_ptr<double>();
    out[key] = reduce_fn(key, std::vector<double>(p, p + cpu.numel()));
  }
  return out;
}

}  // namespace

TrialState trial_state_from_metadata(const nlohmann::json& m) {
  TrialState s;
  try {
    const auto& t = m.at("trial_state");
    s.trial_id = t.at("trial_id").get<int64_t>();
    s.batches_trained = t.at("batches_trained").get<int64_t>();
    s.epochs_trained = t.at("epochs_trained").get<int64_t>();
    if (!t.at("last_validation").is_null()) s.last_validation = t["last_validation"].get<int64_t>();
    if (!t.at("last_checkpoint").is_null()) s.last_checkpoint = t["last_checkpoint"].get<int64_t>();
    if (!t.at("best_metric").is_null()) s.best_metric = t["best_metric"].get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw CheckpointError(std::string("checkpoint metadata has no valid trial_state: ") + e.what());
  }
  return s;
}

struct TrialController::Impl {
  config::ExperimentConfig cfg;
  TrialFactory factory;
  TrialRunOptions opt;

  std::unique_ptr<TrialContext> ctx;
  std::unique_ptr<Trial> trial;
  std::shared_ptr<data::DataLoader> train_loader, val_loader;
  std::shared_ptr<data::DataLoader> val_shard;  // this rank's share of val_loader (== val_loader on one rank)
  int64_t epoch_len = 0, gbs = 0, max_batches = 0;
  TrialState state;
  std::vector<CheckpointRecord> checkpoints;
  std::optional<nlohmann::json> last_val_metrics, best_val_metrics;
  ProgressLine progress{false};

  // Training period accumulators.
  std::map<std::string, std::vector<torch::Tensor>> acc;
  int64_t acc_batches = 0, acc_samples = 0;
  double acc_wait = 0;
  Clock::time_point period_start, run_start;
  int64_t run_first_batch = 0;
  std::string last_summary;  // the last training report's metrics, for the progress line

  fs::path metrics_path() const { return opt.trial_dir / "metrics.jsonl"; }
  int world() const { return ctx->size(); }
  bool chief() const { return ctx->distributed().is_chief(); }

  void log_report(const nlohmann::json& report) {
    if (chief() && !opt.trial_dir.empty()) util::append_line(metrics_path(), report.dump());
  }

  bool period_fires(const config::Length& p, bool epoch_end) const {
    if (p.value < 1) return false;
    switch (p.unit) {
      case config::Unit::kBatches: return state.batches_trained % p.value == 0;
      case config::Unit::kRecords: return state.batches_trained % std::max<int64_t>(p.value / gbs, 1) == 0;
      case config::Unit::kEpochs: return epoch_end && state.epochs_trained % p.value == 0;
    }
    return false;
  }

  // ---- setup ----

  void setup() {
    nlohmann::json hparams = opt.hparams;
    uint32_t seed = opt.trial_seed;
    int64_t trial_id = opt.trial_id;
    nlohmann::json resume_meta;
    if (opt.resume_from) {
      opt.resume_from = checkpoint::normalize_dir(*opt.resume_from);
      resume_meta = checkpoint::read_metadata(*opt.resume_from);
      std::string ep = resume_meta.value("entrypoint", "");
      if (!ep.empty() && ep != cfg.entrypoint)
        throw CheckpointError(opt.resume_from->string() + ": written by trial '" + ep + "', but the config's entrypoint is '" +
                              cfg.entrypoint + "'");
      hparams = resume_meta.value("hparams", hparams);
      seed = resume_meta.value("trial_seed", seed);
      trial_id = resume_meta.value("trial_id", trial_id);
      if (opt.trial_dir.empty()) opt.trial_dir = opt.resume_from->parent_path().parent_path();
    }
    if (!opt.distributed) opt.distributed = dist::make_local_context();
    torch::Device device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, opt.distributed->local_rank())
                                                       : torch::Device(torch::kCPU);
    torch::manual_seed(seed);
    std::srand(seed);
    ctx = std::make_unique<TrialContext>(cfg, hparams, trial_id, seed, device, opt.distributed);
    ctx->test_mode_ = opt.test_mode;
    trial = factory(*ctx);
    if (ctx->models_.empty())
      throw Error("trial '" + cfg.entrypoint + "' wrapped no model: call context.wrap_model(...) in its constructor");
    if (ctx->optimizers_.empty())
      throw Error("trial '" + cfg.entrypoint + "' wrapped no optimizer: call context.wrap_optimizer(...) in its constructor");
    train_loader = trial->build_training_data_loader();
    val_loader = trial->build_validation_data_loader();
    if (!train_loader || !val_loader) throw Error("trial '" + cfg.entrypoint + "' returned a null data loader");
    train_loader = shard_for_ranks(train_loader, "training");
    val_shard = shard_for_ranks(val_loader, "validation");
    epoch_len = train_loader->batches_per_epoch();
    if (epoch_len < 1) throw DataError("the training data loader yields no batch (is the dataset empty?)");
    ctx->epoch_len_ = epoch_len;
    gbs = ctx->has_hparam("global_batch_size") ? ctx->global_batch_size() : train_loader->batch_size() * ctx->size();

    state.trial_id = trial_id;
    if (opt.resume_from) {
      checkpoint::load(*opt.resume_from, ctx->models_, ctx->optimizers_, /*restore_rng=*/true);
      auto scheds = resume_meta.value("lr_schedulers", nlohmann::json::array());
      if (scheds.size() != ctx->schedulers_.size())
        throw CheckpointError(opt.resume_from->string() + ": the checkpoint holds " + std::to_string(scheds.size()) +
                              " LR scheduler(s) but the trial wraps " + std::to_string(ctx->schedulers_.size()));
      for (size_t i = 0; i < scheds.size(); ++i) ctx->schedulers_[i].scheduler->load_state_dict(scheds[i]);
      state = trial_state_from_metadata(resume_meta);
      int64_t saved_len = resume_meta.value("data", nlohmann::json::object()).value("epoch_len", epoch_len);
      if (saved_len != epoch_len)
        util::logger()->warn("the checkpoint was written with {} batches per epoch, the data now gives {}: the data "
                             "position is not exactly where training stopped", saved_len, epoch_len);
      if (resume_meta.contains("last_validation_metrics")) last_val_metrics = resume_meta["last_validation_metrics"];
      if (resume_meta.contains("best_validation_metrics")) best_val_metrics = resume_meta["best_validation_metrics"];
      scan_existing_checkpoints();
      if (chief())
        util::logger()->info("trial {}: resumed from {} at batch {} (epoch {})", state.trial_id,
                             opt.resume_from->string(), state.batches_trained, state.epochs_trained);
    }
    ctx->initial_batch_ = state.batches_trained;
    ctx->batch_idx_ = state.batches_trained;
    if (world() > 1) setup_data_parallel();

    if (opt.test_mode) {
      max_batches = state.batches_trained + 1;
    } else if (opt.target) {
      max_batches = config::to_batches(*opt.target, gbs, epoch_len);
    } else if (opt.max_length_batches) {
      max_batches = *opt.max_length_batches;
    } else {
      if (!cfg.searcher.max_length) throw ConfigError(cfg.source + ": searcher.max_length is required");
      max_batches = config::to_batches(*cfg.searcher.max_length, gbs, epoch_len);
    }
  }

  // Determined's DistributedBatchSampler: rank r keeps the loader's batches r, r + n, ...
  std::shared_ptr<data::DataLoader> shard_for_ranks(const std::shared_ptr<data::DataLoader>& loader, const char* which) {
    const int n = world(), r = ctx->rank();
    if (n == 1) return loader;
    const auto& o = loader->options();
    if (o.num_replicas_ == n && o.rank_ == r) return loader;  // the trial sharded it itself
    if (o.num_replicas_ != 1)
      throw Error(std::string("the ") + which + " data loader of trial '" + cfg.entrypoint + "' is sharded " +
                  std::to_string(o.num_replicas_) + " ways but the trial runs on " + std::to_string(n) +
                  " ranks; leave sharding to the harness");
    return loader->sharded(n, r);
  }

  // Every rank starts from rank 0's weights (the trials seed alike, but a model may not), then
  // gradients are averaged from autograd hooks (dist::GradientSynchronizer).
  void setup_data_parallel() {
    auto& d = ctx->distributed();
    std::vector<torch::Tensor> params;
    {
      torch::NoGradGuard no_grad;
      for (auto& m : ctx->models_) {
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
    ctx->grad_sync_ = std::make_unique<dist::GradientSynchronizer>(opt.distributed, params);
    if (chief())
      util::logger()->info("trial {}: data-parallel on {} ranks ({}), {} gradient bucket(s), per-slot batch {}",
                           state.trial_id, world(), d.backend(), ctx->grad_sync_->num_buckets(),
                           train_loader->batch_size());
  }

  void scan_existing_checkpoints() {
    fs::path dir = opt.trial_dir / "checkpoints";
    if (!fs::is_directory(dir)) return;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (!entry.is_directory() || entry.path().filename().string().rfind(".tmp-", 0) == 0) continue;
      try {
        auto meta = nlohmann::json::parse(util::read_file(entry.path() / "metadata.json"));
        CheckpointRecord r{meta.value("uuid", entry.path().filename().string()), entry.path(),
                           meta.at("trial_state").at("batches_trained").get<int64_t>(), std::nullopt};
        if (meta.contains("searcher_metric") && meta["searcher_metric"].is_number())
          r.metric = meta["searcher_metric"].get<double>();
        checkpoints.push_back(r);
      } catch (const std::exception&) {
        // Not a complete checkpoint: leave it alone.
      }
    }
    std::sort(checkpoints.begin(), checkpoints.end(), [](const CheckpointRecord& a, const CheckpointRecord& b) { return a.batches < b.batches; });
  }

  // ---- training ----

  void set_train_mode(bool train) {
    for (auto& m : ctx->models_) m->train(train);
  }

  void auto_step_schedulers(int64_t g) {
    int agg = ctx->aggregation_frequency_;
    if ((g + 1) % agg != 0) return;
    for (auto& s : ctx->schedulers_) {
      int f = s.frequency;
      switch (s.mode) {
        case StepMode::kStepEveryBatch:
          for (int64_t i = g - agg + 1; i <= g; ++i)
            if ((i + 1) % f == 0) s.scheduler->step();
          break;
        case StepMode::kStepEveryOptimizerStep:
          if ((g + 1) % f == 0) s.scheduler->step();
          break;
        case StepMode::kStepEveryEpoch: {
          int64_t e0 = g / epoch_len, e1 = (g + agg) / epoch_len;
          for (int64_t e = e0; e < e1; ++e)
            if ((e + 1) % f == 0) s.scheduler->step();
          break;
        }
        case StepMode::kManualStep: break;
      }
    }
  }

  void reset_reducers(bool training) {
    for (auto& r : ctx->reducers_)
      if (training ? r.for_training : r.for_validation) r.reducer->reset();
  }

  void add_custom_reducers(nlohmann::json& metrics, bool training) {
    for (auto& r : ctx->reducers_) {
      if (!(training ? r.for_training : r.for_validation)) continue;
      auto gathered = ctx->distributed().allgather(r.reducer->per_slot_reduce());
      nlohmann::json value = r.reducer->cross_slot_reduce(gathered);
      if (!r.name.empty()) {
        metrics[r.name] = value;
      } else if (value.is_object()) {
        for (auto it = value.begin(); it != value.end(); ++it) metrics[it.key()] = it.value();
      } else {
        throw Error("a reducer wrapped without a name must return an object of metrics, got " + value.dump());
      }
    }
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
      const int64_t epoch_idx = g / epoch_len, in_epoch = g % epoch_len;
      ctx->batch_idx_ = g;
      auto wait_start = Clock::now();
      data::Batch batch = stream.next();
      acc_wait += seconds_since(wait_start);
      batch = ctx->to_device(batch);
      if (ctx->grad_sync_) ctx->grad_sync_->prepare(ctx->is_update_batch());
      Metrics m = trial->train_batch(batch, epoch_idx, g);
      auto_step_schedulers(g);
      for (auto& [k, v] : m) acc[k].push_back(v.defined() ? v.detach() : v);
      ++acc_batches;
      acc_samples += batch.size();
      ++state.batches_trained;
      const bool epoch_end = in_epoch == epoch_len - 1;
      if (epoch_end) ++state.epochs_trained;

      double elapsed = seconds_since(run_start);
      double done_run = static_cast<double>(state.batches_trained - run_first_batch);
      double rate = done_run / std::max(elapsed, 1e-9);
      progress.update(state.batches_trained, max_batches, static_cast<double>(state.batches_trained) / epoch_len,
                      rate * static_cast<double>(gbs),
                      static_cast<double>(max_batches - state.batches_trained) / std::max(rate, 1e-9), last_summary);

      const bool done = state.batches_trained >= max_batches;
      if (!opt.test_mode) {
        val = period_fires(cfg.min_validation_period, epoch_end);
        ckpt = period_fires(cfg.min_checkpoint_period, epoch_end);
      }
      const bool report = state.batches_trained % cfg.scheduling_unit == 0;
      stop = ctx->stop_requested_ || (opt.stop_flag && opt.stop_flag->load());
      if (world() > 1) stop = any_rank(stop);  // every rank stops after the same batch
      if (done || val || ckpt || report || stop) break;
    }
    report_training();
    if (val && state.last_validation != state.batches_trained) validate();
    if (ckpt && state.last_checkpoint != state.batches_trained) checkpoint();
    return stop;
  }

  bool any_rank(bool flag) {
    torch::Tensor t = torch::full({1}, flag ? 1.0f : 0.0f, torch::TensorOptions().device(ctx->device()));
    ctx->distributed().allreduce(t, dist::ReduceOp::kMax);
    return t.item<float>() > 0;
  }

  // Spec 2.4: training metrics are averaged over the batches of the period and across ranks
  // (every rank trains the same number of batches; a null on a rank is ignored).
  nlohmann::json average_across_ranks(const nlohmann::json& mine) {
    if (world() == 1) return mine;
    auto all = ctx->distributed().allgather(mine);
    nlohmann::json out = nlohmann::json::object();
    for (auto it = mine.begin(); it != mine.end(); ++it) {
      std::vector<double> v;
      for (const auto& r : all)
        if (r.contains(it.key()) && r[it.key()].is_number()) v.push_back(r[it.key()].get<double>());
      out[it.key()] = v.empty() ? nlohmann::json(nullptr) : nlohmann::json(reduce(Reducer::kAvg, v));
    }
    return out;
  }

  void report_training() {
    double elapsed = std::max(seconds_since(period_start), 1e-9);
    nlohmann::json metrics = average_across_ranks(
        reduce_tensors(acc, [](const std::string&, const std::vector<double>& v) { return reduce(Reducer::kAvg, v); }));
    add_custom_reducers(metrics, true);
    // Samples of every rank (each trains the same number of batches): the trial's throughput.
    nlohmann::json throughput = {{"samples_per_second", static_cast<double>(acc_samples * world()) / elapsed},
                                 {"batches_per_second", static_cast<double>(acc_batches) / elapsed},
                                 {"data_wait_fraction", acc_wait / elapsed}};
    nlohmann::json report = {{"kind", "training"},
                             {"trial_id", state.trial_id},
                             {"batches", state.batches_trained},
                             {"epochs", static_cast<double>(state.batches_trained) / epoch_len},
                             {"metrics", metrics},
                             {"throughput", throughput},
                             {"ranks", world()},
                             {"time", util::utc_now_iso8601()}};
    if (!chief()) return;
    last_summary = " | " + format_metrics(metrics);
    progress.clear();
    util::logger()->info("trial {} [train] batch {}/{} epoch {:.2f}: {} | {:.1f} samples/s, {:.2f} batches/s, data wait {:.1f}%",
                         state.trial_id, state.batches_trained, max_batches,
                         static_cast<double>(state.batches_trained) / epoch_len, format_metrics(metrics),
                         throughput["samples_per_second"].get<double>(), throughput["batches_per_second"].get<double>(),
                         100.0 * throughput["data_wait_fraction"].get<double>());
    log_report(report);
    if (opt.listener) opt.listener->on_training_metrics(state.batches_trained, report);
  }

  // ---- validation ----

  // evaluate_full_dataset runs on the chief alone over the whole validation set (spec 1.3) and
  // its metrics are broadcast; evaluate_batch runs on every rank over its shard.
  nlohmann::json evaluate() {
    torch::NoGradGuard no_grad;
    nlohmann::json full_metrics;
    bool full = false;
    if (chief()) {
      try {
        Metrics m = trial->evaluate_full_dataset(*val_loader);
        std::map<std::string, std::vector<torch::Tensor>> one;
        for (auto& [k, v] : m) one[k].push_back(v);
        full_metrics = reduce_tensors(one, [](const std::string&, const std::vector<double>& v) { return v[0]; });
        full = true;
      } catch (const detail::NotOverridden&) {
      }
    }
    if (world() > 1) {
      auto shared = ctx->distributed().broadcast(nlohmann::json{{"full", full}, {"metrics", full_metrics}});
      full = shared["full"].get<bool>();
      full_metrics = shared["metrics"];
    }
    if (full) return full_metrics;
    int64_t per_epoch = val_shard->batches_in_one_pass();
    auto stream = val_shard->stream(0, opt.test_mode ? std::min<int64_t>(1, per_epoch) : per_epoch);
    std::map<std::string, std::vector<torch::Tensor>> values;
    int64_t n = 0;
    while (!stream->done()) {
      data::Batch batch = ctx->to_device(stream->next());
      Metrics m;
      try {
        m = trial->evaluate_batch(batch, n);
      } catch (const detail::NotOverridden&) {
        throw Error("trial '" + cfg.entrypoint + "' must override evaluate_batch or evaluate_full_dataset");
      }
      if (n > 0 && m.size() != values.size())
        throw Error("evaluate_batch returned different metric names at batch " + std::to_string(n) +
                    "; every batch must return the same metrics");
      for (auto& [k, v] : m) {
        if (n > 0 && !values.count(k))
          throw Error("evaluate_batch returned metric '" + k + "' at batch " + std::to_string(n) + " but not at batch 0");
        values[k].push_back(v.defined() ? v.detach() : v);
      }
      ++n;
    }
    if (n == 0 && world() == 1) throw DataError("the validation data loader is empty: validation needs at least one batch");
    ReducerSpec spec = trial->evaluation_reducer();
    if (spec.is_map() && n > 0) {
      for (const auto& kv : spec.per_metric())
        if (!values.count(kv.first))
          throw Error("evaluation_reducer() names metric '" + kv.first + "' that evaluate_batch does not return");
    }
    nlohmann::json mine = reduce_tensors(values, [&](const std::string& k, const std::vector<double>& v) {
      return reduce(spec.for_metric(k), v);
    });
    if (world() == 1) return mine;
    // Across ranks: AVG weighted by each rank's batch count, the others plainly (spec 2.4).
    auto all = ctx->distributed().allgather(nlohmann::json{{"metrics", mine}, {"batches", n}});
    nlohmann::json keys = nlohmann::json::object();
    int64_t total = 0;
    for (const auto& r : all) {
      total += r["batches"].get<int64_t>();
      for (auto it = r["metrics"].begin(); it != r["metrics"].end(); ++it) keys[it.key()] = true;
    }
    if (total == 0) throw DataError("the validation data loader is empty: validation needs at least one batch");
    nlohmann::json out = nlohmann::json::object();
    for (auto it = keys.begin(); it != keys.end(); ++it) {
      std::vector<double> v, w;
      for (const auto& r : all) {
        const auto& m = r["metrics"];
        if (r["batches"].get<int64_t>() == 0 || !m.contains(it.key()) || !m[it.key()].is_number()) continue;
        v.push_back(m[it.key()].get<double>());
        w.push_back(static_cast<double>(r["batches"].get<int64_t>()));
      }
      out[it.key()] = v.empty() ? nlohmann::json(nullptr) : nlohmann::json(reduce_weighted(spec.for_metric(it.key()), v, w));
    }
    return out;
  }

  void validate() {
    auto start = Clock::now();
    set_train_mode(false);
    reset_reducers(false);
    nlohmann::json metrics = evaluate();
    add_custom_reducers(metrics, false);
    set_train_mode(true);
    state.last_validation = state.batches_trained;

    const std::string& name = cfg.searcher.metric;
    if (!metrics.contains(name) || !metrics[name].is_number()) {
      std::vector<std::string> keys;
      for (auto it = metrics.begin(); it != metrics.end(); ++it) keys.push_back(it.key());
      throw Error("the searcher metric '" + name + "' is not a numeric validation metric (validation returned: " +
                  util::join(keys, ", ") + ")" + util::did_you_mean(name, keys) + "; fix searcher.metric in " + cfg.source);
    }
    double value = metrics[name].get<double>();
    std::optional<double> best_before = state.best_metric;
    bool improved = !best_before || (cfg.searcher.smaller_is_better ? value < *best_before : value > *best_before);
    if (improved) {
      state.best_metric = value;
      best_val_metrics = metrics;
    }
    last_val_metrics = metrics;
    nlohmann::json report = {{"kind", "validation"},
                             {"trial_id", state.trial_id},
                             {"batches", state.batches_trained},
                             {"epochs", static_cast<double>(state.batches_trained) / epoch_len},
                             {"metrics", metrics},
                             {"seconds", seconds_since(start)},
                             {"time", util::utc_now_iso8601()}};
    if (chief()) {
      progress.clear();
      util::logger()->info("trial {} [validation] batch {}: {} ({:.1f}s)", state.trial_id, state.batches_trained,
                           format_metrics(metrics), report["seconds"].get<double>());
      log_report(report);
      if (opt.listener) opt.listener->on_validation_metrics(state.batches_trained, report);
    }
    if (state.last_checkpoint != state.batches_trained) {
      if (cfg.checkpoint_policy == "all" || (cfg.checkpoint_policy == "best" && improved)) checkpoint();
    }
  }

  // ---- checkpoints ----

  nlohmann::json state_json() const {
    auto opt_int = [](const std::optional<int64_t>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
    return {{"trial_id", state.trial_id},
            {"batches_trained", state.batches_trained},
            {"epochs_trained", state.epochs_trained},
            {"last_validation", opt_int(state.last_validation)},
            {"last_checkpoint", opt_int(state.last_checkpoint)},
            {"best_metric", state.best_metric ? nlohmann::json(*state.best_metric) : nlohmann::json(nullptr)}};
  }

  void checkpoint() {
    state.last_checkpoint = state.batches_trained;
    if (!chief()) return;
    std::string uuid = checkpoint::new_uuid();
    std::optional<double> metric;
    if (state.last_validation == state.batches_trained && last_val_metrics && (*last_val_metrics)[cfg.searcher.metric].is_number())
      metric = (*last_val_metrics)[cfg.searcher.metric].get<double>();
    nlohmann::json meta = {{"trial_state", state_json()},
                           {"trial_id", state.trial_id},
                           {"trial_seed", ctx->trial_seed()},
                           {"hparams", ctx->hparams()},
                           {"entrypoint", cfg.entrypoint},
                           {"experiment_name", cfg.name},
                           {"data", {{"batches_trained", state.batches_trained}, {"epoch_len", epoch_len}}},
                           {"lr_schedulers", nlohmann::json::array()},
                           {"time", util::utc_now_iso8601()}};
    for (auto& s : ctx->schedulers_) meta["lr_schedulers"].push_back(s.scheduler->state_dict());
    if (metric) meta["searcher_metric"] = *metric;
    if (last_val_metrics) meta["last_validation_metrics"] = *last_val_metrics;
    if (best_val_metrics) meta["best_validation_metrics"] = *best_val_metrics;
    auto start = Clock::now();
    fs::path path = checkpoint::save(opt.trial_dir / "checkpoints", uuid, ctx->models_, ctx->optimizers_, meta);
    CheckpointRecord rec{uuid, path, state.batches_trained, metric};
    checkpoints.push_back(rec);
    progress.clear();
    util::logger()->info("trial {} [checkpoint] batch {}: {} ({:.2f}s)", state.trial_id, state.batches_trained,
                         path.string(), seconds_since(start));
    garbage_collect();
    if (opt.listener) opt.listener->on_checkpoint(rec, checkpoints);
  }

  // Keeps the save_trial_latest newest and save_trial_best best checkpoints (and always the
  // newest, so the trial can resume); deletes the rest.
  void garbage_collect() {
    auto storage = cfg.storage();
    std::vector<CheckpointRecord> by_time = checkpoints;
    std::sort(by_time.begin(), by_time.end(), [](const CheckpointRecord& a, const CheckpointRecord& b) { return a.batches > b.batches; });
    std::set<std::string> keep;
    for (size_t i = 0; i < by_time.size() && (i < static_cast<size_t>(storage.save_trial_latest) || i == 0); ++i)
      keep.insert(by_time[i].uuid);
    std::vector<CheckpointRecord> by_metric;
    for (auto& r : checkpoints)
      if (r.metric) by_metric.push_back(r);
    bool sib = cfg.searcher.smaller_is_better;
    std::stable_sort(by_metric.begin(), by_metric.end(),
                     [sib](const CheckpointRecord& a, const CheckpointRecord& b) { return sib ? *a.metric < *b.metric : *a.metric > *b.metric; });
    for (size_t i = 0; i < by_metric.size() && i < static_cast<size_t>(storage.save_trial_best); ++i)
      keep.insert(by_metric[i].uuid);
    std::vector<CheckpointRecord> kept;
    for (auto& r : checkpoints) {
      if (keep.count(r.uuid)) {
        kept.push_back(r);
      } else {
        std::error_code ec;
        fs::remove_all(r.path, ec);
        util::logger()->debug("deleted checkpoint {} (batch {})", r.path.string(), r.batches);
      }
    }
    checkpoints = kept;
  }

  void log_gradient_sync() const {
    if (!ctx->grad_sync_ || !chief()) return;
    auto s = ctx->grad_sync_->stats();
    if (s.reductions == 0) return;
    int64_t launched = s.buckets_in_backward + s.buckets_at_finish;
    util::logger()->info("trial {}: gradient allreduce: {} reductions, {:.0f}% of buckets launched during backward, "
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
    progress = ProgressLine(opt.show_progress && chief());
    run_start = Clock::now();
    run_first_batch = state.batches_trained;
    if (state.batches_trained >= max_batches && !opt.next_target) {
      if (chief())
        util::logger()->info("trial {}: already trained {} batches, the target is {}: nothing to do", state.trial_id,
                             state.batches_trained, max_batches);
      return result(TrialResult::Exit::kCompleted);
    }
    if (cfg.perform_initial_validation && state.batches_trained == 0 && !state.last_validation) validate();
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
      progress.clear();
      std::optional<config::Length> next = opt.next_target(*target, metric);
      if (!next) break;
      int64_t next_batches = config::to_batches(*next, gbs, epoch_len);
      if (next_batches < state.batches_trained)
        throw Error("the experiment runner asked trial " + std::to_string(state.trial_id) + " to train to batch " +
                    std::to_string(next_batches) + ", but it has already trained " +
                    std::to_string(state.batches_trained));
      target = next;
      max_batches = next_batches;
    }
    if (state.last_checkpoint != state.batches_trained) checkpoint();
    progress.clear();
    log_gradient_sync();
    return result(TrialResult::Exit::kCompleted);
  }

  // Checkpoints where the loop stopped (a stop flag, or the trial's own request) and returns.
  // Every rank calls it at the same point.
  TrialResult stop() {
    if (state.last_checkpoint != state.batches_trained) checkpoint();
    progress.clear();
    bool own = trial_asked_to_stop();
    if (chief())
      util::logger()->warn("trial {}: stopped at batch {} {}", state.trial_id, state.batches_trained,
                           own ? "because the trial asked to stop" : "on request");
    return result(own ? TrialResult::Exit::kStopRequested : TrialResult::Exit::kStopped);
  }

  // TrialContext::set_stop_requested on any rank (a collective on several ranks).
  bool trial_asked_to_stop() { return world() > 1 ? any_rank(ctx->stop_requested_) : ctx->stop_requested_; }
};

TrialController::TrialController(config::ExperimentConfig config, TrialFactory factory, TrialRunOptions options)
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

}  // namespace det
