#pragma once
// Internal to the core layer: the controller's report builder. It turns reduced metrics into
// record::MetricsReport (throughput, learning rates, loss scale, peak memory), logs them, hands
// them to the listener, and draws the progress line.

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "det/record/worker_protocol.h"
#include "det/util/progress.h"
#include "trial_run.h"

namespace det::detail {

/// Reports one trial's training periods and validations.
class ReportBuilder {
 public:
  /// Reports on `run`, which must outlive it.
  explicit ReportBuilder(TrialRun& run) : run_(run) {}

  /// Training starts (or resumes) now: the progress line appears (the chief, when asked for)
  /// and its rate counts from the current batch.
  void begin_run();
  /// A training period starts now: its throughput counts from here.
  void begin_period();
  /// One batch of `samples` examples was trained, after waiting `wait_seconds` for its data.
  void add_batch(int64_t samples, double wait_seconds);
  /// The training report of the period with its averaged `metrics` (built on every rank: it
  /// resets the device's peak memory statistics).
  record::MetricsReport training(const nlohmann::json& metrics);
  /// Logs a training report and gives it to the listener (the chief).
  void emit_training(const record::MetricsReport& report);
  /// Logs a validation's `metrics`, which took `seconds`, and gives it to the listener (the
  /// chief).
  void emit_validation(const nlohmann::json& metrics, double seconds);
  /// Non-finite metrics are visible: a warning naming them and the batch, or, with
  /// optimizations.fail_on_non_finite, NonFiniteMetric. Every rank holds the same reduced
  /// metrics, so every rank decides alike.
  void check_finite(const nlohmann::json& metrics, const char* what) const;
  /// Redraws the progress line.
  void show_progress();
  /// Erases the progress line (before someone else writes to the terminal).
  void clear_progress() { progress_->clear(); }
  /// Logs the gradient allreduce's statistics (the chief, with several ranks).
  void log_gradient_sync() const;

 private:
  record::MetricsReport make_report(record::MetricsReport::Kind kind,
                                    const nlohmann::json& metrics) const;
  nlohmann::json learning_rates() const;

  TrialRun& run_;
  std::unique_ptr<util::ProgressLine> progress_ = std::make_unique<util::ProgressLine>(false);
  std::chrono::steady_clock::time_point run_start_, period_start_;
  int64_t run_first_batch_ = 0;
  int64_t period_batches_ = 0, period_samples_ = 0;
  double period_wait_ = 0;
  std::string last_summary_;  // the last training report's metrics, for the progress line
};

}  // namespace det::detail
