#include "det/record/rank_broadcast.h"

#include <gtest/gtest.h>

#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::record {
namespace {
using nlohmann::json;

// What det 0.2 broadcast (no version), as app/ranks.cpp, app/worker.cpp and the controller
// wrote it by hand.
json v1() {
  return json::parse(
      util::read_file(std::string(DET_TEST_DATA_DIR) + "/records/v1/rank_broadcasts.json"));
}

TEST(RankBroadcast, Version1StillLoads) {
  const json f = v1();
  auto o = TrialOptionsBroadcast::from_json(f["trial_options"]);
  EXPECT_EQ(o.trial_id, 3);
  EXPECT_EQ(o.hparams, (json{{"global_batch_size", 4}, {"lr", 0.1}}));
  EXPECT_EQ(o.trial_seed, 17u);
  EXPECT_EQ(o.trial_dir, "/runs/exp/trial-3");
  ASSERT_TRUE(o.resume_from);
  EXPECT_EQ(*o.resume_from, "/runs/exp/trial-3/checkpoints/6f1c");
  auto fresh = TrialOptionsBroadcast::from_json(f["trial_options_fresh"]);
  EXPECT_EQ(fresh.trial_seed, 4294967295u);
  EXPECT_FALSE(fresh.resume_from);

  EXPECT_EQ(NextTargetBroadcast::from_json(f["next_target"]).target, 24);
  EXPECT_FALSE(NextTargetBroadcast::from_json(f["no_next_target"]).target);

  auto full = FullValidationBroadcast::from_json(f["full_validation"]);
  EXPECT_TRUE(full.full);
  EXPECT_EQ(full.metrics["validation_loss"], 0.5);
  EXPECT_TRUE(full.metrics["accuracy"].is_null());
  EXPECT_FALSE(FullValidationBroadcast::from_json(f["batch_validation"]).full);
}

TEST(RankBroadcast, WrittenWithTheirVersionAndReadBack) {
  TrialOptionsBroadcast o;
  o.trial_id = 7;
  o.hparams = {{"lr", 0.5}};
  o.trial_seed = 9;
  o.trial_dir = "/r/trial-7";
  const json j = o.to_json();
  EXPECT_EQ(j["v"], kRankBroadcastVersion);
  EXPECT_TRUE(j["resume_from"].is_null());
  auto back = TrialOptionsBroadcast::from_json(j);
  EXPECT_EQ(back.trial_id, 7);
  EXPECT_EQ(back.hparams, o.hparams);
  EXPECT_EQ(back.trial_dir, o.trial_dir);
  EXPECT_FALSE(back.resume_from);

  EXPECT_EQ(NextTargetBroadcast::from_json(NextTargetBroadcast{40}.to_json()).target, 40);
  EXPECT_FALSE(NextTargetBroadcast::from_json(NextTargetBroadcast{}.to_json()).target);
  auto v = FullValidationBroadcast::from_json(FullValidationBroadcast{true, {{"a", 1}}}.to_json());
  EXPECT_TRUE(v.full);
  EXPECT_EQ(v.metrics, (json{{"a", 1}}));
}

TEST(RankBroadcast, ANewerVersionOrAWrongFieldIsRefusedByName) {
  auto message = [](const json& j) {
    try {
      TrialOptionsBroadcast::from_json(j);
    } catch (const DistributedError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  json j = v1()["trial_options"];
  j["v"] = kRankBroadcastVersion + 1;
  EXPECT_NE(message(j).find("start every rank from the same det"), std::string::npos) << message(j);
  j = v1()["trial_options"];
  j["trial_seed"] = "17";
  EXPECT_NE(message(j).find("field 'trial_seed' must be an integer"), std::string::npos)
      << message(j);
  j.erase("trial_seed");
  EXPECT_NE(message(j).find("field 'trial_seed' is missing"), std::string::npos) << message(j);
  EXPECT_THROW(NextTargetBroadcast::from_json(json{{"target", -1}}), DistributedError);
  EXPECT_THROW(FullValidationBroadcast::from_json(json{{"full", true}, {"metrics", nullptr}}),
               DistributedError);
}

}  // namespace
}  // namespace det::record
