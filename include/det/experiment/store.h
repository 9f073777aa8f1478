#pragma once
/// \file
/// The experiment store: an embedded SQLite database (WAL mode; one writer, the process
/// running the experiment) holding experiments, trials, hyperparameters, training and validation
/// metrics, checkpoints and runner snapshots. `det-run experiments`, `describe` and `metrics`
/// read it; experiment::Recorder writes it.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/config/experiment_config.h"
#include "det/record/states.h"

struct sqlite3;

namespace det::experiment {

/// One experiment.
struct ExperimentRow {
  int64_t id = 0;  ///< The experiment's id (row id, from 1).
  /// @{
  /// The config's name and description; the searcher's name and metric; the run directory;
  /// start and end times (UTC ISO 8601; end "" while active).
  std::string name, description, searcher, metric, run_dir, start_time, end_time;
  /// @}
  record::RunState state = record::RunState::kActive;  ///< Where the experiment is.
  bool smaller_is_better = true;                       ///< The searcher metric's order.
  nlohmann::json config;                               ///< The resolved config (config::to_json).
};

/// One trial of an experiment.
struct TrialRow {
  /// @{
  /// The store's id of the trial, its experiment's id, its number in the experiment (from 1), its
  /// seed, restarts so far, and the latest batches_trained reported.
  int64_t id = 0, experiment_id = 0, number = 0, seed = 0, restarts = 0, batches_trained = 0;
  /// @}
  /// @{
  /// The searcher's request id; start and end times (UTC ISO 8601; end "" while active).
  std::string request_id, start_time, end_time;
  /// @}
  /// Where the trial is (never RUNNING: a trial with a worker is ACTIVE here).
  record::TrialStatus state = record::TrialStatus::kActive;
  nlohmann::json hparams;             ///< The trial's hyperparameter values.
  std::optional<double> best_metric;  ///< Best searcher metric so far; none before a validation.
};

/// One training report or validation of a trial.
struct MetricRow {
  std::string kind;  ///< "training" or "validation"
  /// batches_trained when reported.
  int64_t batches = 0;
  double epochs = 0;  ///< batches / batches per epoch.
  /// name -> value, as in record::MetricsReport::metrics.
  nlohmann::json metrics;
  std::string time;  ///< When recorded, UTC ISO 8601.
};

/// One checkpoint of a trial.
struct CheckpointRow {
  /// @{
  /// The checkpoint's uuid and directory; ACTIVE, or DELETED once retention removed it; when
  /// recorded (UTC ISO 8601).
  std::string uuid, path, state, time;
  /// @}
  /// @{
  /// The trial's store id; batches_trained when written.
  int64_t trial_id = 0, batches = 0;
  /// @}
  std::optional<double> metric;  ///< The searcher metric validated at that batch, if any.
};

/// One launch of a trial's worker: a local process or a Slurm job.
struct JobRow {
  /// @{
  /// The trial's store id; which launch of it (from 1).
  int64_t trial_id = 0, launch = 0;
  /// @}
  /// @{
  /// "local" or "slurm"; the process id or Slurm job id; the node it ran on ("" until known);
  /// its state (SUBMITTED, RUNNING, then how it ended: the scheduler's word, e.g. COMPLETED,
  /// CANCELLED, exited 0); submission and end times (UTC ISO 8601; end "" while it runs).
  std::string scheduler, job_id, node, state, submit_time, end_time;
  /// @}
};

/// The database. Every call throws det::Error naming the database file on a failure
/// (det::StorageError when the disk is full or read-only).
class ExperimentStore {
 public:
  /// Opens (creating if needed) the database at `path` and its schema.
  explicit ExperimentStore(const std::filesystem::path& path);
  ~ExperimentStore();
  ExperimentStore(const ExperimentStore&) = delete;
  ExperimentStore& operator=(const ExperimentStore&) = delete;

