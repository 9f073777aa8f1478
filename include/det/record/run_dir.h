#pragma once
/// \file
/// The names of every path in a run directory, in one place: the runner, the recorder, the
/// worker and the queries all reach the files through RunDir and TrialDir.
///
///   <root>/det.db                          the experiment store of the run directories under root
///   <root>/<name>-<YYYYmmdd-HHMMSS>/       a run directory (experiment::create_run_dir)
///     config.yaml                          the resolved config (every default filled in)
///     experiment.json                      record::ExperimentSummary
///     det.log                              the log
///     runner.lock                          held (flock) by the runner while it runs
///     control/<id>.json, <id>.answer       commands to the runner and its answers
///     slurm/trial.sbatch                   the Slurm scheduler's job script
///     trial-<id>/
///       trial.log                          the worker's log
///       metrics.jsonl                      record::MetricsReport per line
///       checkpoints/<uuid>/                record::CheckpointMetadata and the state
///       channel/launch-<K>.events          the worker channel (det/record/worker_channel.h)
///       channel/launch-<K>.answers
///       slurm-launch-<K>.out               a Slurm job's output

#include <cstdint>
#include <filesystem>
#include <string>

namespace det::record {

/// The paths of one trial's directory.
class TrialDir {
 public:
  /// The trial directory at `dir` (RunDir::trial() names it).
  explicit TrialDir(std::filesystem::path dir);

  /// The directory itself.
  const std::filesystem::path& path() const { return dir_; }
  /// trial.log: the worker's log.
  std::filesystem::path log() const;
  /// metrics.jsonl: every training report and validation, one per line.
  std::filesystem::path metrics() const;
  /// checkpoints/: one directory per checkpoint uuid.
  std::filesystem::path checkpoints() const;
  /// channel/launch-K.events: what launch K's worker writes to the runner.
  std::filesystem::path channel_events(int64_t launch) const;
  /// channel/launch-K.answers: what the runner answers launch K's worker.
  std::filesystem::path channel_answers(int64_t launch) const;
  /// slurm-launch-K.out: the output of launch K's Slurm job.
  std::filesystem::path slurm_output(int64_t launch) const;

 private:
  std::filesystem::path dir_;
};

/// The paths of a run directory.
class RunDir {
 public:
  /// The run directory at `dir`.
  explicit RunDir(std::filesystem::path dir);

  /// "config.yaml": the resolved config's name (experiment.json records it).
  static const char* const kConfigFile;
  /// "trial-<id>": a trial's directory name (in the run directory and the TensorBoard root).
  static std::string trial_name(int64_t trial);
  /// The store beside the run directories under `root`: root/det.db.
  static std::filesystem::path store_in(const std::filesystem::path& root);

  /// The directory itself.
  const std::filesystem::path& path() const { return dir_; }
  /// config.yaml: the resolved config.
  std::filesystem::path config() const;
  /// experiment.json: the experiment's summary.
  std::filesystem::path summary() const;
  /// det.log: the runner's log.
  std::filesystem::path log() const;
  /// runner.lock: the runner holds an exclusive flock on it while it runs (its pid and host
  /// inside).
  std::filesystem::path runner_lock() const;
  /// control/: commands to the running runner (det-run pause, ...) and its answers.
  std::filesystem::path control() const;
  /// slurm/trial.sbatch: the job script of the Slurm scheduler.
  std::filesystem::path slurm_script() const;
  /// The store it is recorded in unless experiment.json names another: ../det.db.
  std::filesystem::path default_store() const;
  /// The directory of trial `id` (trial_name()).
  TrialDir trial(int64_t id) const;

 private:
  std::filesystem::path dir_;
};

}  // namespace det::record
