#include "det/record/checkpoint.h"

#include <gtest/gtest.h>

#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::record {
namespace {
using json = nlohmann::json;

json v1_metadata() {
  return json::parse(util::read_file(std::string(DET_TEST_DATA_DIR) + "/records/v1/metadata.json"));
}

json v2_metadata() {
  return json::parse(util::read_file(std::string(DET_TEST_DATA_DIR) + "/records/v2/metadata.json"));
}

std::string metadata_error(const json& j) {
  try {
    CheckpointMetadata::from_json(j, "ckpt/metadata.json");
  } catch (const CheckpointError& e) {
    return e.what();
  }
  return "";
}

TEST(CheckpointMetadata, ReadsTheVersion1FormatDet01Wrote) {
  auto m = CheckpointMetadata::from_json(v1_metadata(), "v1/metadata.json");
  EXPECT_EQ(m.format_version, 1);
  EXPECT_EQ(m.uuid, "6f1c9a52-7d0e-4c1b-9a3e-2f5b8c4d1e07");
  EXPECT_EQ(m.entrypoint, "noisy");
  EXPECT_EQ(m.trial_state.batches_trained, 8);
  EXPECT_EQ(m.trial_state.last_validation, 8);
  EXPECT_DOUBLE_EQ(*m.trial_state.best_metric, 0.5180450677871704);
  EXPECT_EQ(m.trial_seed, 17u);
  EXPECT_EQ(m.epoch_len, 24);
  ASSERT_EQ(m.lr_schedulers.size(), 1u);
  EXPECT_EQ(m.lr_schedulers[0]["last_epoch"], 8);
  EXPECT_TRUE(m.callbacks.empty());  // version 1 had none
  ASSERT_EQ(m.files.size(), 1u);
  EXPECT_EQ(m.files.at("state.pt").size, 4659u);
  EXPECT_EQ(m.files.at("state.pt").crc32, 2931411046u);
  EXPECT_EQ(m.models.at(0).parameters, 161);
}

TEST(CheckpointMetadata, ReadsTheVersion2FormatWithCallbacksAndNoScaler) {
  auto m = CheckpointMetadata::from_json(v2_metadata(), "v2/metadata.json");
  EXPECT_EQ(m.format_version, 2);
  EXPECT_EQ(m.callbacks.at("export")["written"], 2);
  EXPECT_FALSE(m.grad_scaler.has_value());  // version 3 added it
  EXPECT_EQ(m.trial_state.batches_trained, 8);
}

TEST(CheckpointMetadata, RoundTripsEveryField) {
  CheckpointMetadata m = CheckpointMetadata::from_json(v1_metadata(), "v1");
  m.format_version = CheckpointMetadata::kFormatVersion;
  m.callbacks["export"] = {{"written", 3}};
  m.grad_scaler = json{{"scale", 32768.0}, {"_growth_tracker", 7}};
  m.trial_state.last_validation.reset();
  auto back = CheckpointMetadata::from_json(m.to_json(), "again");
  EXPECT_EQ(back.to_json(), m.to_json());
  EXPECT_EQ(back.callbacks.at("export")["written"], 3);
  EXPECT_EQ((*back.grad_scaler)["_growth_tracker"], 7);
  m.grad_scaler = json(5);
  EXPECT_NE(metadata_error(m.to_json()).find("'grad_scaler'"), std::string::npos);
  EXPECT_FALSE(back.trial_state.last_validation.has_value());
}

TEST(CheckpointMetadata, EveryFieldIsCheckedWithAOneLineErrorNamingIt) {
  auto with = [](const std::function<void(json&)>& edit) {
    json j = v1_metadata();
    edit(j);
    return metadata_error(j);
  };
  // Found by a fault campaign: each used to crash, pass or blame the wrong thing.
  EXPECT_NE(with([](json& j) {
              j["trial_state"]["batches_trained"] = -1;
            }).find("'trial_state.batches_trained' is -1"),
            std::string::npos);
  EXPECT_NE(
      with([](json& j) { j["trial_state"]["batches_trained"] = 1e15; }).find("must be an integer"),
      std::string::npos);
  EXPECT_NE(with([](json& j) {
              j["format_version"] = 1e30;
            }).find("format version 1e+30 is not supported"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j["format_version"] = 1.5; }).find("format version 1.5"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j["format_version"] = 99; }).find("format version 99"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j["files"] = json::object(); }).find("lists no file"),
            std::string::npos);
  EXPECT_NE(with([](json& j) {
              j["files"]["/etc/passwd"] = {{"size", 1}, {"crc32", 0}};
            }).find("not a plain file name"),
            std::string::npos);
  EXPECT_NE(with([](json& j) {
              j["files"]["../x"] = {{"size", 1}, {"crc32", 0}};
            }).find("not a plain file name"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j["hparams"] = nullptr; }).find("'hparams' must be an object"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j["trial_seed"] = "17"; }).find("'trial_seed' must be an integer"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j["trial_seed"] = int64_t{1} << 40; }).find("'trial_seed' is"),
            std::string::npos);
  EXPECT_NE(with([](json& j) {
              j["trial_state"]["last_validation"] = 9;
            }).find("'trial_state.last_validation' is 9"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j["data"]["epoch_len"] = 0; }).find("'data.epoch_len' is 0"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j["uuid"] = "../../x"; }).find("'uuid' must be a directory name"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j.erase("trial_state"); }).find("'trial_state' is missing"),
            std::string::npos);
  EXPECT_NE(with([](json& j) { j["lr_schedulers"] = json::array({1}); }).find("'lr_schedulers'"),
            std::string::npos);
  // A long hostile value is quoted cut short.
  std::string e = with([](json& j) { j["hparams"] = std::string(1 << 20, 'x'); });
  EXPECT_LT(e.size(), 300u) << e.size();
  EXPECT_NE(metadata_error(json::array()).find("must be an object"), std::string::npos);
  // All errors name the file.
  EXPECT_EQ(with([](json& j) {
              j["trial_state"]["epochs_trained"] = -3;
            }).rfind("ckpt/metadata.json: ", 0),
            0u);
}

