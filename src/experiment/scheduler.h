#pragma once
// Internal to the experiment runner: where a trial's worker runs. The local scheduler starts it
// as a child process; the Slurm scheduler submits it as one batch job (all its ranks) with
// sbatch and follows it with squeue. Both run the same worker command line, which speaks the
// worker protocol through the worker channel (det/record/worker_channel.h), so the runner
// treats both alike. docs/distributed.md (Searches on Slurm) describes the Slurm side.

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "det/config/experiment_config.h"

namespace det::experiment {

/// One trial launch to start.
struct JobRequest {
  std::string name;               ///< Unique for the launch (Slurm's job name).
  std::vector<std::string> argv;  ///< The worker's command line.
  std::vector<std::string> env;   ///< Local: the worker's whole environment.
  int slots = 1;                  ///< Ranks.
  std::filesystem::path output;   ///< Slurm: the job's stdout and stderr.
};

/// What a scheduler knows of a job.
struct JobState {
  /// Waiting for resources, running, or over.
  enum class Phase { kPending, kRunning, kEnded };
  Phase phase = Phase::kPending;   ///< Where the job is.
  std::optional<int> wait_status;  ///< Local: the process's wait status once it ended.
  std::string state;               ///< The scheduler's word: RUNNING, COMPLETED, exited 1, ...
  std::string node;                ///< Where it runs ("" while unknown).
  /// Ended because the scheduler cancelled or preempted it (scancel, preemption): the worker
  /// was asked to checkpoint and stop; not a failure of the trial.
  bool cancelled = false;
};

/// Starts and follows trial workers.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  /// "local" or "slurm".
  virtual const char* name() const = 0;
  /// Whether a job goes on when the runner dies (and a restarted runner may re-attach to it).
  virtual bool jobs_outlive_runner() const = 0;
  /// Starts a job; returns its id. Throws det::Error (with the scheduler's own message).
  virtual std::string submit(const JobRequest& request) = 0;
  /// The states of `jobs` (ids). A job missing from the answer was not looked at this time (the
  /// Slurm scheduler asks Slurm at most once a second).
  virtual std::map<std::string, JobState> poll(const std::vector<std::string>& jobs) = 0;
  /// The id of a job submitted with this name that has not ended, if any.
  virtual std::optional<std::string> find(const std::string& name) = 0;
  /// Asks the job to checkpoint and end (SIGTERM to its ranks; a waiting job is cancelled).
  virtual void stop(const std::string& job) = 0;
  /// Ends it now (SIGKILL; scancel).
  virtual void kill(const std::string& job) = 0;
};

/// Child processes of the runner, in their own process groups, killed when the runner dies.
std::unique_ptr<Scheduler> make_local_scheduler();

/// Batch jobs: sbatch, squeue, scancel from PATH, with the config's `slurm:` options; the job
/// script (written to `script`) starts the worker's ranks with srun.
std::unique_ptr<Scheduler> make_slurm_scheduler(const config::SlurmConfig& config,
                                                const std::filesystem::path& script);

}  // namespace det::experiment
