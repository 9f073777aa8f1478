#pragma once
// Internal to the app layer: what each det-run command does. det::main (main.cpp) parses the
// command line and calls one of these.

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "det/record/control.h"

namespace det::app {

/// `det-run CONFIG ...`: the options of a training run.
struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;
  bool test = false;
  std::string resume;
  std::string resume_experiment;
  int slots = 0;
  std::string scheduler;  ///< --scheduler: local or slurm ("" = the config's choice).
  std::string log_level = "info";
  bool no_progress = false;
};

/// Set by SIGINT/SIGTERM: checkpoint and stop.
std::atomic<bool>& stop_flag();

/// `det-run CONFIG`: a new experiment through the runner (or, started as one rank of a launcher,
/// that rank of a single trial).
int train_experiment(const TrainArgs& args);
/// `det-run --resume-experiment DIR`.
int resume_experiment(const TrainArgs& args);
/// `det-run CONFIG --test` or `--resume CHECKPOINT`: one trial in this process.
int train_in_process(const TrainArgs& args);
/// `det-run fork EXPERIMENT_ID [--config key=value ...]`: a new experiment from the experiment's
/// resolved config.yaml (its seed included) with `args.overrides` on top; `args.config` unused.
int fork_experiment(int64_t experiment_id, const std::string& store, TrainArgs args);

/// `det-run validate-config CONFIG`.
int validate_config(const std::string& path, const std::vector<std::string>& overrides);
/// `det-run preview-search CONFIG [--simulate TRIALS.json]`.
int preview_search(const std::string& path, const std::vector<std::string>& overrides,
                   const std::string& trials_file);
/// `det-run list-trials [RUN_DIR]`.
int list_trials(const std::string& run_dir);
/// `det-run experiments [--store PATH]`.
int list_experiments(const std::string& store);
/// `det-run describe EXPERIMENT_ID [--store PATH]`.
int describe_experiment(int64_t experiment_id, const std::string& store);
/// `det-run metrics TRIAL_ID [--kind K] [--format F] [--store PATH]`.
int show_metrics(int64_t trial_id, const std::string& kind, const std::string& format,
                 const std::string& store);
/// `det-run logs TRIAL_ID [--follow] [--store PATH]`: prints the trial's log; with `follow`,
/// keeps printing what is appended until the trial ends or `stop` is set.
int show_logs(int64_t trial_id, bool follow, const std::string& store,
              const std::atomic<bool>* stop);

/// `det-run pause|activate|cancel|kill EXPERIMENT_ID` and `det-run set max-slots EXPERIMENT_ID
/// N` (`slots`): sends the command to the experiment's runner and waits up to `timeout_s` for
/// the store to show its effect (PAUSED, ACTIVE, CANCELED).
int control_experiment(record::ControlCommand::Kind kind, int64_t experiment_id, int slots,
                       const std::string& store, int timeout_s);
/// `det-run kill-trial TRIAL_ID`: the trial ends without a checkpoint (CANCELED); the search
/// goes on.
int kill_trial(int64_t trial_id, const std::string& store, int timeout_s);

/// The first line of an error message.
std::string first_line(const std::string& s);

}  // namespace det::app
