#include "det/record/rank_failure.h"

#include <gtest/gtest.h>

#include "det/util/error.h"
#include "det/util/fs.h"
#include "support/test_support.h"

using det::record::RankFailure;
using json = nlohmann::json;

TEST(RankFailureRecord, ReadsTheFormatWrittenBeforeItsVersion) {
  RankFailure r = RankFailure::from_json(det::test::testdata_json("records/v0/rank_failure.json"),
                                         "rank0.json");
  EXPECT_EQ(r.message, "DistributedError: rank 1 lost its peers");
  EXPECT_TRUE(r.peer_failure);
  EXPECT_EQ(r.unix_ns, 1765110000123456789);
}

TEST(RankFailureRecord, RoundTripsWithItsVersion) {
  RankFailure r{"ValueError: bad batch", false, 42};
  json j = r.to_json();
  EXPECT_EQ(j.at("v"), RankFailure::kVersion);
  RankFailure back = RankFailure::from_json(j, "x");
  EXPECT_EQ(back.message, r.message);
  EXPECT_EQ(back.peer_failure, r.peer_failure);
  EXPECT_EQ(back.unix_ns, r.unix_ns);
}

TEST(RankFailureRecord, RefusesWhatItCannotRead) {
  auto message_of = [](const json& j) {
    try {
      RankFailure::from_json(j, "rank3.json");
    } catch (const det::Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message_of({{"message", "m"}, {"unix_ns", 1}}).find("'peer_failure' is missing"),
            std::string::npos);
  EXPECT_NE(message_of({{"message", "m"}, {"peer_failure", "yes"}, {"unix_ns", 1}})
                .find("rank3.json: field 'peer_failure'"),
            std::string::npos);
  EXPECT_NE(message_of({{"v", 9}, {"message", "m"}, {"peer_failure", false}, {"unix_ns", 1}})
                .find("version 9 is newer"),
            std::string::npos);
  EXPECT_NE(
      message_of({{"message", "m"}, {"peer_failure", false}, {"unix_ns", -5}}).find("unix_ns"),
      std::string::npos);
}
