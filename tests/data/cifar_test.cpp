#include "det/data/cifar.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "../peak_rss.h"
#include "det/data/loader.h"
#include "det/util/error.h"
#include "support/test_support.h"

namespace det::data {
namespace {
namespace fs = std::filesystem;

// A CIFAR record: label byte(s), then the R, G and B planes.
std::string records(int n, int classes) {
  std::string s;
  for (int r = 0; r < n; ++r) {
    if (classes == 100) s += char(r % 20);  // coarse
    s += char(r % classes);
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) s += char((r + c * 50 + p) % 256);
  }
  return s;
}

TEST(Cifar, ParsesPlanesIntoHwcWithLabels) {
  std::vector<uint8_t> px, labels;
  CifarDataset::parse(records(3, 10), "f.bin", 10, false, px, labels);
  ASSERT_EQ(labels, (std::vector<uint8_t>{0, 1, 2}));
  ASSERT_EQ(px.size(), 3u * 3072);
  // Record 1, pixel 5: R = 1+5, G = 1+50+5, B = 1+100+5.
  EXPECT_EQ(px[3072 + 5 * 3 + 0], 6);
  EXPECT_EQ(px[3072 + 5 * 3 + 1], 56);
  EXPECT_EQ(px[3072 + 5 * 3 + 2], 106);
  px.clear();
  labels.clear();
  CifarDataset::parse(records(30, 100), "train.bin", 100, false, px, labels);
  EXPECT_EQ(labels[25], 25);
  px.clear();
  labels.clear();
  CifarDataset::parse(records(30, 100), "train.bin", 100, true, px, labels);
  EXPECT_EQ(labels[25], 5);
}

TEST(Cifar, TruncatedAndBadLabelsNameFileAndRecord) {
  std::vector<uint8_t> px, labels;
  try {
    CifarDataset::parse(records(3, 10).substr(0, 3073 * 2 + 100), "data_batch_1.bin", 10, false, px,
                        labels);
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(
        std::string(e.what()).find("data_batch_1.bin: truncated: record 2 has 100 of 3073 bytes"),
        std::string::npos)
        << e.what();
  }
  std::string bad = records(2, 10);
  bad[3073] = 12;
  try {
    CifarDataset::parse(bad, "test_batch.bin", 10, false, px, labels);
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("test_batch.bin: record 1 has label 12, expected 0-9"),
              std::string::npos)
        << e.what();
  }
}

struct TmpRoot {
  fs::path path = fs::temp_directory_path() / ("det-cifar-" + std::to_string(::getpid()));
  TmpRoot() { fs::create_directories(path / "cifar10"); }
  ~TmpRoot() { fs::remove_all(path); }
};

void write_gz(const fs::path& p, const std::string& bytes, uint64_t zeros = 0) {
  gzFile f = gzopen(p.c_str(), "wb9");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  std::string chunk(1 << 20, '\0');
  for (uint64_t left = zeros; left > 0;) {
    const auto n = static_cast<unsigned>(std::min<uint64_t>(left, chunk.size()));
    gzwrite(f, chunk.data(), n);
    left -= n;
  }
  gzclose(f);
}

std::string cifar_error(const CifarOptions& o) {
  try {
    CifarDataset ds(o);
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Cifar, ReadsGzipAndRefusesDataAfterTheStream) {
  TmpRoot tmp;
  fs::path gz = tmp.path / "cifar10" / "test_batch.bin.gz";
  write_gz(gz, records(3, 10));
  CifarOptions o;
  o.root(tmp.path);
  o.train(false);
  o.download(false);
  CifarDataset ds(o);
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.label(2), 2);
  EXPECT_EQ(ds.image(1).at(0, 5, 1), 56);  // record 1, pixel 5, G = 1+50+5
  std::ofstream(gz, std::ios::binary | std::ios::app) << std::string(4, '\0');
  std::string e = cifar_error(o);
  EXPECT_NE(e.find("test_batch.bin.gz: 4 bytes after the end of the gzip stream"),
            std::string::npos)
      << e;
}

