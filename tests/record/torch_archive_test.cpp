// check_torch_archive: LibTorch archives whose zip or pickles lie are refused by name before
// LibTorch reads them (issue 23, items 1 and 11). The archives are built here: a stored zip of
// hand-assembled pickles in the form LibTorch's pickler writes.
#include "det/record/torch_archive.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "../peak_rss.h"
#include "det/util/error.h"
#include "det/util/fs.h"

namespace fs = std::filesystem;
using det::CheckpointError;
using det::record::check_torch_archive;

namespace {

std::string le(uint64_t v, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

// A stored (uncompressed) zip of `records`, as LibTorch writes them: local headers, data,
// central directory, end record. `sizes` overrides the directory's size of a record.
std::string zip(const std::vector<std::pair<std::string, std::string>>& records,
                const std::map<std::string, uint64_t>& sizes = {}) {
  std::string out, dir;
  for (const auto& [name, data] : records) {
    const uint64_t at = out.size();
    const uint32_t crc =
        crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
    const uint64_t size = sizes.count(name) ? sizes.at(name) : data.size();
    out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crc, 4) +
           le(size, 4) + le(size, 4) + le(name.size(), 2) + le(0, 2) + name + data;
    dir += le(0x02014b50, 4) + le(20, 2) + le(20, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(crc, 4) +
           le(size, 4) + le(size, 4) + le(name.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) +
           le(0, 2) + le(0, 4) + le(at, 4) + name;
  }
  const uint64_t dir_at = out.size();
  out += dir;
  out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(records.size(), 2) + le(records.size(), 2) +
         le(dir.size(), 4) + le(dir_at, 4) + le(0, 2);
  return out;
}

// Pickle pieces in the form of LibTorch's pickler (protocol 2).
std::string str(const std::string& s) { return "X" + le(s.size(), 4) + s; }
std::string i32(int64_t v) { return "J" + le(static_cast<uint32_t>(v), 4); }
std::string tuple(const std::vector<std::string>& items) {
  std::string s = "(";
  for (const auto& i : items) s += i;
  return s + "t";
}
// _rebuild_tensor_v2(storage('storage', FloatStorage, key, 'cpu', numel), offset, sizes,
// strides, False, OrderedDict()).
std::string tensor(const std::string& key, int64_t numel, int64_t offset,
                   const std::vector<int64_t>& sizes, const std::vector<int64_t>& strides,
                   const std::string& type = "FloatStorage") {
  std::vector<std::string> sz, st;
  for (auto v : sizes) sz.push_back(i32(v));
  for (auto v : strides) st.push_back(i32(v));
  return "ctorch._utils\n_rebuild_tensor_v2\n(" +
         tuple({str("storage"), "ctorch\n" + type + "\n", str(key), str("cpu"), i32(numel)}) + "Q" +
         i32(offset) + tuple(sz) + tuple(st) + "\x89" + "ccollections\nOrderedDict\n)R" + "tR";
}
// {'w': tensor, ...} as the data.pkl of a module.
std::string pickle(const std::vector<std::string>& tensors) {
  std::string body = "\x80\x02}(";
  for (size_t i = 0; i < tensors.size(); ++i) body += str("t" + std::to_string(i)) + tensors[i];
  return body + "u.";
}

struct TmpFile {
  fs::path path =
      fs::temp_directory_path() / ("det-torch-archive-" + std::to_string(::getpid()) + ".pt");
  ~TmpFile() { fs::remove(path); }
  std::string check_error(const std::string& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    try {
      check_torch_archive(det::util::ReadFile(path));
    } catch (const CheckpointError& e) {
      return e.what();
    }
    return "";
  }
};

std::string floats(size_t n) { return std::string(n * 4, '\x01'); }

}  // namespace

TEST(TorchArchive, AcceptsAWellFormedArchive) {
  TmpFile f;
  const std::string bytes =
      zip({{"state/data.pkl",
            pickle({tensor("0", 12, 0, {3, 4}, {4, 1}), tensor("1", 6, 2, {2, 2}, {1, 2})})},
           {"state/data/0", floats(12)},
           {"state/data/1", floats(6)},
           {"state/version", "3\n"}});
  std::ofstream(f.path, std::ios::binary) << bytes;
  const auto s = check_torch_archive(det::util::ReadFile(f.path));
  EXPECT_EQ(s.records, 4u);
  EXPECT_EQ(s.tensors, 2u);
  EXPECT_EQ(s.storage_bytes, 72u);
}

// Item 1: the fc1 weight's record cut to 1000 bytes (the zip's sizes fixed): LibTorch read past
// it (SIGSEGV, or garbage that trained to a loss of 1e33).
TEST(TorchArchive, ARecordShorterThanItsStorageIsNamed) {
  TmpFile f;
  const std::string e = f.check_error(
      zip({{"state/data.pkl", pickle({tensor("3", 1179648, 0, {128, 9216}, {9216, 1})})},
           {"state/data/3", std::string(1000, '\0')}}));
  EXPECT_NE(e.find("record 'state/data/3' holds 1000 bytes but its storage (torch.FloatStorage, "
                   "1179648 elements) needs 4718592"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find(f.path.string()), std::string::npos) << e;
  EXPECT_NE(e.find("resume from another one"), std::string::npos) << e;
}

TEST(TorchArchive, ATensorBeyondItsStorageIsNamed) {
  TmpFile f;
  // 12 elements; a 3x4 view at offset 1 reaches element 12.
  std::string e =
      f.check_error(zip({{"state/data.pkl", pickle({tensor("0", 12, 1, {3, 4}, {4, 1})})},
                         {"state/data/0", floats(12)}}));
  EXPECT_NE(e.find("reaches element 12 of storage record 'state/data/0', which holds 12 elements"),
            std::string::npos)
      << e;
  // A stride that walks far past the storage.
  e = f.check_error(zip({{"state/data.pkl", pickle({tensor("0", 12, 0, {2, 2}, {100000, 1})})},
                         {"state/data/0", floats(12)}}));
  EXPECT_NE(e.find("reaches element 100001"), std::string::npos) << e;
  e = f.check_error(zip({{"state/data.pkl", pickle({tensor("0", 12, 0, {-3, 4}, {4, 1})})},
                         {"state/data/0", floats(12)}}));
  EXPECT_NE(e.find("negative or non-integer size or stride"), std::string::npos) << e;
  // An empty tensor reaches nothing, at any offset within reason.
  EXPECT_EQ(f.check_error(zip({{"state/data.pkl", pickle({tensor("0", 12, 0, {0, 4}, {4, 1})})},
                               {"state/data/0", floats(12)}})),
            "");
}

TEST(TorchArchive, StoragesThatAreNotThereOrOfUnknownTypeAreNamed) {
  TmpFile f;
  std::string e = f.check_error(zip(
      {{"state/data.pkl", pickle({tensor("7", 12, 0, {12}, {1})})}, {"state/data/0", floats(12)}}));
  EXPECT_NE(e.find("names storage record 'state/data/7', which the archive does not hold"),
            std::string::npos)
      << e;
  e = f.check_error(zip({{"state/data.pkl", pickle({tensor("0", 12, 0, {12}, {1}, "EvilStorage")})},
                         {"state/data/0", floats(12)}}));
  EXPECT_NE(e.find("storage of unknown type 'torch.EvilStorage'"), std::string::npos) << e;
}

// Item 11: a string claiming 2 GiB in a pickle of a few bytes: refused from the claim, without
// the memory (LibTorch took 2.46 GB before failing).
TEST(TorchArchive, LengthsPastThePickleAreRefusedWithoutTheirMemory) {
  TmpFile f;
  const std::string evil = "\x80\x02X" + le(uint64_t{1} << 31, 4) + "abc.";
  std::string e;
  const int64_t rise = det::testing::peak_rss_rise([&] {
    e = f.check_error(zip({{"state/data.pkl", evil}}));
  });
  EXPECT_NE(e.find("pickle 'state/data.pkl' has a BINUNICODE that claims 2147483648 bytes but only "
                   "4 remain"),
            std::string::npos)
      << e;
  if (rise >= 0) EXPECT_LT(rise, int64_t{16} << 20);
  for (const std::string& op :
       {std::string("B") + le(1u << 31, 4), std::string("\x8e") + le(uint64_t{1} << 40, 8),
        std::string("\x8b") + le(1u << 31, 4)}) {
    e = f.check_error(zip({{"state/data.pkl", "\x80\x02" + op + "."}}));
    EXPECT_NE(e.find("that claims"), std::string::npos) << e;
  }
}

TEST(TorchArchive, MalformedPicklesAreRefusedByOpcode) {
  TmpFile f;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"\x80\x02t.", "uses a mark it never set"},
      {"\x80\x02"
       "0.",
       "takes from an empty stack"},
      {"\x80\x02h\x05.", "refers to memo entry 5, never set"},
      {"\x80\x02Nr\xff\xff\xff\xff.", "memoizes at 4294967295, past its memo's end"},
      {"\x80\x02N", "ends without its STOP opcode"},
      {"\x80\x02Ncos\nsystem\n", "ends without its STOP opcode"},
      {"\x80\x02I1\n.", "has opcode 0x49, which LibTorch's archives never hold"},
      {"\x80\x02"
       "cos",
       "has a GLOBAL without its line"},
  };
  for (const auto& [bytes, want] : cases) {
    const std::string e = f.check_error(zip({{"state/data.pkl", bytes}}));
    EXPECT_NE(e.find(want), std::string::npos) << "case " << want << ": " << e;
  }
  // A deep nest of marks is bounded (no value count runs away).
  std::string marks(5u << 20, '(');
  const std::string e = f.check_error(zip({{"state/data.pkl", "\x80\x02" + marks + "."}}));
  EXPECT_NE(e.find("values at once"), std::string::npos) << e;
}

