#include "search_status.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include <spdlog/spdlog.h>

#include "det/config/metric.h"
#include "det/record/worker_protocol.h"
#include "det/util/log.h"
#include "det/util/strings.h"

namespace det::experiment {

void TrialCounts::add(record::TrialStatus status) {
  using record::TrialStatus;
  switch (status) {
    case TrialStatus::kCompleted:
    case TrialStatus::kStopped:
      ++done;
      break;
    case TrialStatus::kRunning:
      ++running;
      break;
    case TrialStatus::kError:
    case TrialStatus::kInvalidHP:
    case TrialStatus::kCanceled:
      ++failed;
      break;
    default:
      ++waiting;
  }
}

SearchStatus::SearchStatus(const config::SearcherConfig& searcher, bool show_progress,
                           double progress_at_start)
    : searcher_(searcher),
      line_(std::make_unique<util::ProgressLine>(show_progress)),
      started_(std::chrono::steady_clock::now()),
      last_log_(started_),
      progress_at_start_(progress_at_start) {}

// " | best <metric> <value> (trial N)" when a trial validated; sums the batches trained.
std::string SearchStatus::best_text(const record::ExperimentSummary& summary,
                                    int64_t* batches) const {
  std::optional<double> best;
  int64_t best_trial = 0;
  for (const auto& t : summary.trials) {
    *batches += t.batches_trained;
    if (!t.best_validation) continue;
    auto v =
        record::metric_value(t.best_validation->metrics.value(searcher_.metric, nlohmann::json()));
    if (v && config::is_better(*v, best, searcher_.smaller_is_better)) {
      best = v;
      best_trial = t.id;
    }
  }
  if (!best) return "";
  char buf[160];
  std::snprintf(buf, sizeof buf, " | best %s %.6g (trial %lld)", searcher_.metric.c_str(), *best,
                static_cast<long long>(best_trial));
  return buf;
}

std::string SearchStatus::text(const TrialCounts& counts, const record::ExperimentSummary& summary,
                               double p) const {
  std::string line = "search: " + std::to_string(counts.done);
  if (searcher_.name != "grid") line += "/" + std::to_string(searcher_.max_trials);
  line += " trials done, " + std::to_string(counts.running) + " running, " +
          std::to_string(counts.waiting) + " paused, " + std::to_string(counts.failed) + " failed";
  int64_t batches = 0;
  line += best_text(summary, &batches);
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  const double rate = (p - progress_at_start_) / std::max(elapsed, 1e-9);  // this runner's
  char buf[160];
  if (p > 0.001 && p < 1 && rate > 0) {
    // The searcher's progress is its share of the planned training: the plan in batches follows.
    std::snprintf(buf, sizeof buf, " | %lld/~%lld batches (%.0f%%) | ETA %s",
                  static_cast<long long>(batches),
                  static_cast<long long>(std::llround(static_cast<double>(batches) / p)), 100 * p,
                  util::format_duration((1 - p) / rate).c_str());
  } else {
    std::snprintf(buf, sizeof buf, " | %lld batches", static_cast<long long>(batches));
  }
  return line + buf;
}

void SearchStatus::show(const TrialCounts& counts, const record::ExperimentSummary& summary,
                        double progress) {
  const std::string now_text = text(counts, summary, progress);
  if (line_->enabled()) {
    line_->update(now_text);
    return;
  }
  const auto now = std::chrono::steady_clock::now();
  if (now_text != last_ && now - last_log_ >= std::chrono::seconds(30)) {
    util::logger()->info("{}", now_text);
    last_ = now_text;
    last_log_ = now;
  }
}

void SearchStatus::finish(const TrialCounts& counts, const record::ExperimentSummary& summary,
                          double progress) {
  line_.reset();
  util::logger()->info("{}", text(counts, summary, progress));  // where it ended, in the log too
}

}  // namespace det::experiment
