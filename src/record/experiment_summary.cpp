#include "det/record/experiment_summary.h"

#include "det/util/error.h"
#include "det/util/fs.h"
#include "fields.h"

namespace det::record {
namespace {

using json = nlohmann::json;
using F = detail::Fields<Error>;
constexpr int64_t kMax = CheckpointMetadata::kMaxBatches;

json point_json(const std::optional<MetricPoint>& p) {
  return p ? json{{"batches", p->batches}, {"metrics", p->metrics}} : json(nullptr);
}

std::optional<MetricPoint> point_from(const F& f, const std::string& key) {
  if (!f.has(key)) return std::nullopt;
  auto p = f.child(key);
  MetricPoint m{p.get_int("batches", 0, kMax), p.get<json>("metrics")};
  if (!m.metrics.is_object()) p.fail("metrics", "an object of metrics");
  return m;
}

TrialSummary trial_from(const F& f, const std::string& where) {
  TrialSummary t;
  t.id = f.get_int("id", 0, kMax);
  t.request_id = f.value<std::string>("request_id", "");
  t.hparams = f.value<json>("hparams", json::object());
  t.seed = static_cast<uint32_t>(f.has("seed") ? f.get_int("seed", 0, 0xffffffffLL) : 0);
  const auto state = parse_trial_status(f.get<std::string>("state"));
  if (!state) f.fail("state", "one of " + trial_status_names());
  t.state = *state;
  t.restarts = static_cast<int>(f.has("restarts") ? f.get_int("restarts", 0, 1 << 30) : 0);
  t.launches = static_cast<int>(f.has("launches") ? f.get_int("launches", 0, 1 << 30) : 0);
  t.target = f.optional_int("target", 0, kMax);
  t.batches_trained = f.has("batches_trained") ? f.get_int("batches_trained", 0, kMax) : 0;
  t.latest_training = point_from(f, "latest_training");
  t.latest_validation = point_from(f, "latest_validation");
  t.best_validation = point_from(f, "best_validation");
  // Version 1's local runs wrote their last validation as a bare object of metrics.
  if (!t.latest_validation && f.has("final_validation"))
    t.latest_validation = MetricPoint{t.batches_trained, f.get<json>("final_validation")};
  for (const auto& c : f.array("checkpoints"))
    t.checkpoints.push_back(CheckpointRef::from_json(c, where + ": checkpoints"));
  t.latest_checkpoint = f.optional<std::string>("latest_checkpoint");
  t.message = f.value<std::string>("message", "");
  t.early_exit = f.value<bool>("early_exit", false);
  return t;
}

}  // namespace

TrialSummary& ExperimentSummary::trial(int64_t id) {
  for (auto& t : trials)
    if (t.id == id) return t;
  trials.push_back(TrialSummary{});
  trials.back().id = id;
  return trials.back();
}

const TrialSummary* ExperimentSummary::find_trial(int64_t id) const {
  for (const auto& t : trials)
    if (t.id == id) return &t;
  return nullptr;
}

json ExperimentSummary::to_json() const {
  json ts = json::array();
  for (const auto& t : trials) {
    json c = json::array();
    for (const auto& r : t.checkpoints) c.push_back(r.to_json());
    ts.push_back(
        {{"id", t.id},
         {"request_id", t.request_id},
         {"hparams", t.hparams},
         {"seed", t.seed},
         {"state", to_string(t.state)},
         {"restarts", t.restarts},
         {"launches", t.launches},
         {"target", t.target ? json(*t.target) : json(nullptr)},
         {"batches_trained", t.batches_trained},
         {"latest_training", point_json(t.latest_training)},
         {"latest_validation", point_json(t.latest_validation)},
         {"best_validation", point_json(t.best_validation)},
         {"checkpoints", c},
         {"latest_checkpoint", t.latest_checkpoint ? json(*t.latest_checkpoint) : json(nullptr)},
         {"message", t.message},
         {"early_exit", t.early_exit}});
  }
  json j = {{"format_version", format_version},
            {"name", name},
            {"description", description},
            {"labels", labels},
            {"config_file", config_file},
            {"source_config", source_config},
            {"entrypoint", entrypoint},
            {"experiment_seed", experiment_seed},
            {"searcher",
             {{"name", searcher_name},
              {"metric", searcher_metric},
              {"smaller_is_better", smaller_is_better}}},
            {"state", to_string(state)},
            {"start_time", start_time},
            {"end_time", end_time ? json(*end_time) : json(nullptr)},
            {"best_trial", best_trial ? json(*best_trial) : json(nullptr)},
            {"searcher_progress", searcher_progress ? json(*searcher_progress) : json(nullptr)},
            {"trials", ts}};
  if (store_path || store_experiment_id)
    j["store"] = {{"path", store_path.value_or("")},
                  {"experiment_id", store_experiment_id.value_or(0)}};
  if (tensorboard_dir) j["tensorboard_dir"] = *tensorboard_dir;
  return j;
}

ExperimentSummary ExperimentSummary::from_json(const json& j, const std::string& where) {
  F f(j, where);
  ExperimentSummary s;
  s.format_version = static_cast<int>(f.get_int("format_version", 1, kFormatVersion));
  s.name = f.value<std::string>("name", "");
  s.description = f.value<std::string>("description", "");
  for (const auto& l : f.array("labels")) {
    if (!l.is_string()) f.fail("labels", "a list of strings");
    s.labels.push_back(l.get<std::string>());
  }
  s.config_file = f.value<std::string>("config_file", RunDir::kConfigFile);
  s.source_config = f.value<std::string>("source_config", "");
  s.entrypoint = f.value<std::string>("entrypoint", "");
  s.experiment_seed = static_cast<uint32_t>(
      f.has("experiment_seed") ? f.get_int("experiment_seed", 0, 0xffffffffLL) : 0);
  auto searcher = f.child("searcher");
  s.searcher_name = searcher.value<std::string>("name", "");
  s.searcher_metric = searcher.value<std::string>("metric", "");
  s.smaller_is_better = searcher.value<bool>("smaller_is_better", true);
  const auto state = parse_run_state(f.get<std::string>("state"));
  if (!state) f.fail("state", "one of " + run_state_names());
  s.state = *state;
  s.start_time = f.value<std::string>("start_time", "");
  s.end_time = f.optional<std::string>("end_time");
  if (f.has("store")) {
    auto st = f.child("store");
    s.store_path = st.optional<std::string>("path");
    s.store_experiment_id = st.optional_int("experiment_id", 0, kMax);
  }
  s.tensorboard_dir = f.optional<std::string>("tensorboard_dir");
  s.best_trial = f.optional_int("best_trial", 0, kMax);
  s.searcher_progress = f.optional<double>("searcher_progress");
  const json& trials = f.array("trials");
  for (size_t i = 0; i < trials.size(); ++i)
    s.trials.push_back(trial_from(F(trials[i], where, "trials[" + std::to_string(i) + "]"), where));
  return s;
}

ExperimentSummary ExperimentSummary::load(const std::filesystem::path& run_dir) {
  const auto path = RunDir(run_dir).summary();
  json j;
  try {
    j = json::parse(util::read_file(path));
  } catch (const json::exception& e) {
    throw Error(path.string() + ": not valid JSON (" + util::shorten(e.what(), 100) + ")");
  }
  return from_json(j, path.string());
}

void ExperimentSummary::save(const std::filesystem::path& run_dir) const {
  util::write_file_atomic(RunDir(run_dir).summary(), to_json().dump(2) + "\n");
}

}  // namespace det::record
