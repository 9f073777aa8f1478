#include "det/record/worker_protocol.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "det/util/error.h"

namespace det::record {
namespace {

std::vector<std::string> v1_lines() {
  std::ifstream in(std::string(DET_TEST_DATA_DIR) + "/records/v1/worker_events.jsonl");
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

TEST(WorkerProtocol, ReadsVersion1Lines) {
  auto lines = v1_lines();
  ASSERT_EQ(lines.size(), 5u);
  auto training = std::get<MetricsReport>(decode_event(lines[0]));
  EXPECT_EQ(training.kind, MetricsReport::Kind::kTraining);
  EXPECT_EQ(training.batches, 100);
  EXPECT_EQ(training.trial_id, 3);
  EXPECT_DOUBLE_EQ(training.metrics["loss"].get<double>(), 0.312);
  EXPECT_DOUBLE_EQ(training.throughput["samples_per_second"].get<double>(), 2636.8);
  auto validation = std::get<MetricsReport>(decode_event(lines[1]));
  EXPECT_EQ(validation.kind, MetricsReport::Kind::kValidation);
  EXPECT_DOUBLE_EQ(validation.seconds, 0.12);
  auto ckpt = std::get<CheckpointEvent>(decode_event(lines[2]));
  EXPECT_EQ(ckpt.checkpoint.uuid, "a1");
  EXPECT_EQ(ckpt.checkpoint.path, "/runs/probe-1/trial-3/checkpoints/a1");
  EXPECT_DOUBLE_EQ(*ckpt.checkpoint.metric, 0.25);
  ASSERT_EQ(ckpt.kept.size(), 1u);
  auto target = std::get<TargetReached>(decode_event(lines[3]));
  EXPECT_EQ(target.length, 100);
  auto exit = std::get<WorkerExit>(decode_event(lines[4]));
  EXPECT_EQ(exit.reason, WorkerExit::Reason::kCompleted);
}

TEST(WorkerProtocol, EveryEventAndAnswerRoundTrips) {
  MetricsReport r;
  r.kind = MetricsReport::Kind::kValidation;
  r.trial_id = 2;
  r.batches = 40;
  r.epochs = 1.25;
  r.metrics = {{"validation_loss", 0.5}};
  r.seconds = 3;
  r.time = "t";
  std::vector<WorkerEvent> events = {
      r, CheckpointEvent{{"u", "/p/u", 40, 0.5}, {{"u", "/p/u", 40, 0.5}}}, TargetReached{40, 0.5},
      WorkerExit{WorkerExit::Reason::kInvalidHP, "x too big"}};
  for (const auto& e : events) {
    std::string line = encode(e);
    ASSERT_EQ(line.back(), '\n');
    ASSERT_EQ(line.find('\n'), line.size() - 1) << "one line per event";
    EXPECT_EQ(nlohmann::json::parse(line)["v"], kProtocolVersion);
    EXPECT_EQ(encode(decode_event(line.substr(0, line.size() - 1))), line);
  }
  for (const auto& a : {RunnerAnswer{RunnerAnswer::Kind::kTarget, 80, ""},
                        RunnerAnswer{RunnerAnswer::Kind::kExit, 0, ""},
                        RunnerAnswer{RunnerAnswer::Kind::kRecorded, 0, "u"}}) {
    std::string line = encode(a);
    auto back = decode_answer(line.substr(0, line.size() - 1));
    EXPECT_EQ(back.kind, a.kind);
    EXPECT_EQ(back.target, a.target);
    EXPECT_EQ(back.uuid, a.uuid);
  }
  // A NaN metric crosses the pipe as "NaN", not as null (which JSON would make of it).
  std::string nan_line = encode(TargetReached{8, std::nan("")});
  EXPECT_NE(nan_line.find("\"NaN\""), std::string::npos) << nan_line;
  EXPECT_TRUE(std::isnan(
      std::get<TargetReached>(decode_event(nan_line.substr(0, nan_line.size() - 1))).metric));
  EXPECT_EQ(
      portable_metrics(nlohmann::json{{"a", -std::numeric_limits<double>::infinity()}, {"b", 1.5}}),
      (nlohmann::json{{"a", "-Infinity"}, {"b", 1.5}}));
  EXPECT_FALSE(metric_value("nan").has_value());
  // The previous runner's answers have no version.
  EXPECT_EQ(decode_answer(R"({"target": 64})").target, 64);
  EXPECT_EQ(decode_answer(R"({"exit": true})").kind, RunnerAnswer::Kind::kExit);
}

TEST(WorkerProtocol, BadLinesAreClearErrors) {
  auto error_of = [](const std::string& line) {
    try {
      decode_event(line);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(error_of("not json").find("not JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"v":9,"event":"exit","reason":"completed"})").find("protocol version 9"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"v":2,"event":"dance"})").find("'event' must be one of"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"v":2,"event":"exit","reason":"bored"})").find("'reason' must be one of"),
            std::string::npos);
  EXPECT_NE(
      error_of(R"({"v":2,"event":"target_reached","length":-4,"metric":1})").find("'length' is -4"),
      std::string::npos);
  EXPECT_NE(
      error_of(
          R"({"v":2,"event":"report","report":{"kind":"training","trial_id":1,"batches":1,"metrics":3}})")
          .find("'report.metrics' must be an object"),
      std::string::npos);
  EXPECT_LT(error_of(std::string(1 << 20, '{')).size(), 300u);
  EXPECT_THROW(decode_answer(R"({"v":2})"), Error);
}

}  // namespace
}  // namespace det::record

namespace det::record {
namespace {

TEST(WorkerProtocol, TrainingReportsCarryLearningRates) {
  MetricsReport r;
  r.kind = MetricsReport::Kind::kTraining;
  r.batches = 10;
  r.metrics = {{"loss", 1.0}};
  r.learning_rates = {{"lr/0.0", 0.1}, {"lr/0.1", 0.01}};
  auto back = std::get<MetricsReport>(decode_event(encode(r)));
  EXPECT_EQ(back.learning_rates, r.learning_rates);
  // Older reports have none; a malformed one is named.
  EXPECT_TRUE(std::get<MetricsReport>(decode_event(v1_lines()[0])).learning_rates.empty());
  auto j = r.to_json();
  j["learning_rates"] = 0.1;
  try {
    MetricsReport::from_json(j, "metrics.jsonl:3");
    FAIL() << "a number for learning_rates was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("learning_rates"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace det::record
