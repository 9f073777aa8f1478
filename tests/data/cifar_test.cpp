#include "det/data/cifar.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>

#include "det/data/loader.h"
#include "det/util/error.h"

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
    CifarDataset::parse(records(3, 10).substr(0, 3073 * 2 + 100), "data_batch_1.bin", 10, false, px, labels);
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("data_batch_1.bin: truncated: record 2 has 100 of 3073 bytes"), std::string::npos)
        << e.what();
  }
  std::string bad = records(2, 10);
  bad[3073] = 12;
  try {
    CifarDataset::parse(bad, "test_batch.bin", 10, false, px, labels);
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("test_batch.bin: record 1 has label 12, expected 0-9"), std::string::npos) << e.what();
  }
}

TEST(Cifar, MissingFilesSayWhatToPutWhere) {
  CifarOptions o;
  o.root = fs::temp_directory_path() / "det-no-cifar";
  o.download = false;
  try {
    CifarDataset ds(o);
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("data_batch_1.bin[.gz] not found"), std::string::npos) << e.what();
  }
}

TEST(CifarDataTest, RealCifar10HasTheKnownLabelCounts) {
  const char* dir = std::getenv("DET_DATA_DIR");
  if (!dir) GTEST_SKIP() << "DET_DATA_DIR not set";
  CifarOptions o;
  o.root = dir;
  o.download = false;
  o.train = false;
  auto test = std::make_shared<CifarDataset>(o);
  ASSERT_EQ(test->size(), 10000);
  std::vector<int> counts(10);
  for (auto l : test->labels()) ++counts[l];
  EXPECT_EQ(counts, std::vector<int>(10, 1000));
  // Through the loader with torchvision's ToTensor + Normalize(0.5, 0.5): values in [-1, 1].
  Pipeline p;
  p.normalize({0.5f, 0.5f, 0.5f}, {0.5f, 0.5f, 0.5f});
  DataLoader loader(std::make_shared<ImageDataset>(test, p), DataLoaderOptions().batch_size(128).num_workers(2));
  auto b = loader.stream(0, 1)->next();
  EXPECT_EQ(b.data.sizes(), (std::vector<int64_t>{128, 3, 32, 32}));
  EXPECT_GE(b.data.min().item<float>(), -1.0f);
  EXPECT_LE(b.data.max().item<float>(), 1.0f);
  o.train = true;
  CifarDataset train(o);
  EXPECT_EQ(train.size(), 50000);
  EXPECT_EQ(train.labels()[0], 6);  // the first training image is a frog
}

}  // namespace
}  // namespace det::data
