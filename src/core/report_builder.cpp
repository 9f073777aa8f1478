#include "report_builder.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include <spdlog/spdlog.h>

#include "det/distributed/gradient_sync.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "det/util/strings.h"
#include "device.h"
#include "metrics.h"

namespace det::detail {
namespace {
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

void ReportBuilder::begin_run() {
  progress_ = std::make_unique<util::ProgressLine>(run_.opt.show_progress && run_.chief());
  run_start_ = Clock::now();
  run_first_batch_ = run_.state().batches_trained;
}

void ReportBuilder::begin_period() {
  period_start_ = Clock::now();
  period_batches_ = period_samples_ = 0;
  period_wait_ = 0;
}

void ReportBuilder::add_batch(int64_t samples, double wait_seconds) {
  ++period_batches_;
  period_samples_ += samples;
  period_wait_ += wait_seconds;
}

record::MetricsReport ReportBuilder::make_report(record::MetricsReport::Kind kind,
                                                 const json& metrics) const {
  const auto& state = run_.state();
  record::MetricsReport r;
  r.kind = kind;
  r.trial_id = state.trial_id;
  r.batches = state.batches_trained;
  r.epochs = static_cast<double>(state.batches_trained) / static_cast<double>(run_.epoch_len());
  r.metrics = metrics;
  r.ranks = run_.world();
  r.time = util::utc_now_iso8601();
  return r;
}

// Every parameter group's learning rate, as the LR schedulers left it.
json ReportBuilder::learning_rates() const {
  const auto& optimizers = run_.h->optimizers;
  json out = json::object();
  size_t groups = 0;
  for (const auto& o : optimizers) groups += o->param_groups().size();
  for (size_t i = 0; i < optimizers.size(); ++i) {
    const auto& pg = optimizers[i]->param_groups();
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

record::MetricsReport ReportBuilder::training(const json& metrics) {
  const double elapsed = std::max(seconds_since(period_start_), 1e-9);
  auto report = make_report(record::MetricsReport::Kind::kTraining, metrics);
  // Samples of every rank (each trains the same number of batches): the trial's throughput.
  report.throughput = {
      {"samples_per_second", static_cast<double>(period_samples_ * run_.world()) / elapsed},
      {"batches_per_second", static_cast<double>(period_batches_) / elapsed},
      {"data_wait_fraction", period_wait_ / elapsed}};
  report.learning_rates = learning_rates();
  const auto& scaler = run_.h->scaler;
  if (scaler && scaler->is_enabled()) {
    report.throughput["loss_scale"] = scaler->get_scale();
    report.throughput["skipped_steps"] = scaler->skipped_steps();
  }
  if (auto peak = peak_device_memory(run_.h->device)) {
    report.throughput["peak_memory_bytes"] = *peak;
    reset_peak_device_memory(run_.h->device);
  }
  return report;
}

void ReportBuilder::emit_training(const record::MetricsReport& report) {
  if (!run_.chief()) return;
  const auto& state = run_.state();
  const auto& t = report.throughput;
  last_summary_ = " | " + format_metrics(report.metrics);
  util::logger()->info(
      "trial {} [train] batch {}/{} epoch {:.2f}: {} | {:.1f} samples/s, {:.2f} batches/s, data "
      "wait {:.1f}%",
      state.trial_id, state.batches_trained, run_.max_batches, report.epochs,
      format_metrics(report.metrics), t["samples_per_second"].get<double>(),
      t["batches_per_second"].get<double>(), 100.0 * t["data_wait_fraction"].get<double>());
  if (t.contains("loss_scale"))
    util::logger()->debug("trial {}: loss scale {}, {} step(s) skipped so far", state.trial_id,
                          t["loss_scale"].get<double>(), t["skipped_steps"].get<int64_t>());
  if (run_.opt.listener) run_.opt.listener->on_report(report);
}

void ReportBuilder::emit_validation(const json& metrics, double seconds) {
  if (!run_.chief()) return;
  auto report = make_report(record::MetricsReport::Kind::kValidation, metrics);
  report.seconds = seconds;
  util::logger()->info("trial {} [validation] batch {}: {} ({:.1f}s)", run_.state().trial_id,
                       run_.state().batches_trained, format_metrics(metrics), report.seconds);
  if (run_.opt.listener) run_.opt.listener->on_report(report);
}

void ReportBuilder::check_finite(const json& metrics, const char* what) const {
  std::vector<std::string> bad;
  for (auto it = metrics.begin(); it != metrics.end(); ++it)
    if (it.value().is_number_float() && !std::isfinite(it.value().get<double>()))
      bad.push_back(it.key() + "=" + record::portable_metrics(it.value()).get<std::string>());
  if (bad.empty()) return;
  const std::string msg = "trial " + std::to_string(run_.state().trial_id) + ": non-finite " +
                          what + " metric(s) " + util::join(bad, ", ") + " at batch " +
                          std::to_string(run_.state().batches_trained);
  if (run_.cfg().optimizations.fail_on_non_finite)
    throw NonFiniteMetric(msg + "; the trial stops (optimizations.fail_on_non_finite)");
  if (run_.chief())
    util::logger()->warn(
        "{}; training goes on (optimizations.fail_on_non_finite: true stops a trial instead)", msg);
}

void ReportBuilder::show_progress() {
  if (!progress_->enabled()) return;
  const int64_t done = run_.state().batches_trained, max = run_.max_batches;
  const double elapsed = seconds_since(run_start_);
  const double rate = static_cast<double>(done - run_first_batch_) / std::max(elapsed, 1e-9);
  const double pct = max > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(max) : 0;
  char buf[256];
  std::snprintf(
      buf, sizeof buf, "[train] batch %lld/%lld (%.1f%%) epoch %.2f | %.0f samples/s | ETA %s",
      static_cast<long long>(done), static_cast<long long>(max), pct,
      static_cast<double>(done) / static_cast<double>(run_.epoch_len()),
      rate * static_cast<double>(run_.gbs),
      util::format_duration(static_cast<double>(max - done) / std::max(rate, 1e-9)).c_str());
  progress_->update(buf + last_summary_, done >= max);
}

void ReportBuilder::log_gradient_sync() const {
  const auto& sync = run_.h->grad_sync;
  if (!sync || !run_.chief()) return;
  auto s = sync->stats();
  if (s.reductions == 0) return;
  int64_t launched = s.buckets_in_backward + s.buckets_at_finish;
  util::logger()->info(
      "trial {}: gradient allreduce: {} reductions, {:.0f}% of buckets launched during backward, "
      "{:.2f} ms per step waited after backward",
      run_.state().trial_id, s.reductions,
      launched ? 100.0 * s.buckets_in_backward / launched : 0.0,
      1000.0 * s.wait_seconds / s.reductions);
}

}  // namespace det::detail