TEST(CheckpointRetention, KeepsTheNewestAndTheBestWithNaNLast) {
  std::vector<CheckpointRef> c = {{"a", "/a", 10, 0.5},
                                  {"b", "/b", 20, std::nan("")},
                                  {"c", "/c", 30, 0.9},
                                  {"d", "/d", 40, 0.2},
                                  {"e", "/e", 50, std::nullopt}};
  auto uuids = [](const std::vector<CheckpointRef>& v) {
    std::string s;
    for (const auto& r : v) s += r.uuid;
    return s;
  };
  EXPECT_EQ(uuids(checkpoints_to_keep(c, 1, 1, true)), "de");  // newest e, best (smallest) d
  EXPECT_EQ(uuids(checkpoints_to_keep(c, 1, 1, false)),
            "ce");  // largest is best: c (NaN is never best)
  EXPECT_EQ(uuids(checkpoints_to_keep(c, 2, 0, true)), "de");
  EXPECT_EQ(uuids(checkpoints_to_keep(c, 0, 0, true)),
            "e");  // always the newest: the trial must resume
  EXPECT_EQ(uuids(checkpoints_to_keep(c, 0, 5, true)), "abcde");
  EXPECT_TRUE(checkpoints_to_keep({}, 1, 1, true).empty());
}

TEST(CheckpointRef, PlainFileNames) {
  EXPECT_TRUE(is_plain_file_name("state.pt"));
  for (const char* bad : {"", ".", "..", "a/b", "/etc/passwd"})
    EXPECT_FALSE(is_plain_file_name(bad)) << bad;
  EXPECT_FALSE(is_plain_file_name(std::string("a\0b", 3)));
}

}  // namespace
}  // namespace det::record
