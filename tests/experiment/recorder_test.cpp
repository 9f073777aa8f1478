#include "det/experiment/recorder.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::experiment {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

struct TmpRoot {
  fs::path dir = fs::temp_directory_path() /
                 ("det-recorder-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  static inline int n = 0;
  TmpRoot() { fs::create_directories(dir / "run"); }
  ~TmpRoot() { fs::remove_all(dir); }
};

config::ExperimentConfig probe_config() {
  return config::parse_experiment_config(
      "name: rec\nentrypoint: probe\nhyperparameters: {x: 0.3}\n"
      "searcher: {name: single, metric: validation_loss, max_length: {batches: 300}}\n",
      "rec.yaml");
}

record::MetricsReport report(record::MetricsReport::Kind kind, int64_t batches, double value) {
  record::MetricsReport r;
  r.kind = kind;
  r.trial_id = 1;
  r.batches = batches;
  r.metrics = kind == record::MetricsReport::Kind::kTraining ? json{{"loss", value}}
                                                             : json{{"validation_loss", value}};
  return r;
}

std::vector<int64_t> metrics_file_batches(const fs::path& trial_dir) {
  std::ifstream in(trial_dir / "metrics.jsonl");
  std::vector<int64_t> out;
  for (std::string l; std::getline(in, l);) out.push_back(json::parse(l)["batches"].get<int64_t>());
  return out;
}

TEST(Recorder, OneHistoryInTheSummaryTheStoreAndMetricsJsonl) {
  TmpRoot tmp;
  const fs::path run = tmp.dir / "run";
  using K = record::MetricsReport::Kind;
  {
    auto rec = Recorder::create(run, probe_config(), 7);
    rec->add_trial(1, "req", {{"x", 0.3}}, 11);
    rec->set_trial_state(1, record::TrialStatus::kRunning);
    rec->record_report(1, report(K::kTraining, 100, 0.9));
    rec->record_report(1, report(K::kValidation, 100, 0.5));
    rec->record_checkpoint(1, {{"c1", run / "trial-1/checkpoints/c1", 100, 0.5},
                               {{"c1", run / "trial-1/checkpoints/c1", 100, 0.5}}});
    rec->record_report(1, report(K::kTraining, 200, 0.7));
    rec->record_report(1, report(K::kValidation, 200, 0.4));
    rec->record_report(1, report(K::kTraining, 250, 0.6));
    const auto& t = *rec->summary().find_trial(1);
    EXPECT_EQ(t.batches_trained, 250);
    EXPECT_EQ(t.best_validation->batches, 200);
    EXPECT_EQ(*t.latest_checkpoint, "c1");
    EXPECT_EQ(rec->store().trial(rec->store_trial_id(1)).best_metric, 0.4);
    EXPECT_EQ(rec->store().trial(rec->store_trial_id(1)).state,
              record::TrialStatus::kActive);  // RUNNING is ACTIVE in the store
    EXPECT_EQ(metrics_file_batches(rec->trial_dir(1)),
              (std::vector<int64_t>{100, 100, 200, 200, 250}));

    // The worker died; it restarts from its checkpoint at 100 and will report 200 and 250 again.
    rec->add_restart(1, "it was killed by signal 9 (Killed)");
    rec->rollback(1, 100);
    EXPECT_EQ(metrics_file_batches(rec->trial_dir(1)), (std::vector<int64_t>{100, 100}));
    EXPECT_EQ(rec->store().metrics(rec->store_trial_id(1)).size(), 2u);
    const auto& r = *rec->summary().find_trial(1);
    EXPECT_EQ(r.batches_trained, 100);
    EXPECT_EQ(r.latest_validation->batches, 100);
    EXPECT_EQ(r.best_validation->batches, 100);
    EXPECT_EQ(r.restarts, 1);
    rec->record_report(1, report(K::kTraining, 200, 0.7));
    rec->set_trial_state(1, record::TrialStatus::kCompleted);
    rec->set_experiment_state(record::RunState::kCompleted);
  }
  // Read back from disk: experiment.json, the store and metrics.jsonl agree.
  auto rec = Recorder::open(run);
  const auto& t = *rec->summary().find_trial(1);
  EXPECT_EQ(rec->summary().state, record::RunState::kCompleted);
  EXPECT_TRUE(rec->summary().end_time.has_value());
  EXPECT_EQ(t.state, record::TrialStatus::kCompleted);
  EXPECT_EQ(t.batches_trained, 200);
  auto rows = rec->store().metrics(rec->store_trial_id(1));
  std::vector<int64_t> store_batches;
  for (const auto& row : rows) store_batches.push_back(row.batches);
  EXPECT_EQ(store_batches, metrics_file_batches(rec->trial_dir(1)));
  EXPECT_EQ(rec->store().trial(rec->store_trial_id(1)).restarts, 1);
  EXPECT_EQ(rec->store().experiment(rec->experiment_id()).state, record::RunState::kCompleted);
}

TEST(Recorder, OpeningSomethingElseIsAClearError) {
  TmpRoot tmp;
  EXPECT_THROW(Recorder::open(tmp.dir / "run"), Error);  // no experiment.json
  util::write_file_atomic(tmp.dir / "run" / "experiment.json",
                          R"({"format_version": 2, "state": "ACTIVE", "searcher": {}})");
  try {
    Recorder::open(tmp.dir / "run");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("names no experiment store"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace det::experiment
