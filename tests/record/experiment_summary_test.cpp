#include "det/record/experiment_summary.h"

#include <gtest/gtest.h>

#include "det/util/error.h"
#include "det/util/fs.h"
#include "support/test_support.h"

namespace det::record {
namespace {
using json = nlohmann::json;

TEST(ExperimentSummary, ReadsTheVersion1FormatOfARunnerExperiment) {
  auto s = ExperimentSummary::from_json(test::testdata_json("records/v1/experiment.json"),
                                        "v1/experiment.json");
  EXPECT_EQ(s.format_version, 1);
  EXPECT_EQ(s.name, "probe");
  EXPECT_EQ(s.searcher_name, "random");
  EXPECT_EQ(s.state, record::RunState::kCompleted);
  EXPECT_EQ(*s.store_experiment_id, 4);
  EXPECT_EQ(*s.best_trial, 1);
  ASSERT_EQ(s.trials.size(), 2u);
  const auto& t1 = s.trials[0];
  EXPECT_EQ(t1.launches, 2);
  EXPECT_EQ(*t1.target, 32);
  EXPECT_EQ(t1.best_validation->batches, 16);
  ASSERT_EQ(t1.checkpoints.size(), 1u);
  EXPECT_EQ(t1.checkpoints[0].uuid, "c2");
  EXPECT_EQ(*t1.latest_checkpoint, "c2");
  const auto& t2 = s.trials[1];
  EXPECT_EQ(t2.state, record::TrialStatus::kInvalidHP);
  EXPECT_FALSE(t2.target.has_value());
  EXPECT_EQ(t2.batches_trained, 0);
  EXPECT_NE(t2.message.find("above 0.9"), std::string::npos);
}

TEST(ExperimentSummary, ReadsTheVersion1FormatOfALocalRun) {
  auto s = ExperimentSummary::from_json(test::testdata_json("records/v1/experiment_local.json"),
                                        "v1/experiment_local.json");
  ASSERT_EQ(s.trials.size(), 1u);
  // Version 1's `final_validation` becomes the latest validation.
  ASSERT_TRUE(s.trials[0].latest_validation.has_value());
  EXPECT_DOUBLE_EQ(s.trials[0].latest_validation->metrics["validation_loss"].get<double>(), 2.29);
  EXPECT_EQ(s.trials[0].latest_validation->batches, 1);
}

TEST(ExperimentSummary, RoundTripsAndRejectsBadFields) {
  auto s = ExperimentSummary::from_json(test::testdata_json("records/v1/experiment.json"), "v1");
  s.format_version = ExperimentSummary::kFormatVersion;
  auto back = ExperimentSummary::from_json(s.to_json(), "again");
  EXPECT_EQ(back.to_json(), s.to_json());
  auto bad = s.to_json();
  bad["trials"][0]["batches_trained"] = "many";
  try {
    ExperimentSummary::from_json(bad, "run/experiment.json");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(
                  "run/experiment.json: field 'trials[0].batches_trained' must be an integer"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(&s.trial(1), &s.trials[0]);
  s.trial(9).state = record::TrialStatus::kPaused;
  EXPECT_EQ(s.find_trial(9)->state, record::TrialStatus::kPaused);
  EXPECT_EQ(s.find_trial(10), nullptr);
}

}  // namespace
}  // namespace det::record
