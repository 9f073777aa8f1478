#include "det/experiment/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "det/util/error.h"

namespace det::experiment {
namespace {
namespace fs = std::filesystem;

struct TmpDb {
  fs::path dir = fs::temp_directory_path() /
                 ("det-store-" + std::to_string(::getpid()) + "-" + std::to_string(n++));
  static inline int n = 0;
  TmpDb() { fs::create_directories(dir); }
  ~TmpDb() { fs::remove_all(dir); }
};

TEST(ExperimentStore, RecordsAndReadsBackAnExperiment) {
  TmpDb tmp;
  fs::path db = tmp.dir / "det.db";
  int64_t e, t1, t2;
  {
    ExperimentStore store(db);
    config::ExperimentConfig config;
    config.searcher.name = "random";
    config.searcher.metric = "validation_loss";
    e = store.add_experiment("mnist", "a test", config, "/runs/mnist-1");
    t1 = store.add_trial(e, 1, "req-1", {{"lr", 0.1}}, 17);
    t2 = store.add_trial(e, 2, "req-2", {{"lr", 0.5}}, 18);
    store.add_metrics(t1, "training", 100, 0.1, {{"loss", 0.5}});
    store.add_metrics(t1, "validation", 100, 0.1, {{"validation_loss", 0.4}, {"accuracy", 0.9}});
    store.add_metrics(t1, "training", 200, 0.2, {{"loss", 0.3}});
    store.set_trial_progress(t1, 200, 0.4);
    store.add_checkpoint(t1, "u1", 100, "/runs/mnist-1/trial-1/checkpoints/u1", 0.4);
    store.add_checkpoint(t1, "u2", 200, "/runs/mnist-1/trial-1/checkpoints/u2", std::nullopt);
    store.keep_checkpoints(t1, {"u2"});
    store.add_restart(t2);
    store.set_trial_state(t2, record::TrialStatus::kError);
    store.set_trial_state(t1, record::TrialStatus::kCompleted);
    store.save_searcher_snapshot(e, {{"created", 2}});
    store.set_experiment_state(e, record::RunState::kCompleted);
  }
  // A second connection (a reader, as det-run experiments is) sees everything.
  ExperimentStore store(db);
  auto exps = store.experiments();
  ASSERT_EQ(exps.size(), 1u);
  EXPECT_EQ(exps[0].name, "mnist");
  EXPECT_EQ(exps[0].state, record::RunState::kCompleted);
  EXPECT_EQ(exps[0].searcher, "random");
  EXPECT_FALSE(exps[0].end_time.empty());
  auto trials = store.trials(e);
  ASSERT_EQ(trials.size(), 2u);
  EXPECT_EQ(trials[0].hparams["lr"], 0.1);
  EXPECT_EQ(trials[0].batches_trained, 200);
  EXPECT_EQ(*trials[0].best_metric, 0.4);
  EXPECT_EQ(trials[1].state, record::TrialStatus::kError);
  EXPECT_EQ(trials[1].restarts, 1);
  EXPECT_EQ(store.metrics(t1).size(), 3u);
  auto val = store.metrics(t1, "validation");
  ASSERT_EQ(val.size(), 1u);
  EXPECT_EQ(val[0].metrics["accuracy"], 0.9);
  auto ckpts = store.checkpoints(t1);
  ASSERT_EQ(ckpts.size(), 1u);
  EXPECT_EQ(ckpts[0].uuid, "u2");
  EXPECT_EQ(store.checkpoints(t1, true).size(), 2u);
  EXPECT_EQ((*store.searcher_snapshot(e))["created"], 2);
  EXPECT_EQ(*store.find_trial(e, 2), t2);
  EXPECT_FALSE(store.find_trial(e, 3).has_value());

  EXPECT_THROW(store.experiment(99), Error);
}

TEST(ExperimentStore, NotADatabaseIsAClearError) {
  TmpDb tmp;
  fs::path bad = tmp.dir / "det.db";
  std::ofstream(bad) << "this is not sqlite, just some text that is long enough to have a header "
                        "page.................";
  try {
    ExperimentStore store(bad);
    store.experiments();
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
  }
}

TEST(ExperimentStore, RecordsEachLaunchsJobAndNode) {
  TmpDb tmp;
  ExperimentStore store(tmp.dir / "det.db");
  const int64_t e = store.add_experiment("mnist", "", config::ExperimentConfig{}, "/runs/x");
  const int64_t t = store.add_trial(e, 1, "req-1", {{"lr", 0.1}}, 17);
  store.add_job(t, 1, "slurm", "41");
  store.job_running(t, 1, "");  // the node not known yet keeps ''
  store.job_running(t, 1, "node0");
  store.job_ended(t, 1, "", "CANCELLED");  // how it ended; the node stays
  store.add_job(t, 2, "slurm", "42");
  auto jobs = store.jobs(t);
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].launch, 1);
  EXPECT_EQ(jobs[0].job_id, "41");
  EXPECT_EQ(jobs[0].node, "node0");
  EXPECT_EQ(jobs[0].state, "CANCELLED");
  EXPECT_FALSE(jobs[0].end_time.empty());
  EXPECT_EQ(jobs[1].job_id, "42");
  EXPECT_EQ(jobs[1].state, "SUBMITTED");
  EXPECT_TRUE(jobs[1].end_time.empty());
  EXPECT_EQ(jobs[1].scheduler, "slurm");
}

}  // namespace
}  // namespace det::experiment
