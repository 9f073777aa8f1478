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

struct sqlite3;

namespace det::experiment {

/// One experiment.
struct ExperimentRow {
  int64_t id = 0;
  std::string name, description, state, searcher, metric, run_dir, start_time, end_time;
  bool smaller_is_better = true;
  nlohmann::json config;
};

/// One trial of an experiment.
struct TrialRow {
  int64_t id = 0, experiment_id = 0, number = 0, seed = 0, restarts = 0, batches_trained = 0;
  std::string request_id, state, start_time, end_time;
  nlohmann::json hparams;
  std::optional<double> best_metric;
};

/// One training report or validation of a trial.
struct MetricRow {
  std::string kind;  ///< "training" or "validation"
  int64_t batches = 0;
  double epochs = 0;
  nlohmann::json metrics;
  std::string time;
};

/// One checkpoint of a trial.
struct CheckpointRow {
  std::string uuid, path, state, time;
  int64_t trial_id = 0, batches = 0;
  std::optional<double> metric;
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

  /// Adds an experiment; returns its id.
  int64_t add_experiment(const std::string& name, const std::string& description, const nlohmann::json& config,
                         const std::string& run_dir);
  void set_experiment_state(int64_t experiment_id, const std::string& state);
  /// Adds a trial (number: its id within the experiment); returns its store id.
  int64_t add_trial(int64_t experiment_id, int64_t number, const std::string& request_id, const nlohmann::json& hparams,
                    int64_t seed);
  /// The store id of trial `number` of an experiment, if it exists.
  std::optional<int64_t> find_trial(int64_t experiment_id, int64_t number);
  void set_trial_state(int64_t trial_id, const std::string& state);
  void set_trial_progress(int64_t trial_id, int64_t batches_trained, std::optional<double> best_metric);
  void add_restart(int64_t trial_id);
  void add_metrics(int64_t trial_id, const std::string& kind, int64_t batches, double epochs, const nlohmann::json& metrics);
  /// Forgets the metrics reported after batch `batches` (a restarted trial repeats that part from
  /// its checkpoint and reports it again).
  void rollback_metrics(int64_t trial_id, int64_t batches);
  void add_checkpoint(int64_t trial_id, const std::string& uuid, int64_t batches, const std::string& path,
                      std::optional<double> metric);
  /// Marks every checkpoint of the trial not in `kept` as deleted.
  void keep_checkpoints(int64_t trial_id, const std::vector<std::string>& kept);
  void save_searcher_snapshot(int64_t experiment_id, const nlohmann::json& snapshot);
  std::optional<nlohmann::json> searcher_snapshot(int64_t experiment_id);

  std::vector<ExperimentRow> experiments();
  /// Throws det::Error if there is no such experiment.
  ExperimentRow experiment(int64_t id);
  std::vector<TrialRow> trials(int64_t experiment_id);
  /// Throws det::Error if there is no such trial.
  TrialRow trial(int64_t trial_id);
  /// Metrics of a trial in report order; `kind` "" = both kinds.
  std::vector<MetricRow> metrics(int64_t trial_id, const std::string& kind = "");
  std::vector<CheckpointRow> checkpoints(int64_t trial_id, bool include_deleted = false);

  const std::filesystem::path& path() const { return path_; }

 private:
  struct Statement;
  void exec(const std::string& sql);
  void create_schema();
  /// Throws the error of the last call: det::StorageError when the disk is full or read-only.
  [[noreturn]] void fail(const std::string& what);
  std::filesystem::path path_;
  sqlite3* db_ = nullptr;
};

}  // namespace det::experiment
