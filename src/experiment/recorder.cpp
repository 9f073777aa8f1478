#include "det/experiment/recorder.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include <spdlog/spdlog.h>

#include "det/config/metric.h"
#include "det/record/run_dir.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/log.h"
#include "det/util/strings.h"

namespace det::experiment {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::optional<double> metric_of(const json& metrics, const std::string& name) {
  if (metrics.is_object() && metrics.contains(name) && metrics[name].is_number())
    return metrics[name].get<double>();
  return std::nullopt;
}

}  // namespace

Recorder::Recorder(fs::path run_dir, record::ExperimentSummary summary,
                   std::unique_ptr<ExperimentStore> store, int64_t experiment_id)
    : run_dir_(std::move(run_dir)),
      summary_(std::move(summary)),
      store_(std::move(store)),
      experiment_id_(experiment_id),
      tensorboard_(std::make_unique<TensorBoardLog>(
          summary_.tensorboard_dir ? fs::path(*summary_.tensorboard_dir) : run_dir_)) {
  // The HParams columns' types, from the resolved config (an experiment reopened to resume).
  try {
    tensorboard_->set_columns(
        config::load_experiment_config(run_dir_ / summary_.config_file).hyperparameters);
  } catch (const std::exception&) {
    // No readable config.yaml: values go as they are.
  }
}

std::unique_ptr<Recorder> Recorder::create(const fs::path& run_dir,
                                           const config::ExperimentConfig& config,
                                           uint32_t experiment_seed) {
  record::ExperimentSummary s;
  s.name = config.name;
  s.description = config.description;
  s.labels = config.labels;
  s.source_config = config.source;
  s.entrypoint = config.entrypoint;
  s.experiment_seed = experiment_seed;
  s.searcher_name = config.searcher.name;
  s.searcher_metric = config.searcher.metric;
  s.smaller_is_better = config.searcher.smaller_is_better;
  s.start_time = util::utc_now_iso8601();
  auto store = std::make_unique<ExperimentStore>(record::RunDir(run_dir).default_store());
  int64_t id = store->add_experiment(config.name, config.description, config, run_dir.string());
  s.store_path = store->path().string();
  s.store_experiment_id = id;
  if (config.tensorboard_storage)
    s.tensorboard_dir =
        fs::absolute(config.tensorboard_storage->root() / run_dir.filename()).string();
  std::unique_ptr<Recorder> r(new Recorder(run_dir, std::move(s), std::move(store), id));
  r->save();
  r->tensorboard_->experiment(config, now_seconds());
  return r;
}

std::unique_ptr<Recorder> Recorder::open(const fs::path& run_dir) {
  const record::RunDir dir(run_dir);
  auto s = record::ExperimentSummary::load(run_dir);
  if (!s.store_experiment_id)
    throw Error(dir.summary().string() + ": names no experiment store; it cannot be continued");
  fs::path store_path = s.store_path.value_or("");
  if (store_path.empty() || !fs::exists(store_path)) store_path = dir.default_store();
  if (!fs::exists(store_path))
    throw Error(dir.summary().string() + ": its experiment store " + store_path.string() +
                " is missing");
  auto store = std::make_unique<ExperimentStore>(store_path);
  int64_t id = *s.store_experiment_id;
  store->experiment(id);  // a clear error when the store does not hold it
  return std::unique_ptr<Recorder>(new Recorder(run_dir, std::move(s), std::move(store), id));
}

fs::path Recorder::trial_dir(int64_t trial) const {
  return record::RunDir(run_dir_).trial(trial).path();
}

int64_t Recorder::add_trial(int64_t trial, const std::string& request_id, const json& hparams,
                            uint32_t seed) {
  if (has_trial(trial)) return store_trial_id(trial);
  int64_t sid = store_->add_trial(experiment_id_, trial, request_id, hparams, seed);
  auto& t = summary_.trial(trial);
  t.request_id = request_id;
  t.hparams = hparams;
  t.seed = seed;
  save();
  tensorboard_->trial_started(trial, hparams, now_seconds(), trial_dir(trial).string());
  return sid;
}

