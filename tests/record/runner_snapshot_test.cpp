// The runner snapshot as a typed record: snapshots written by det before it was typed (fixtures
// taken from det.db files of real runs) load, and are written back byte for byte as JSON.

#include "det/record/runner_snapshot.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "det/util/error.h"
#include "support/test_support.h"

namespace det::record {
namespace {

using json = nlohmann::json;

TEST(RunnerSnapshot, LoadsARunningTrialOfTodaysFormat) {
  const json j = test::testdata_json("records/v1/runner_snapshot_running.json");
  const auto s = RunnerSnapshot::from_json(j, "fixture");
  EXPECT_EQ(s.format_version, 1);
  EXPECT_EQ(s.experiment_seed, j["experiment_seed"].get<uint32_t>());
  EXPECT_EQ(s.scheduler, "local");
  EXPECT_EQ(s.slots, 1);
  EXPECT_EQ(s.searcher, j["searcher"]);
  ASSERT_EQ(s.trials.size(), 1u);
  const TrialSnapshot& t = s.trials[0];
  EXPECT_EQ(t.state, TrialStatus::kRunning);
  EXPECT_EQ(t.target, 160);
  EXPECT_EQ(t.job, "18062");
  EXPECT_TRUE(t.job_started);
  ASSERT_TRUE(t.owed);
  EXPECT_EQ(t.owed->kind, OwedAnswer::Kind::kRecorded);
  EXPECT_EQ(t.owed->re, 5);
  EXPECT_EQ(t.owed->uuid, "6e7d23ee-262a-4ab8-918f-a4cae16b0db1");
  EXPECT_EQ(s.to_json(), j) << "the format written is the one read";
}

TEST(RunnerSnapshot, LoadsAFinishedSearchOfTodaysFormat) {
  const json j = test::testdata_json("records/v1/runner_snapshot_search.json");
  const auto s = RunnerSnapshot::from_json(j, "fixture");
  ASSERT_EQ(s.trials.size(), 11u);
  EXPECT_EQ(s.next_trial, 12);
  int invalid = 0;
  for (const auto& t : s.trials) {
    EXPECT_TRUE(is_final(t.state)) << t.id;
    EXPECT_FALSE(t.target) << t.id;
    EXPECT_FALSE(t.owed) << t.id;
    invalid += t.state == TrialStatus::kInvalidHP;
  }
  EXPECT_EQ(invalid, 3);
  EXPECT_EQ(s.to_json(), j);
}

TEST(RunnerSnapshot, LoadsAnEarlyVersionOneWithoutTheLaunchFields) {
  const json j = json::parse(R"({
    "experiment_seed": 3, "searcher": {"any": "state"}, "next_trial": 3,
    "trials": [
      {"id": 1, "store_id": 1, "request_id": "a", "state": "QUEUED", "target": 100,
       "close_requested": false, "restarts": 1, "latest_checkpoint": "/ck", "batches": 40},
      {"id": 2, "store_id": 2, "request_id": "b", "state": "PAUSED", "target": null,
       "close_requested": true, "restarts": 0, "latest_checkpoint": "", "batches": 0}]})");
  const auto s = RunnerSnapshot::from_json(j, "old");
  EXPECT_EQ(s.format_version, 1);
  EXPECT_EQ(s.scheduler, "local");
  EXPECT_EQ(s.slots, 0);
  EXPECT_TRUE(s.ready.empty());
  ASSERT_EQ(s.trials.size(), 2u);
  EXPECT_EQ(s.trials[0].state, TrialStatus::kQueued);
  EXPECT_EQ(s.trials[0].target, 100);
  EXPECT_EQ(s.trials[0].launches, 0);
  EXPECT_EQ(s.trials[0].checkpoint_batches, 0);
  EXPECT_EQ(s.trials[0].job, "");
  EXPECT_EQ(s.trials[0].events_offset, 0u);
  EXPECT_FALSE(s.trials[0].owed);
  EXPECT_TRUE(s.trials[1].close_requested);
}

TEST(RunnerSnapshot, OwedDecisionRoundTrips) {
  OwedAnswer a{OwedAnswer::Kind::kDecision, 7, ""};
  EXPECT_EQ(a.to_json(), json::parse(R"({"re": 7, "decision": true})"));
  EXPECT_EQ(OwedAnswer::from_json(a.to_json(), "x"), a);
  OwedAnswer r{OwedAnswer::Kind::kRecorded, 2, "u-1"};
  EXPECT_EQ(r.to_json(), json::parse(R"({"re": 2, "recorded": "u-1"})"));
  EXPECT_EQ(OwedAnswer::from_json(r.to_json(), "x"), r);
}

std::string snapshot_error(const json& j) {
  try {
    RunnerSnapshot::from_json(j, "det.db: experiment 4");
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

TEST(RunnerSnapshot, RefusesWhatItCannotReadNamingTheField) {
  json j = test::testdata_json("records/v1/runner_snapshot_running.json");
  j["trials"][0]["state"] = "DONE";
  EXPECT_NE(snapshot_error(j).find("det.db: experiment 4: trials[0]: field 'state' must be one of"),
            std::string::npos)
      << snapshot_error(j);
  j = test::testdata_json("records/v1/runner_snapshot_running.json");
  j["trials"][0]["owed"] = json::parse(R"({"re": 1})");
  EXPECT_NE(snapshot_error(j).find("field 'owed'"), std::string::npos) << snapshot_error(j);
  j = test::testdata_json("records/v1/runner_snapshot_running.json");
  j["format_version"] = 2;
  EXPECT_NE(snapshot_error(j).find("version 2 is not one this det reads"), std::string::npos)
      << snapshot_error(j);
  j = test::testdata_json("records/v1/runner_snapshot_running.json");
  j.erase("next_trial");
  EXPECT_NE(snapshot_error(j).find("field 'next_trial' is missing"), std::string::npos)
      << snapshot_error(j);
}

}  // namespace
}  // namespace det::record