// The limit (DET_MAX_DATA_FILE_BYTES) holds before anything is read: a plain file by its size, a
// gzip file by the length its trailer records, and while streaming when the trailer lies.
TEST(Cifar, FilesOverTheLimitAreRefusedWithoutReadingThem) {
  TmpRoot tmp;
  CifarOptions o;
  o.root(tmp.path);
  o.train(false);
  o.download(false);
  test::ScopedEnv env("DET_MAX_DATA_FILE_BYTES", "8000000");  // 8 MB
  fs::path plain = tmp.path / "cifar10" / "test_batch.bin";
  std::ofstream(plain, std::ios::binary) << records(3000, 10);  // 9.2 MB
  std::string e = cifar_error(o);
  EXPECT_NE(e.find("test_batch.bin: holds 9219000 bytes, more than the limit of 8000000 bytes"),
            std::string::npos)
      << e;
  fs::remove(plain);
  // 256 MiB of records in a 256 KB gzip file: refused from its trailer, then (trailer zeroed)
  // after inflating no more than the limit.
  fs::path gz = tmp.path / "cifar10" / "test_batch.bin.gz";
  write_gz(gz, records(1, 10), uint64_t{256} << 20);
  int64_t rise = det::testing::peak_rss_rise([&] { e = cifar_error(o); });
  EXPECT_NE(e.find("test_batch.bin.gz: the gzip trailer records 268438529 bytes, more than the "
                   "limit of 8000000"),
            std::string::npos)
      << e;
  {
    std::fstream io(gz, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(-4, std::ios::end);
    io.write("\0\0\0\0", 4);
  }
  int64_t rise2 = det::testing::peak_rss_rise([&] { e = cifar_error(o); });
  EXPECT_NE(e.find("test_batch.bin.gz: holds more than the limit of 8000000 bytes"),
            std::string::npos)
      << e;
  if (rise < 0 || rise2 < 0) GTEST_SKIP() << "cannot measure peak memory here";
  EXPECT_LT(rise, int64_t{16} << 20);
  EXPECT_LT(rise2, int64_t{40} << 20);
}

// Issue 23 item 2: CIFAR's data_batch_1.bin (or its .gz) as a FIFO blocked in open().
TEST(Cifar, AFifoIsRefusedWithoutBlocking) {
  ::alarm(30);  // a FIFO that blocks kills the test in 30 s instead of hanging it
  TmpRoot tmp;
  CifarOptions o;
  o.root(tmp.path);
  o.train(false);
  o.download(false);
  fs::create_directories(tmp.path / "cifar10");
  for (const char* name : {"test_batch.bin", "test_batch.bin.gz"}) {
    const fs::path p = tmp.path / "cifar10" / name;
    ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
    const std::string e = cifar_error(o);
    EXPECT_NE(e.find(": not a regular file (a FIFO)"), std::string::npos) << e;
    fs::remove(p);
  }
  ::alarm(0);
}

// Issue 23 item 3: a gzip stream that inflates past the limit, whatever its trailer says, is
// refused holding one record; one within the limit takes its records' memory once (growing the
// arrays while streaming held old and new buffers at once: 3.48 GB for a 2 GiB limit).
TEST(Cifar, GzipStreamsTakeTheirMemoryOnce) {
  TmpRoot tmp;
  CifarOptions o;
  o.root(tmp.path);
  o.train(false);
  o.download(false);
  test::ScopedEnv env("DET_MAX_DATA_FILE_BYTES", std::to_string(uint64_t{96} << 20).c_str());
  const fs::path gz = tmp.path / "cifar10" / "test_batch.bin.gz";
  fs::create_directories(gz.parent_path());
  // 128 MiB of records (zeros: label 0) with a trailer that wraps to a small size.
  write_gz(gz, records(1, 10), uint64_t{128} << 20);
  {
    std::fstream io(gz, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(-4, std::ios::end);
    io.write("\x01\x0c\0\0", 4);  // 3073: one record
  }
  std::string e;
  const int64_t refused = det::testing::peak_rss_rise([&] { e = cifar_error(o); });
  EXPECT_NE(e.find("test_batch.bin.gz: holds more than the limit of 100663296 bytes"),
            std::string::npos)
      << e;
  // 80 MB of records, accepted: the peak is the records' memory, not 1.7 times it.
  const uint64_t n = (uint64_t{80} << 20) / 3073;
  write_gz(gz, records(static_cast<int>(n), 10));
  size_t size = 0;
  const int64_t accepted = det::testing::peak_rss_rise([&] {
    CifarDataset ds(o);
    size = static_cast<size_t>(ds.size());
  });
  EXPECT_EQ(size, n);
  if (refused < 0 || accepted < 0) GTEST_SKIP() << "cannot measure peak memory here";
  EXPECT_LT(refused, int64_t{16} << 20);
  const auto records_bytes = static_cast<int64_t>(n * 3073);
  EXPECT_LT(accepted, records_bytes * 13 / 10) << "records: " << records_bytes;
}

TEST(Cifar, MissingFilesSayWhatToPutWhere) {
  CifarOptions o;
  o.root(fs::temp_directory_path() / "det-no-cifar");
  o.download(false);
  try {
    CifarDataset ds(o);
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("data_batch_1.bin[.gz] not found"), std::string::npos)
        << e.what();
  }
}

TEST(CifarDataTest, RealCifar10HasTheKnownLabelCounts) {
  const char* dir = std::getenv("DET_DATA_DIR");
  if (!dir) GTEST_SKIP() << "DET_DATA_DIR not set";
  CifarOptions o;
  o.root(dir);
  o.download(false);
  o.train(false);
  auto test = std::make_shared<CifarDataset>(o);
  ASSERT_EQ(test->size(), 10000);
  std::vector<int> counts(10);
  for (auto l : test->labels()) ++counts[l];
  EXPECT_EQ(counts, std::vector<int>(10, 1000));
  // Through the loader with torchvision's ToTensor + Normalize(0.5, 0.5): values in [-1, 1].
  Pipeline p;
  p.normalize({0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f});
  DataLoader loader(std::make_shared<ImageDataset>(test, p),
                    DataLoaderOptions().batch_size(128).num_workers(2));
  auto b = loader.stream(0, 1)->next();
  EXPECT_EQ(b.data.sizes(), (std::vector<int64_t>{128, 3, 32, 32}));
  EXPECT_GE(b.data.min().item<float>(), -1.0f);
  EXPECT_LE(b.data.max().item<float>(), 1.0f);
  o.train(true);
  CifarDataset train(o);
  EXPECT_EQ(train.size(), 50000);
  EXPECT_EQ(train.labels()[0], 6);  // the first training image is a frog
}

}  // namespace
}  // namespace det::data
