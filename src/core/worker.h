#pragma once
// The trial side of the experiment runner (det-run __worker) and the listener that turns a trial's
// reports into the events experiment::record_trial_event understands. Internal to det::main.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/core/controller.h"

namespace det {

/// A checkpoint as the events carry it: {uuid, batches, path, metric}.
nlohmann::json checkpoint_json(const CheckpointRecord& record);

/// Forwards the controller's reports as events ({"event": "training", ...}) to a sink.
class EventListener : public TrialListener {
 public:
  explicit EventListener(std::function<void(const nlohmann::json&)> sink) : sink_(std::move(sink)) {}
  void on_training_metrics(int64_t batches, const nlohmann::json& report) override;
  void on_validation_metrics(int64_t batches, const nlohmann::json& report) override;
  void on_checkpoint(const CheckpointRecord& record, const std::vector<CheckpointRecord>& kept) override;

 private:
  std::function<void(const nlohmann::json&)> sink_;
};

/// `det-run __worker`: what the experiment runner starts for one trial.
struct WorkerArgs {
  std::string run_dir;
  int64_t trial = 0;
  int64_t target = 0;  ///< Total length to train to, in the searcher's unit.
  std::string resume;  ///< Checkpoint directory to start from ("" = from scratch).
  int report_fd = 3, control_fd = 4;
  bool no_progress = false;
  int threads = 0;  ///< Intra-op threads (0 = LibTorch's default).
};

/// Runs one trial for the runner. Returns 0 (done or paused), 130 (stopped by a signal), 3 (the
/// trial rejected its hyperparameters) or 1 (failed); the reason also goes to the runner.
int run_worker(const WorkerArgs& args, const std::atomic<bool>* stop_flag);

}  // namespace det
