#include "app/queries.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "det/util/error.h"

namespace det::app {
namespace {
namespace fs = std::filesystem;

TEST(Queries, DescribeAndMetricsTables) {
  fs::path dir = fs::temp_directory_path() / ("det-queries-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    experiment::ExperimentStore store(dir / "det.db");
    config::ExperimentConfig config;
    config.searcher.name = "random";
    config.searcher.metric = "validation_loss";
    int64_t e = store.add_experiment("mnist", "a test", config, "/runs/mnist-1");
    int64_t t1 = store.add_trial(e, 1, "req-1", {{"lr", 0.1}}, 17);
    store.add_metrics(t1, "training", 100, 0.1, {{"loss", 0.5}});
    store.add_metrics(t1, "validation", 100, 0.1, {{"validation_loss", 0.4}, {"accuracy", 0.9}});
    store.add_metrics(t1, "training", 200, 0.2, {{"loss", 0.3}});
    store.set_trial_progress(t1, 200, 0.4);
    store.add_checkpoint(t1, "u1", 100, "/runs/mnist-1/trial-1/checkpoints/u1", 0.4);
    store.add_checkpoint(t1, "u2", 200, "/runs/mnist-1/trial-1/checkpoints/u2", std::nullopt);
    store.keep_checkpoints(t1, {"u2"});
    store.add_job(t1, 1, "slurm", "4711");
    store.job_ended(t1, 1, "gpu07", "COMPLETED");
    store.set_trial_state(t1, record::TrialStatus::kCompleted);

    std::string listed = format_experiments(store.experiments());
    EXPECT_NE(listed.find("mnist"), std::string::npos) << listed;
    std::string described = format_experiment(store, e);
    EXPECT_NE(described.find("trial 1 (id 1): COMPLETED, 200 batches, best validation_loss 0.4"),
              std::string::npos)
        << described;
    EXPECT_NE(described.find("checkpoint u2 at batch 200"), std::string::npos) << described;
    EXPECT_NE(described.find("launch 1: Slurm job 4711 on gpu07, COMPLETED"), std::string::npos)
        << described;
    EXPECT_EQ(described.find("checkpoint u1"), std::string::npos)
        << "a deleted checkpoint is not listed: " << described;
    std::string csv = format_metrics(store.metrics(t1), "csv");
    EXPECT_NE(csv.find("kind,batches,epochs,loss,accuracy,validation_loss"), std::string::npos)
        << csv;
    EXPECT_NE(csv.find("validation,100,0.100,,0.9,0.4"), std::string::npos) << csv;
    EXPECT_EQ(nlohmann::json::parse(format_metrics(store.metrics(t1), "json")).size(), 3u);
    EXPECT_THROW(format_metrics({}, "xml"), UsageError);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace det::app