int64_t Recorder::store_trial_id(int64_t trial) {
  if (auto id = store_->find_trial(experiment_id_, trial)) return *id;
  const auto* t = summary_.find_trial(trial);
  if (!t)
    throw Error("experiment in " + run_dir_.string() + " has no trial " + std::to_string(trial));
  return store_->add_trial(experiment_id_, trial, t->request_id, t->hparams, t->seed);
}

void Recorder::set_trial_state(int64_t trial, record::TrialStatus state) {
  // A final state ends the trial's TensorBoard session (a STOPPED one continues with --resume).
  const bool ends = record::is_final(state) && !record::is_final(summary_.trial(trial).state);
  summary_.trial(trial).state = state;
  store_->set_trial_state(store_trial_id(trial), state);
  save();
  if (ends) tensorboard_->trial_ended(trial, state, now_seconds());
}

void Recorder::set_experiment_state(record::RunState state) {
  summary_.state = state;
  summary_.end_time =
      record::goes_on(state) ? std::nullopt : std::optional<std::string>(util::utc_now_iso8601());
  store_->set_experiment_state(experiment_id_, state);
  save();
}

void Recorder::record_report(int64_t trial, const record::MetricsReport& report) {
  auto& t = summary_.trial(trial);
  const int64_t sid = store_trial_id(trial);
  const json metrics = record::portable_metrics(report.metrics);  // NaN is "NaN", not null
  record::MetricPoint point{report.batches, metrics};
  std::optional<double> best;
  if (report.kind == record::MetricsReport::Kind::kTraining) {
    t.batches_trained = report.batches;
    t.latest_training = point;
  } else {
    t.latest_validation = point;
    auto value = metric_of(metrics, summary_.searcher_metric);
    std::optional<double> incumbent =
        t.best_validation ? metric_of(t.best_validation->metrics, summary_.searcher_metric)
                          : std::nullopt;
    if (value &&
        (!t.best_validation || config::is_better(*value, incumbent, summary_.smaller_is_better))) {
      t.best_validation = point;
      best = value;
    }
    t.batches_trained = std::max(t.batches_trained, report.batches);
  }
  store_->add_metrics(sid, report.kind_name(), report.batches, report.epochs, metrics);
  store_->set_trial_progress(sid, t.batches_trained, best);
  util::append_line(record::TrialDir(trial_dir(trial)).metrics(), report.to_json().dump());
  save();
  tensorboard_->report(trial, report);
}

void Recorder::record_checkpoint(int64_t trial, const record::CheckpointEvent& event) {
  auto& t = summary_.trial(trial);
  const int64_t sid = store_trial_id(trial);
  const auto& c = event.checkpoint;
  store_->add_checkpoint(sid, c.uuid, c.batches, c.path.string(), c.metric);
  std::vector<std::string> kept;
  for (const auto& k : event.kept) kept.push_back(k.uuid);
  store_->keep_checkpoints(sid, kept);
  t.checkpoints = event.kept;
  t.latest_checkpoint = c.uuid;
  save();
}

void Recorder::rollback(int64_t trial, int64_t batches) {
  auto& t = summary_.trial(trial);
  const int64_t sid = store_trial_id(trial);
  store_->rollback_metrics(sid, batches);
  rewrite_metrics_file(trial, batches);
  // The summary's latest and best points come back from what the store still holds.
  t.latest_training.reset();
  t.latest_validation.reset();
  t.best_validation.reset();
  std::optional<double> best;
  for (const auto& row : store_->metrics(sid)) {
    record::MetricPoint p{row.batches, row.metrics};
    if (row.kind == "training") {
      t.latest_training = p;
    } else {
      t.latest_validation = p;
      auto v = metric_of(row.metrics, summary_.searcher_metric);
      if (v && (!t.best_validation || config::is_better(*v, best, summary_.smaller_is_better))) {
        t.best_validation = p;
        best = v;
      }
    }
  }
  t.batches_trained = std::min(t.batches_trained, batches);
  store_->set_trial_progress(sid, t.batches_trained, std::nullopt);
  save();
  tensorboard_->restart(trial, batches, now_seconds());
}

