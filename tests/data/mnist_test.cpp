#include "det/data/mnist.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

#include <cstdlib>
#include <fstream>

#include "det/data/loader.h"
#include "det/util/error.h"

namespace det::data {
namespace {
namespace fs = std::filesystem;

struct Tmp {
  fs::path path = fs::temp_directory_path() / ("det-mnist-" + std::to_string(::getpid()));
  Tmp() { fs::create_directories(path / "mnist"); }
  ~Tmp() { fs::remove_all(path); }
};

std::string be32(uint32_t v) {
  return {char(v >> 24), char((v >> 16) & 0xff), char((v >> 8) & 0xff), char(v & 0xff)};
}

std::string images_bytes(uint32_t n, uint32_t magic = 2051) {
  std::string s = be32(magic) + be32(n) + be32(28) + be32(28);
  for (uint32_t i = 0; i < n * 784; ++i) s += char(i % 251);
  return s;
}

std::string labels_bytes(uint32_t n) {
  std::string s = be32(2049) + be32(n);
  for (uint32_t i = 0; i < n; ++i) s += char(i % 10);
  return s;
}

void write(const fs::path& p, const std::string& bytes, bool gz) {
  if (gz) {
    gzFile f = gzopen(p.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  } else {
    std::ofstream(p, std::ios::binary) << bytes;
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Mnist, ReadsPlainAndGzipAndNormalizesLikeTorchvision) {
  for (bool gz : {false, true}) {
    Tmp tmp;
    std::string sfx = gz ? ".gz" : "";
    write(tmp.path / "mnist" / ("t10k-images-idx3-ubyte" + sfx), images_bytes(5), gz);
    write(tmp.path / "mnist" / ("t10k-labels-idx1-ubyte" + sfx), labels_bytes(5), gz);
    MnistOptions o;
    o.root = tmp.path;
    o.train = false;
    o.download = false;
    MnistDataset ds(o);
    ASSERT_EQ(ds.size(), 5);
    auto b = ds.get_batch({{4, 0}});
    EXPECT_EQ(b.data.sizes(), (std::vector<int64_t>{2, 1, 28, 28}));
    EXPECT_EQ(b.target[0].item<int64_t>(), 4);
    // Pixel 0 of image 0 is 0: (0/255 - 0.1307)/0.3081; pixel 1 of image 0 is 1.
    EXPECT_FLOAT_EQ(b.data[1][0][0][0].item<float>(), (0.0f - 0.1307f) / 0.3081f);
    EXPECT_FLOAT_EQ(b.data[1][0][0][1].item<float>(), (1.0f / 255.0f - 0.1307f) / 0.3081f);
  }
}

TEST(Mnist, TruncatedAndWrongMagicAreDataErrors) {
  Tmp tmp;
  fs::path img = tmp.path / "imgs";
  write(img, images_bytes(3).substr(0, 16 + 784 * 2 + 10), false);
  std::string e = error_of([&] { read_idx_images(img); });
  EXPECT_NE(e.find("imgs: truncated: the header announces 3 images of 28x28 (2368 bytes) but the file holds 1594 bytes"),
            std::string::npos) << e;
  write(img, images_bytes(1, 2049), false);
  e = error_of([&] { read_idx_images(img); });
  EXPECT_NE(e.find("magic number 2049, expected 2051 (this is a label file)"), std::string::npos) << e;
  write(img, "abc", false);
  EXPECT_NE(error_of([&] { read_idx_images(img); }).find("shorter than the 16-byte IDX header"), std::string::npos);
  // A gzip stream cut short.
  fs::path gz = tmp.path / "l.gz";
  write(gz, labels_bytes(5000), true);
  fs::resize_file(gz, fs::file_size(gz) / 2);
  e = error_of([&] { read_idx_labels(gz); });
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

TEST(Mnist, MissingFilesSayWhatToPutWhere) {
  Tmp tmp;
  MnistOptions o;
  o.root = tmp.path / "empty";
  o.download = false;
  std::string e = error_of([&] { MnistDataset ds(o); });
  EXPECT_NE(e.find("train-images-idx3-ubyte[.gz] not found under"), std::string::npos) << e;
  EXPECT_NE(e.find("DET_DATA_DIR"), std::string::npos) << e;
}

TEST(MnistDataTest, RealFilesHaveTheKnownShapeAndLabels) {
  const char* dir = std::getenv("DET_DATA_DIR");
  if (!dir) GTEST_SKIP() << "DET_DATA_DIR not set";
  MnistOptions o;
  o.root = dir;
  o.download = false;
  MnistDataset train(o);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(train.labels()[0].item<int64_t>(), 5);  // the first training digit is a 5
  o.train = false;
  MnistDataset test(o);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(test.labels()[0].item<int64_t>(), 7);
  // torchvision's normalized mean over the training set is ~0.
  EXPECT_NEAR(train.images().mean().item<double>(), 0.0, 0.01);
}

}  // namespace
}  // namespace det::data