  /// Adds an experiment (its config as to_json writes it, its searcher from the typed config);
  /// returns its id.
  int64_t add_experiment(const std::string& name, const std::string& description,
                         const config::ExperimentConfig& config, const std::string& run_dir);
  /// Sets the state; any state but active also sets end_time to now (active clears it).
  void set_experiment_state(int64_t experiment_id, record::RunState state);
  /// Adds a trial (number: its id within the experiment); returns its store id.
  int64_t add_trial(int64_t experiment_id, int64_t number, const std::string& request_id,
                    const nlohmann::json& hparams, int64_t seed);
  /// The store id of trial `number` of an experiment, if it exists.
  std::optional<int64_t> find_trial(int64_t experiment_id, int64_t number);
  /// Sets the state (RUNNING is stored as ACTIVE); any state but active also sets end_time to
  /// now (active clears it).
  void set_trial_state(int64_t trial_id, record::TrialStatus state);
  /// Sets batches_trained, and best_metric when given (nullopt keeps the stored one).
  void set_trial_progress(int64_t trial_id, int64_t batches_trained,
                          std::optional<double> best_metric);
  /// Counts one more restart of the trial.
  void add_restart(int64_t trial_id);
  /// Appends a report; `kind` is "training" or "validation", `metrics` name -> value.
  void add_metrics(int64_t trial_id, const std::string& kind, int64_t batches, double epochs,
                   const nlohmann::json& metrics);
  /// Forgets the metrics reported after batch `batches` (a restarted trial repeats that part from
  /// its checkpoint and reports it again).
  void rollback_metrics(int64_t trial_id, int64_t batches);
  /// Records a checkpoint as ACTIVE (replacing a row with the same uuid).
  void add_checkpoint(int64_t trial_id, const std::string& uuid, int64_t batches,
                      const std::string& path, std::optional<double> metric);
  /// Marks every checkpoint of the trial not in `kept` as deleted.
  void keep_checkpoints(int64_t trial_id, const std::vector<std::string>& kept);
  /// Records launch `launch` of a trial as submitted (replacing a row of the same launch).
  void add_job(int64_t trial_id, int64_t launch, const std::string& scheduler,
               const std::string& job_id);
  /// Records that a launch runs on `node` (unless "", not known yet): state RUNNING.
  void job_running(int64_t trial_id, int64_t launch, const std::string& node);
  /// Records how a launch ended (the scheduler's word: COMPLETED, CANCELLED, "exited with status
  /// 1", ...), its node (unless "") and its end time.
  void job_ended(int64_t trial_id, int64_t launch, const std::string& node, const std::string& how);
  /// A trial's launches in order.
  std::vector<JobRow> jobs(int64_t trial_id);
  /// Replaces the experiment's runner snapshot (what --resume-experiment restores).
  void save_searcher_snapshot(int64_t experiment_id, const nlohmann::json& snapshot);
  /// The latest snapshot saved, or nullopt when there is none.
  std::optional<nlohmann::json> searcher_snapshot(int64_t experiment_id);

  /// Every experiment, by id.
  std::vector<ExperimentRow> experiments();
  /// Throws det::Error if there is no such experiment.
  ExperimentRow experiment(int64_t id);
  /// The experiment's trials by number; empty for an unknown experiment.
  std::vector<TrialRow> trials(int64_t experiment_id);
  /// Throws det::Error if there is no such trial.
  TrialRow trial(int64_t trial_id);
  /// Metrics of a trial in report order; `kind` "" = both kinds.
  std::vector<MetricRow> metrics(int64_t trial_id, const std::string& kind = "");
  /// The trial's checkpoints by batches; DELETED ones too with `include_deleted`.
  std::vector<CheckpointRow> checkpoints(int64_t trial_id, bool include_deleted = false);
  /// The checkpoint with this uuid (deleted ones too), if the store has it.
  std::optional<CheckpointRow> checkpoint(const std::string& uuid);

  /// The database file.
  const std::filesystem::path& path() const { return path_; }

 private:
  struct Statement;
  void exec(const std::string& sql);
  void create_schema();
  static CheckpointRow checkpoint_row(Statement& st);
  void set_job(int64_t trial_id, int64_t launch, const std::string& node, const std::string& state,
               bool ended);
  /// Throws the error of the last call: det::StorageError when the disk is full or read-only.
  [[noreturn]] void fail(const std::string& what);
  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
};

}  // namespace det::experiment
