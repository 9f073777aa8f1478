#pragma once
// Internal to the experiment runner: the search's status line (trials done, running, paused and
// failed, the best metric, the batches and the ETA), redrawn on a terminal, logged every 30 s
// when it changed elsewhere.

#include <chrono>
#include <memory>
#include <string>

#include "det/config/experiment_config.h"
#include "det/record/experiment_summary.h"
#include "det/util/progress.h"

namespace det::experiment {

/// How many trials are where.
struct TrialCounts {
  int done = 0;     ///< COMPLETED or STOPPED.
  int running = 0;  ///< RUNNING.
  int waiting = 0;  ///< PAUSED or QUEUED.
  int failed = 0;   ///< ERROR or INVALID_HP.

  /// Counts one more trial in `status`.
  void add(record::TrialStatus status);
};

/// The search's line.
class SearchStatus {
 public:
  /// `progress_at_start`: the searcher's progress when this runner began (a resumed search has
  /// done part already); the ETA is from this runner's rate.
  SearchStatus(const config::SearcherConfig& searcher, bool show_progress,
               double progress_at_start);

  /// Whether the line owns a terminal (workers then keep their log lines to their trial.log).
  bool on_terminal() const { return line_ && line_->enabled(); }
  /// The line's text.
  std::string text(const TrialCounts& counts, const record::ExperimentSummary& summary,
                   double progress) const;
  /// Redraws the line, or logs it when it changed and 30 s passed.
  void show(const TrialCounts& counts, const record::ExperimentSummary& summary, double progress);
  /// Clears the line and logs where the search ended.
  void finish(const TrialCounts& counts, const record::ExperimentSummary& summary, double progress);

 private:
  std::string best_text(const record::ExperimentSummary& summary, int64_t* batches) const;

  config::SearcherConfig searcher_;
  std::unique_ptr<util::ProgressLine> line_;
  std::chrono::steady_clock::time_point started_, last_log_;
  std::string last_;
  double progress_at_start_ = 0;
};

}  // namespace det::experiment
