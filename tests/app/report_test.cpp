#include "app/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include "det/config/experiment_config.h"
#include "det/util/error.h"

namespace det::app {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

// The experiment page's data is the store's, column by column; the ASHA rungs are in batches.
TEST(Report, TheViewHoldsTheStoresNumbersAndTheRungs) {
  fs::path dir = fs::temp_directory_path() / ("det-report-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    experiment::ExperimentStore store(dir / "det.db");
    auto config = config::parse_experiment_config(
        "name: asha\nentrypoint: probe\nhyperparameters:\n  global_batch_size: 8\n  x:\n"
        "    type: double\n    minval: 0\n    maxval: 1\n  opt:\n    lr: 0.1\n"
        "searcher:\n  name: async_halving\n  metric: validation_loss\n  num_rungs: 3\n"
        "  divisor: 2\n  max_trials: 4\n  max_length:\n    records: 256\n",
        "asha.yaml");
    int64_t e = store.add_experiment("asha </script> <b>", "", config, "/nowhere");
    int64_t t1 = store.add_trial(e, 1, "r1", {{"x", 0.25}, {"opt", {{"lr", 0.1}}}}, 1);
    int64_t t2 = store.add_trial(e, 2, "r2", {{"x", 0.75}, {"opt", {{"lr", 0.1}}}}, 2);
    store.add_metrics(t1, "training", 4, 0.5, {{"loss", 0.5}});
    store.add_metrics(t1, "validation", 8, 1, {{"validation_loss", 0.25}});
    store.add_metrics(t1, "training", 8, 1, {{"loss", 0.4}, {"grad_norm", "NaN"}});
    store.add_metrics(t1, "validation", 16, 2, {{"validation_loss", 0.2}});
    store.set_trial_progress(t1, 16, 0.2);
    store.add_checkpoint(t1, "u1", 16, "/nowhere/u1", 0.2);
    store.set_trial_state(t2, record::TrialStatus::kInvalidHP);

    const json v = experiment_view(store, e);
    EXPECT_EQ(v["experiment"]["searcher"], "async_halving");
    // 256 records of batch 8 = 32 batches; rungs at 32/4, 32/2, 32.
    EXPECT_EQ(v["experiment"]["rungs_batches"], json({8, 16, 32}));
    EXPECT_EQ(v["hparam_names"], json({"opt.lr", "x"}));
    ASSERT_EQ(v["trials"].size(), 2u);
    const json& a = v["trials"][0];
    EXPECT_EQ(a["hparams"]["x"], 0.25);
    EXPECT_EQ(a["batches"], 16);
    EXPECT_EQ(a["best_metric"], 0.2);
    EXPECT_EQ(a["latest_metric"], 0.2);
    EXPECT_EQ(a["training"]["batches"], json({4, 8}));
    EXPECT_EQ(a["training"]["metrics"]["loss"], json({0.5, 0.4}));
    // A metric first reported later is null before; non-finite values stay the store's strings.
    EXPECT_EQ(a["training"]["metrics"]["grad_norm"], json({nullptr, "NaN"}));
    EXPECT_EQ(a["validation"]["metrics"]["validation_loss"], json({0.25, 0.2}));
    EXPECT_EQ(a["checkpoints"][0]["uuid"], "u1");
    EXPECT_EQ(v["trials"][1]["state"], "INVALID_HP");
    EXPECT_TRUE(v["trials"][1]["best_metric"].is_null());
    EXPECT_EQ(v["best_trial"], 1);

    // The page: self-contained, and a name cannot end the data's <script> early.
    const std::string page = experiment_page(&v, "/*plotly*/");
    EXPECT_NE(page.find("<script>/*plotly*/</script>"), std::string::npos);
    EXPECT_EQ(page.find("asha </script>"), std::string::npos);
    EXPECT_NE(page.find("asha \\u003c/script>"), std::string::npos);
    EXPECT_NE(page.find("<title>det: asha &lt;/script&gt; &lt;b&gt;</title>"), std::string::npos);
    EXPECT_EQ(page.find("@DATA@"), std::string::npos);
    // The live page loads the library and polls.
    const std::string live = experiment_page(nullptr, "", "/api/experiments/1");
    EXPECT_NE(live.find("<script src=\"/static/plotly.js\"></script>"), std::string::npos);
    EXPECT_NE(live.find("\"url\":\"/api/experiments/1\""), std::string::npos);
    EXPECT_THROW(experiment_view(store, 99), Error);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace det::app
