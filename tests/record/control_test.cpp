// The command and answer files of det-run pause|activate|cancel|kill|kill-trial|set max-slots.

#include "det/record/control.h"

#include <gtest/gtest.h>

#include "det/util/error.h"
#include "support/test_support.h"

namespace det::record {
namespace {

using json = nlohmann::json;
using Kind = ControlCommand::Kind;

TEST(ControlCommand, RoundTripsEveryCommand) {
  for (Kind k : {Kind::kPause, Kind::kActivate, Kind::kCancel, Kind::kKill, Kind::kKillTrial,
                 Kind::kSetMaxSlots}) {
    ControlCommand c;
    c.kind = k;
    if (k == Kind::kKillTrial) c.trial = 7;
    if (k == Kind::kSetMaxSlots) c.slots = 4;
    const ControlCommand back = ControlCommand::from_json(c.to_json(), "cmd.json");
    EXPECT_EQ(back.kind, k) << to_string(k);
    EXPECT_EQ(back.trial, c.trial);
    EXPECT_EQ(back.slots, c.slots);
  }
  const ControlCommand kill{Kind::kKillTrial, 7, 0};
  EXPECT_EQ(kill.to_json(), json::parse(R"({"v":1,"command":"kill_trial","trial":7})"));
}

TEST(ControlCommand, RefusesWhatItCannotCarryOutNamingTheField) {
  auto error = [](const char* text) {
    return test::error_of<Error>([&] { ControlCommand::from_json(json::parse(text), "c.json"); });
  };
  EXPECT_CONTAINS(error(R"({"v":1,"command":"reboot"})"), "command 'reboot' is not one of pause");
  EXPECT_CONTAINS(error(R"({"v":2,"command":"pause"})"), "version 2");
  EXPECT_CONTAINS(error(R"({"v":1,"command":"kill_trial"})"), "'trial' is missing");
  EXPECT_CONTAINS(error(R"({"v":1,"command":"set_max_slots","slots":0})"), "slots");
  EXPECT_CONTAINS(error(R"([1,2])"), "c.json");
}

TEST(ControlAnswer, RoundTrips) {
  const ControlAnswer a{true, "pausing: 2 running trial(s) checkpoint and stop"};
  const ControlAnswer b = ControlAnswer::from_json(a.to_json(), "a.answer");
  EXPECT_EQ(b.ok, a.ok);
  EXPECT_EQ(b.message, a.message);
  EXPECT_CONTAINS(test::error_of<Error>([] {
                    ControlAnswer::from_json(json::parse(R"({"v":1,"ok":"yes","message":""})"),
                                             "a.answer");
                  }),
                  "ok");
}

}  // namespace
}  // namespace det::record
