#pragma once
// Internal to the app layer: the trial side of the experiment runner (det-run __worker).

#include <atomic>
#include <cstdint>
#include <string>

namespace det::app {

/// `det-run __worker`: what the experiment runner starts for one trial.
struct WorkerArgs {
  std::string run_dir;
  int64_t trial = 0;
  int64_t target = 0;      ///< Total length to train to, in the searcher's unit.
  std::string resume;      ///< Checkpoint directory to start from ("" = from scratch).
  std::string warm_start;  ///< Checkpoint to warm-start from (searcher.source_*; "" = none).
  int launch = 1;          ///< Which launch of the trial: names its worker channel's files.
  bool no_progress = false;
  int threads = 0;            ///< Intra-op threads (0 = LibTorch's default).
  std::string console_level;  ///< Log level of the console (the trial.log keeps info); "" = as is.
};

/// Runs one trial for the runner, speaking the worker protocol (det/record/worker_protocol.h).
/// Returns 0 (done or paused), 130 (stopped by a signal), 3 (the trial rejected its
/// hyperparameters) or 1 (failed); the reason also goes to the runner.
int run_worker(const WorkerArgs& args, const std::atomic<bool>* stop_flag);

}  // namespace det::app
