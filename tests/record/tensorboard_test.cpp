#include "det/record/tensorboard.h"

#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>

#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::record::tensorboard {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int c : b) s.push_back(static_cast<char>(c));
  return s;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("det-tb-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// The CRC-32C vectors of RFC 3720 (B.4), which TensorFlow's and TensorBoard's crc32c tests use.
TEST(TensorBoardCrc, MatchesTheIscsiTestVectors) {
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62a8ab43u);
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c(up), 0x46dd794eu);
  EXPECT_EQ(crc32c(down), 0x113fdb5cu);
  // An iSCSI read command (RFC 3720 B.4, 48 bytes).
  const std::string read10 =
      bytes({0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
             0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
             0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
             0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00});
  EXPECT_EQ(crc32c(read10), 0xd9963a56u);
  EXPECT_EQ(crc32c("123456789"), 0xe3069283u);
  // Extending is the same as one pass.
  EXPECT_EQ(crc32c("6789", crc32c("12345")), 0xe3069283u);
}

TEST(TensorBoardCrc, MasksAsTFRecordDoes) {
  EXPECT_EQ(masked_crc32c(""), 0xa282ead8u);  // crc 0, rotated 0, plus the delta
  const uint32_t crc = crc32c("123456789");
  EXPECT_EQ(masked_crc32c("123456789"), ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
}

TEST(TensorBoardRecord, FramesLengthCrcDataCrc) {
  const std::string r = frame_record("abc");
  ASSERT_EQ(r.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(r.substr(0, 8), bytes({3, 0, 0, 0, 0, 0, 0, 0}));
  auto le32 = [&](size_t at) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= static_cast<uint32_t>(static_cast<uint8_t>(r[at + i])) << (8 * i);
    return v;
  };
  EXPECT_EQ(le32(8), masked_crc32c(r.substr(0, 8)));
  EXPECT_EQ(r.substr(12, 3), "abc");
  EXPECT_EQ(le32(15), masked_crc32c("abc"));
}

TEST(TensorBoardRecord, ReadsBackSkipsATornTailAndRefusesDamage) {
  const std::string file = frame_record("one") + frame_record("") + frame_record("three");
  EXPECT_EQ(read_records(file, "f"), (std::vector<std::string>{"one", "", "three"}));
  // A writer killed mid-record: the records before it are read.
  for (size_t cut = 1; cut < frame_record("three").size(); ++cut)
    EXPECT_EQ(read_records(file.substr(0, file.size() - cut), "f").size(), 2u) << cut;
  std::string damaged = file;
  damaged[12] ^= 1;  // the first record's data
  try {
    read_records(damaged, "events.out.tfevents.1");
    FAIL() << "damage not found";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "events.out.tfevents.1: record at byte 0: the data's CRC does not match; the "
                 "file is damaged");
  }
}

// The protocol buffer bytes of Event{wall_time: 1.5, step: 3, summary {value {tag: "a",
// simple_value: 2}}}, as protoc's encoder writes them (fields in number order).
TEST(TensorBoardEvent, EncodesAScalarAsTheProtobufWireFormat) {
  EXPECT_EQ(event::scalar(1.5, 3, "a", 2.0),
            bytes({0x09, 0,    0,    0,    0,   0, 0, 0xf8, 0x3f,  // wall_time (double)
                   0x10, 0x03,                                     // step
                   0x2a, 0x0a,                                     // summary, 10 bytes
                   0x0a, 0x08,                                     // value, 8 bytes
                   0x0a, 0x01, 'a',                                // tag
                   0x15, 0x00, 0x00, 0x00, 0x40}));                // simple_value (float)
  // SessionLog{status: START} at step 300 (a two-byte varint); a wall time of 0 is left out, as
  // proto3 leaves out every scalar at its default.
  EXPECT_EQ(event::session_log(0, 300, SessionStatus::kStart),
            bytes({0x10, 0xac, 0x02, 0x3a, 0x02, 0x08, 0x01}));
}

TEST(TensorBoardEventFile, NamesEachNewFileAfterTheOnesThereAndStartsWithItsVersion) {
  const auto dir = temp_dir("names");
  EventFileWriter a(dir, 2000000000.0);
  EventFileWriter b(dir, 2000000000.0);  // the same second
  EventFileWriter c(dir, 1000000000.0);  // a clock that went back
  EXPECT_LT(a.path().filename().string(), b.path().filename().string());
  EXPECT_LT(b.path().filename().string(), c.path().filename().string());
  EXPECT_NE(a.path().filename().string().find("tfevents.2000000000."), std::string::npos);
  a.append({event::scalar(2000000000.0, 1, "x", 1)});
  const auto records = read_records(util::read_file(a.path()), a.path().string());
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0], event::file_version(2000000000.0));
  EXPECT_NE(records[0].find("brain.Event:2"), std::string::npos);
  fs::remove_all(dir);
}

TEST(TensorBoardTime, ReadsDetsIsoTimes) {
  EXPECT_DOUBLE_EQ(*seconds_since_epoch("1970-01-01T00:01:40Z"), 100.0);
  EXPECT_DOUBLE_EQ(*seconds_since_epoch("2026-12-02T00:00:00.25Z"), 1796169600.25);
  EXPECT_FALSE(seconds_since_epoch("yesterday"));
  EXPECT_FALSE(seconds_since_epoch("2026-12-02T00:00:00+01:00"));
}

}  // namespace
}  // namespace det::record::tensorboard
