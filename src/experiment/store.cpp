#include "det/experiment/store.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <set>
#include <sstream>

#include "det/util/error.h"
#include "det/util/strings.h"

namespace det::experiment {
namespace fs = std::filesystem;

// A prepared statement with positional binds; finalized on destruction.
struct ExperimentStore::Statement {
  Statement(ExperimentStore& store, const std::string& sql) : store_(store) {
    if (sqlite3_prepare_v2(store.db_, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK)
      fail("prepare");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement& bind(int i, int64_t v) { return check(sqlite3_bind_int64(stmt_, i, v)); }
  Statement& bind(int i, double v) { return check(sqlite3_bind_double(stmt_, i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check(
        sqlite3_bind_text(stmt_, i, v.c_str(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& bind(int i, std::optional<double> v) {
    return v ? bind(i, *v) : check(sqlite3_bind_null(stmt_, i));
  }
  /// Advances; true while a row is available.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc != SQLITE_DONE) fail("step");
    return false;
  }
  int64_t i64(int c) { return sqlite3_column_int64(stmt_, c); }
  double f64(int c) { return sqlite3_column_double(stmt_, c); }
  bool is_null(int c) { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
  std::string text(int c) {
    auto* p = sqlite3_column_text(stmt_, c);
    return p ? reinterpret_cast<const char*>(p) : "";
  }
  nlohmann::json json(int c) {
    std::string t = text(c);
    return t.empty() ? nlohmann::json() : nlohmann::json::parse(t);
  }

 private:
  Statement& check(int rc) {
    if (rc != SQLITE_OK) fail("bind");
    return *this;
  }
  [[noreturn]] void fail(const char* what) { store_.fail(what); }
  ExperimentStore& store_;
  sqlite3_stmt* stmt_ = nullptr;
};

ExperimentStore::ExperimentStore(const fs::path& path) : path_(path) {
  std::error_code ec;
  if (!path.parent_path().empty()) fs::create_directories(path.parent_path(), ec);
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw Error("cannot open the experiment store " + path.string() + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 10000);  // readers (det-run experiments) may overlap the writer
  try {
    create_schema();
  } catch (...) {
    sqlite3_close(db_);  // the destructor does not run for a constructor that throws
    db_ = nullptr;
    throw;
  }
}

void ExperimentStore::create_schema() {
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA foreign_keys=ON");
  exec(R"(CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, description TEXT, config TEXT NOT NULL, run_dir TEXT,
    state TEXT NOT NULL DEFAULT 'ACTIVE', searcher TEXT, metric TEXT, smaller_is_better INTEGER,
    start_time TEXT NOT NULL, end_time TEXT);
  CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY, experiment_id INTEGER NOT NULL REFERENCES experiments(id), number INTEGER NOT NULL,
    request_id TEXT, hparams TEXT NOT NULL, seed INTEGER, state TEXT NOT NULL DEFAULT 'ACTIVE',
    restarts INTEGER NOT NULL DEFAULT 0, batches_trained INTEGER NOT NULL DEFAULT 0, best_metric REAL,
    start_time TEXT NOT NULL, end_time TEXT, UNIQUE (experiment_id, number));
  CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY, trial_id INTEGER NOT NULL REFERENCES trials(id), kind TEXT NOT NULL,
    batches INTEGER NOT NULL, epochs REAL, metrics TEXT NOT NULL, time TEXT NOT NULL);
  CREATE INDEX IF NOT EXISTS metrics_by_trial ON metrics (trial_id, kind, batches);
  CREATE TABLE IF NOT EXISTS checkpoints (
    uuid TEXT PRIMARY KEY, trial_id INTEGER NOT NULL REFERENCES trials(id), batches INTEGER NOT NULL,
    path TEXT NOT NULL, metric REAL, state TEXT NOT NULL DEFAULT 'ACTIVE', time TEXT NOT NULL);
  CREATE TABLE IF NOT EXISTS jobs (
    trial_id INTEGER NOT NULL REFERENCES trials(id), launch INTEGER NOT NULL, scheduler TEXT NOT NULL,
    job_id TEXT NOT NULL, node TEXT NOT NULL DEFAULT '', state TEXT NOT NULL, submit_time TEXT NOT NULL,
    end_time TEXT, PRIMARY KEY (trial_id, launch));
  CREATE TABLE IF NOT EXISTS searcher_snapshots (
    experiment_id INTEGER PRIMARY KEY REFERENCES experiments(id), snapshot TEXT NOT NULL, time TEXT NOT NULL);)");
}

ExperimentStore::~ExperimentStore() { sqlite3_close(db_); }

void ExperimentStore::fail(const std::string& what) {
  const int code = sqlite3_errcode(db_);
  const std::string msg =
      "experiment store " + path_.string() + ": " + what + " failed: " + sqlite3_errmsg(db_);
  // A full or read-only disk: the experiment stops and is resumable once there is room.
  if (code == SQLITE_FULL || code == SQLITE_READONLY ||
      (code == SQLITE_IOERR && is_storage_errno(errno)))
    throw StorageError(msg);
  throw Error(msg + " (is the file a det experiment store?)");
}

void ExperimentStore::exec(const std::string& sql) {
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) fail("a statement");
}

int64_t ExperimentStore::add_experiment(const std::string& name, const std::string& description,
                                        const config::ExperimentConfig& config,
                                        const std::string& run_dir) {
  const config::SearcherConfig& s = config.searcher;
  Statement st(*this,
               "INSERT INTO experiments (name, description, config, run_dir, searcher, metric, "
               "smaller_is_better, "
               "start_time) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  st.bind(1, name).bind(2, description).bind(3, config::to_json(config).dump()).bind(4, run_dir);
  st.bind(5, s.name).bind(6, s.metric);
  st.bind(7, static_cast<int64_t>(s.smaller_is_better)).bind(8, util::utc_now_iso8601());
  st.step();
  return sqlite3_last_insert_rowid(db_);
}

void ExperimentStore::set_experiment_state(int64_t id, record::RunState state) {
  Statement st(*this, "UPDATE experiments SET state = ?, end_time = ? WHERE id = ?");
  st.bind(1, std::string(record::to_string(state)))
      .bind(2, record::goes_on(state) ? std::string() : util::utc_now_iso8601())
      .bind(3, id)
      .step();
}

int64_t ExperimentStore::add_trial(int64_t experiment_id, int64_t number,
                                   const std::string& request_id, const nlohmann::json& hparams,
                                   int64_t seed) {
  Statement st(*this,
               "INSERT INTO trials (experiment_id, number, request_id, hparams, seed, start_time) "
               "VALUES (?, ?, ?, ?, ?, ?)");
  st.bind(1, experiment_id)
      .bind(2, number)
      .bind(3, request_id)
      .bind(4, hparams.dump())
      .bind(5, seed);
  st.bind(6, util::utc_now_iso8601()).step();
  return sqlite3_last_insert_rowid(db_);
}

std::optional<int64_t> ExperimentStore::find_trial(int64_t experiment_id, int64_t number) {
  Statement st(*this, "SELECT id FROM trials WHERE experiment_id = ? AND number = ?");
  st.bind(1, experiment_id).bind(2, number);
  if (st.step()) return st.i64(0);
  return std::nullopt;
}

void ExperimentStore::set_trial_state(int64_t trial_id, record::TrialStatus state) {
  state = record::stored_status(state);
  Statement st(*this, "UPDATE trials SET state = ?, end_time = ? WHERE id = ?");
  st.bind(1, std::string(record::to_string(state)))
      .bind(2, state == record::TrialStatus::kActive ? std::string() : util::utc_now_iso8601())
      .bind(3, trial_id)
      .step();
}

void ExperimentStore::set_trial_progress(int64_t trial_id, int64_t batches_trained,
                                         std::optional<double> best_metric) {
  Statement st(
      *this,
      "UPDATE trials SET batches_trained = ?, best_metric = COALESCE(?, best_metric) WHERE id = ?");
  st.bind(1, batches_trained).bind(2, best_metric).bind(3, trial_id).step();
}

void ExperimentStore::rollback_metrics(int64_t trial_id, int64_t batches) {
  Statement st(*this, "DELETE FROM metrics WHERE trial_id = ? AND batches > ?");
  st.bind(1, trial_id).bind(2, batches).step();
}

void ExperimentStore::add_restart(int64_t trial_id) {
  Statement st(*this, "UPDATE trials SET restarts = restarts + 1 WHERE id = ?");
  st.bind(1, trial_id).step();
}

void ExperimentStore::add_job(int64_t trial_id, int64_t launch, const std::string& scheduler,
                              const std::string& job_id) {
  Statement st(*this,
               "INSERT OR REPLACE INTO jobs (trial_id, launch, scheduler, job_id, state, "
               "submit_time) VALUES (?, ?, ?, ?, 'SUBMITTED', ?)");
  st.bind(1, trial_id).bind(2, launch).bind(3, scheduler).bind(4, job_id);
  st.bind(5, util::utc_now_iso8601()).step();
}

void ExperimentStore::job_running(int64_t trial_id, int64_t launch, const std::string& node) {
  set_job(trial_id, launch, node, "RUNNING", false);
}

void ExperimentStore::job_ended(int64_t trial_id, int64_t launch, const std::string& node,
                                const std::string& how) {
  set_job(trial_id, launch, node, how, true);
}

void ExperimentStore::set_job(int64_t trial_id, int64_t launch, const std::string& node,
                              const std::string& state, bool ended) {
  Statement st(*this,
               "UPDATE jobs SET node = CASE WHEN ? = '' THEN node ELSE ? END, state = ?, "
               "end_time = ? WHERE trial_id = ? AND launch = ?");
  st.bind(1, node).bind(2, node).bind(3, state);
  st.bind(4, ended ? util::utc_now_iso8601() : std::string()).bind(5, trial_id).bind(6, launch);
  st.step();
}

std::vector<JobRow> ExperimentStore::jobs(int64_t trial_id) {
  std::vector<JobRow> out;
  Statement st(*this,
               "SELECT trial_id, launch, scheduler, job_id, node, state, submit_time, "
               "COALESCE(end_time, '') FROM jobs WHERE trial_id = ? ORDER BY launch");
  st.bind(1, trial_id);
  while (st.step())
    out.push_back({st.i64(0), st.i64(1), st.text(2), st.text(3), st.text(4), st.text(5), st.text(6),
                   st.text(7)});
  return out;
}

void ExperimentStore::add_metrics(int64_t trial_id, const std::string& kind, int64_t batches,
                                  double epochs, const nlohmann::json& metrics) {
  Statement st(*this,
               "INSERT INTO metrics (trial_id, kind, batches, epochs, metrics, time) VALUES (?, ?, "
               "?, ?, ?, ?)");
  st.bind(1, trial_id).bind(2, kind).bind(3, batches).bind(4, epochs).bind(5, metrics.dump());
  st.bind(6, util::utc_now_iso8601()).step();
}

void ExperimentStore::add_checkpoint(int64_t trial_id, const std::string& uuid, int64_t batches,
                                     const std::string& path, std::optional<double> metric) {
  Statement st(*this,
               "INSERT OR REPLACE INTO checkpoints (uuid, trial_id, batches, path, metric, time) "
               "VALUES (?, ?, ?, ?, ?, ?)");
  st.bind(1, uuid)
      .bind(2, trial_id)
      .bind(3, batches)
      .bind(4, path)
      .bind(5, metric)
      .bind(6, util::utc_now_iso8601());
  st.step();
}

void ExperimentStore::keep_checkpoints(int64_t trial_id, const std::vector<std::string>& kept) {
  std::set<std::string> keep(kept.begin(), kept.end());
  for (const auto& c : checkpoints(trial_id)) {
    if (keep.count(c.uuid)) continue;
    Statement st(*this, "UPDATE checkpoints SET state = 'DELETED' WHERE uuid = ?");
    st.bind(1, c.uuid).step();
  }
}

void ExperimentStore::save_searcher_snapshot(int64_t experiment_id,
                                             const nlohmann::json& snapshot) {
  Statement st(
      *this,
      "INSERT OR REPLACE INTO searcher_snapshots (experiment_id, snapshot, time) VALUES (?, ?, ?)");
  st.bind(1, experiment_id).bind(2, snapshot.dump()).bind(3, util::utc_now_iso8601()).step();
}

std::optional<nlohmann::json> ExperimentStore::searcher_snapshot(int64_t experiment_id) {
  Statement st(*this, "SELECT snapshot FROM searcher_snapshots WHERE experiment_id = ?");
  st.bind(1, experiment_id);
  if (st.step()) return st.json(0);
  return std::nullopt;
}

namespace {
const char* kExperimentColumns =
    "SELECT id, name, description, state, searcher, metric, run_dir, start_time, end_time, "
    "smaller_is_better, config "
    "FROM experiments";
}  // namespace

std::vector<ExperimentRow> ExperimentStore::experiments() {
  std::vector<ExperimentRow> out;
  Statement st(*this, std::string(kExperimentColumns) + " ORDER BY id");
  while (st.step()) {
    ExperimentRow r;
    r.id = st.i64(0);
    r.name = st.text(1), r.description = st.text(2), r.searcher = st.text(4);
    r.state =
        record::run_state_of(st.text(3), path_.string() + ": experiment " + std::to_string(r.id));
    r.metric = st.text(5), r.run_dir = st.text(6), r.start_time = st.text(7),
    r.end_time = st.text(8);
    r.smaller_is_better = st.i64(9) != 0;
    r.config = st.json(10);
    out.push_back(std::move(r));
  }
  return out;
}

ExperimentRow ExperimentStore::experiment(int64_t id) {
  for (auto& e : experiments())
    if (e.id == id) return e;
  throw Error("experiment store " + path_.string() + ": no experiment " + std::to_string(id) +
              " (det-run experiments lists them)");
}

namespace {
const char* kTrialColumns =
    "SELECT id, experiment_id, number, seed, restarts, batches_trained, request_id, state, "
    "start_time, end_time, "
    "hparams, best_metric FROM trials";
}  // namespace

std::vector<TrialRow> ExperimentStore::trials(int64_t experiment_id) {
  std::vector<TrialRow> out;
  Statement st(*this, std::string(kTrialColumns) + " WHERE experiment_id = ? ORDER BY number");
  st.bind(1, experiment_id);
  while (st.step()) {
    TrialRow r;
    r.id = st.i64(0), r.experiment_id = st.i64(1), r.number = st.i64(2), r.seed = st.i64(3);
    r.restarts = st.i64(4), r.batches_trained = st.i64(5);
    r.state =
        record::trial_status_of(st.text(7), path_.string() + ": trial " + std::to_string(r.id));
    r.request_id = st.text(6), r.start_time = st.text(8), r.end_time = st.text(9);
    r.hparams = st.json(10);
    if (!st.is_null(11)) r.best_metric = st.f64(11);
    out.push_back(std::move(r));
  }
  return out;
}

TrialRow ExperimentStore::trial(int64_t trial_id) {
  Statement st(*this, "SELECT experiment_id FROM trials WHERE id = ?");
  st.bind(1, trial_id);
  if (st.step()) {
    for (auto& t : trials(st.i64(0)))
      if (t.id == trial_id) return t;
  }
  throw Error("experiment store " + path_.string() + ": no trial " + std::to_string(trial_id) +
              " (det-run describe EXPERIMENT_ID lists its trials)");
}

std::vector<MetricRow> ExperimentStore::metrics(int64_t trial_id, const std::string& kind) {
  std::vector<MetricRow> out;
  Statement st(*this,
               "SELECT kind, batches, epochs, metrics, time FROM metrics WHERE trial_id = ? AND (? "
               "= '' OR kind = ?) "
               "ORDER BY id");
  st.bind(1, trial_id).bind(2, kind).bind(3, kind);
  while (st.step()) out.push_back({st.text(0), st.i64(1), st.f64(2), st.json(3), st.text(4)});
  return out;
}

namespace {
constexpr const char* kCheckpointColumns = "uuid, path, state, time, trial_id, batches, metric";
}  // namespace

std::vector<CheckpointRow> ExperimentStore::checkpoints(int64_t trial_id, bool include_deleted) {
  std::vector<CheckpointRow> out;
  Statement st(*this, std::string("SELECT ") + kCheckpointColumns +
                          " FROM checkpoints WHERE trial_id = ? AND (? OR state = 'ACTIVE') "
                          "ORDER BY batches");
  st.bind(1, trial_id).bind(2, static_cast<int64_t>(include_deleted));
  while (st.step()) out.push_back(checkpoint_row(st));
  return out;
}

std::optional<CheckpointRow> ExperimentStore::checkpoint(const std::string& uuid) {
  Statement st(*this,
               std::string("SELECT ") + kCheckpointColumns + " FROM checkpoints WHERE uuid = ?");
  st.bind(1, uuid);
  if (!st.step()) return std::nullopt;
  return checkpoint_row(st);
}

CheckpointRow ExperimentStore::checkpoint_row(Statement& st) {
  CheckpointRow r{st.text(0), st.text(1), st.text(2),  st.text(3),
                  st.i64(4),  st.i64(5),  std::nullopt};
  if (!st.is_null(6)) r.metric = st.f64(6);
  return r;
}

}  // namespace det::experiment