TEST(TorchArchive, ZipsWhoseDirectoryLiesAreRefused) {
  TmpFile f;
  const std::string good =
      zip({{"state/data.pkl", pickle({tensor("0", 3, 0, {3}, {1})})}, {"state/data/0", floats(3)}});
  // A record whose size runs past the file.
  std::string e = f.check_error(
      zip({{"state/data.pkl", pickle({tensor("0", 3, 0, {3}, {1})})}, {"state/data/0", floats(3)}},
          {{"state/data/0", 1u << 30}}));
  EXPECT_NE(e.find("record 'state/data/0' (1073741824 bytes at"), std::string::npos) << e;
  EXPECT_NE(e.find("runs past the file's end"), std::string::npos) << e;
  // Cut short: no end record.
  e = f.check_error(good.substr(0, good.size() - 10));
  EXPECT_NE(e.find("no zip end record"), std::string::npos) << e;
  // A directory offset past the end.
  std::string moved = good;
  moved.replace(moved.size() - 6, 4, le(1u << 30, 4));
  e = f.check_error(moved);
  EXPECT_NE(e.find("the zip's directory"), std::string::npos) << e;
  EXPECT_NE(e.find("lies past the file's end"), std::string::npos) << e;
  // A count of records that the directory cannot hold.
  std::string many = good;
  many.replace(many.size() - 12, 2, le(0xfffe, 2));
  e = f.check_error(many);
  EXPECT_NE(e.find("claims 65534 records"), std::string::npos) << e;
  e = f.check_error("not a zip at all, but long enough to look for one");
  EXPECT_NE(e.find("no zip end record"), std::string::npos) << e;
  e = f.check_error(zip({{"state/other", "x"}}));
  EXPECT_NE(e.find("no data.pkl record"), std::string::npos) << e;
}

// Many records, a large pickle: linear time (a bound on the test's time, not a timing).
TEST(TorchArchive, ManyTensorsAreCheckedInLinearTime) {
  TmpFile f;
  std::vector<std::string> tensors;
  std::vector<std::pair<std::string, std::string>> records;
  for (int i = 0; i < 20000; ++i) tensors.push_back(tensor(std::to_string(i), 1, 0, {1}, {1}));
  records.push_back({"state/data.pkl", pickle(tensors)});
  for (int i = 0; i < 20000; ++i) records.push_back({"state/data/" + std::to_string(i), floats(1)});
  std::ofstream(f.path, std::ios::binary) << zip(records);
  const auto start = std::chrono::steady_clock::now();
  const auto s = check_torch_archive(det::util::ReadFile(f.path));
  EXPECT_EQ(s.tensors, 20000u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}