void Recorder::rewrite_metrics_file(int64_t trial, int64_t batches) {
  const fs::path path = record::TrialDir(trial_dir(trial)).metrics();
  if (!fs::exists(path)) return;
  // Read whole, as a regular file (a FIFO put in its place is refused, never waited on).
  std::istringstream in(util::read_file(path, uint64_t{4} << 30, "a trial's metrics"));
  std::string line, kept;
  while (std::getline(in, line)) {
    try {
      if (json::parse(line).at("batches").get<int64_t>() > batches) continue;
    } catch (const std::exception&) {
      continue;  // a line cut short by a crash
    }
    kept += line + "\n";
  }
  util::write_file_atomic(path, kept);
}

std::optional<record::CheckpointRef> Recorder::reconcile_checkpoints(int64_t trial) {
  const int64_t sid = store_trial_id(trial);
  const fs::path dir = record::TrialDir(trial_dir(trial)).checkpoints();
  std::vector<record::CheckpointRef> usable;
  std::set<std::string> recorded;
  std::error_code ec;
  auto mark_deleted = [&](const std::string& uuid) {
    std::vector<std::string> keep;
    for (const auto& c : store_->checkpoints(sid))
      if (c.uuid != uuid) keep.push_back(c.uuid);
    store_->keep_checkpoints(sid, keep);
  };
  for (const auto& row : store_->checkpoints(sid, /*include_deleted=*/true)) {
    recorded.insert(row.uuid);
    const fs::path final_dir = row.path, staged = record::staging_dir(final_dir);
    if (row.state != "ACTIVE") {  // a deletion the trial did not finish
      fs::remove_all(final_dir, ec);
      fs::remove_all(staged, ec);
      continue;
    }
    try {
      if (!fs::exists(final_dir) && fs::exists(staged)) {
        record::read_checkpoint_metadata(staged);  // whole, or it is not committed
        record::commit_checkpoint(staged);
        util::logger()->info("trial {}: committed checkpoint {} (recorded just before the crash)",
                             trial, row.uuid);
      }
      auto meta = record::read_checkpoint_metadata(final_dir);
      usable.push_back({row.uuid, final_dir, meta.trial_state.batches_trained, row.metric});
    } catch (const Error& e) {
      util::logger()->warn("trial {}: checkpoint {} is not usable ({}); it is recorded as deleted",
                           trial, row.uuid, util::shorten(e.what(), 200));
      mark_deleted(row.uuid);
    }
  }
  if (fs::is_directory(dir)) {
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      const std::string name = entry.path().filename().string();
      if (record::is_staging_name(name) && !recorded.count(name.substr(5))) {
        // Written but never recorded: the trial repeats those batches and writes it again.
        fs::remove_all(entry.path(), ec);
        util::logger()->info("trial {}: removed an unrecorded checkpoint in progress ({})", trial,
                             name);
      } else if (!record::is_staging_name(name) && !recorded.count(name)) {
        util::logger()->warn(
            "trial {}: {} is not a recorded checkpoint of this experiment; left alone", trial,
            entry.path().string());
      }
    }
  }
  std::sort(usable.begin(), usable.end(),
            [](const auto& a, const auto& b) { return a.batches < b.batches; });
  auto& t = summary_.trial(trial);
  t.checkpoints = usable;
  t.latest_checkpoint =
      usable.empty() ? std::nullopt : std::optional<std::string>(usable.back().uuid);
  save();
  if (usable.empty()) return std::nullopt;
  return usable.back();
}

void Recorder::add_restart(int64_t trial, const std::string& message) {
  auto& t = summary_.trial(trial);
  ++t.restarts;
  t.message = message;
  store_->add_restart(store_trial_id(trial));
  save();
}

void Recorder::save() const { summary_.save(run_dir_); }

void Recorder::save_runner_snapshot(const json& snapshot) {
  store_->save_searcher_snapshot(experiment_id_, snapshot);
}

std::optional<json> Recorder::runner_snapshot() {
  return store_->searcher_snapshot(experiment_id_);
}

}  // namespace det::experiment
