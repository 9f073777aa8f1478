#include "det/data/mnist.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>

#include "../peak_rss.h"
#include "det/data/loader.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "support/test_support.h"

namespace det::data {
namespace {
namespace fs = std::filesystem;

struct Tmp {
  fs::path path = fs::temp_directory_path() / ("det-mnist-" + std::to_string(::getpid()));
  Tmp() { fs::create_directories(path / "mnist"); }
  ~Tmp() { fs::remove_all(path); }
};

std::string images_bytes(uint32_t n, uint32_t magic = 2051) {
  std::string s = test::be32(magic) + test::be32(n) + test::be32(28) + test::be32(28);
  for (uint32_t i = 0; i < n * 784; ++i) s += char(i % 251);
  return s;
}

std::string labels_bytes(uint32_t n) {
  std::string s = test::be32(2049) + test::be32(n);
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

TEST(Mnist, ReadsPlainAndGzipAndNormalizesLikeTorchvision) {
  for (bool gz : {false, true}) {
    Tmp tmp;
    std::string sfx = gz ? ".gz" : "";
    write(tmp.path / "mnist" / ("t10k-images-idx3-ubyte" + sfx), images_bytes(5), gz);
    write(tmp.path / "mnist" / ("t10k-labels-idx1-ubyte" + sfx), labels_bytes(5), gz);
    MnistOptions o;
    o.root(tmp.path);
    o.train(false);
    o.download(false);
    MnistDataset ds(o);
    ASSERT_EQ(ds.size(), 5);
    auto b = ds.get_batch({{4, 0}});
    EXPECT_EQ(b.data.sizes(), (std::vector<int64_t>{2, 1, 28, 28}));
    EXPECT_EQ(b.target[0].item<int64_t>(), 4);
    // Pixel 0 of image 0 is 0: (0/255 - 0.1307)/0.3081; pixel 1 of image 0 is 1.
    EXPECT_FLOAT_EQ(b.data[1][0][0][0].item<float>(), (0.0f - 0.1307f) / 0.3081f);
    EXPECT_FLOAT_EQ(b.data[1][0][0][1].item<float>(), (1.0f / 255.0f - 0.1307f) / 0.3081f);
    // Held as the file's bytes (a byte a pixel), made float per batch; images() equals the
    // batches.
    EXPECT_EQ(ds.pixels().scalar_type(), torch::kUInt8);
    EXPECT_EQ(ds.pixels().numel() * ds.pixels().element_size(), 5 * 28 * 28);
    EXPECT_EQ(ds.pixels()[0][0][0][1].item<int64_t>(), 1);
    EXPECT_TRUE(torch::equal(ds.images().index_select(0, torch::tensor({4, 0})), b.data));
  }
}

TEST(Mnist, TruncatedAndWrongMagicAreDataErrors) {
  Tmp tmp;
  fs::path img = tmp.path / "imgs";
  write(img, images_bytes(3).substr(0, 16 + 784 * 2 + 10), false);
  std::string e = test::error_of<DataError>([&] { read_idx_images(img); });
  EXPECT_NE(e.find("imgs: truncated: the header announces 3 images of 28x28 (2368 bytes) but the "
                   "file holds 1594 bytes"),
            std::string::npos)
      << e;
  write(img, images_bytes(1, 2049), false);
  e = test::error_of<DataError>([&] { read_idx_images(img); });
  EXPECT_NE(e.find("magic number 2049, expected 2051 (this is a label file)"), std::string::npos)
      << e;
  write(img, "abc", false);
  EXPECT_NE(test::error_of<DataError>([&] {
              read_idx_images(img);
            }).find("shorter than the 16-byte IDX header"),
            std::string::npos);
  // A gzip stream cut short.
  fs::path gz = tmp.path / "l.gz";
  write(gz, labels_bytes(5000), true);
  fs::resize_file(gz, fs::file_size(gz) / 2);
  e = test::error_of<DataError>([&] { read_idx_labels(gz); });
  EXPECT_NE(e.find("truncated"), std::string::npos) << e;
}

// `prefix` then `zeros` zero bytes, gzip-compressed in chunks: a 256 MiB bomb is a 256 KB file
// and costs a megabyte of memory to make. `trailer_claims`: overwrite the length the gzip trailer
// records (a crafted file that lies about it).
void write_gz_bomb(const fs::path& p, const std::string& prefix, uint64_t zeros,
                   int64_t trailer_claims = -1) {
  gzFile f = gzopen(p.c_str(), "wb9");
  gzwrite(f, prefix.data(), static_cast<unsigned>(prefix.size()));
  std::string chunk(1 << 20, '\0');
  for (uint64_t left = zeros; left > 0;) {
    const auto n = static_cast<unsigned>(std::min<uint64_t>(left, chunk.size()));
    gzwrite(f, chunk.data(), n);
    left -= n;
  }
  gzclose(f);
  if (trailer_claims >= 0) {
    std::fstream io(p, std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(-4, std::ios::end);
    for (int i = 0; i < 4; ++i) io.put(static_cast<char>((trailer_claims >> (8 * i)) & 0xff));
  }
}

constexpr int64_t kSmall = int64_t{48} << 20;  // what a refused hostile file may cost at most

// The campaign's bomb: a valid header, then far more data than it announces. The file is
// refused after inflating what the header announces (plus one small buffer), not all of it.
TEST(MnistHostile, GzipBombAfterAValidHeaderIsRefusedWithoutInflatingIt) {
  Tmp tmp;
  fs::path gz = tmp.path / "labels.gz";
  const uint64_t bomb = uint64_t{256} << 20;
  write_gz_bomb(gz, labels_bytes(5), bomb);
  ASSERT_LT(fs::file_size(gz), 1u << 20);
  std::string e;
  int64_t rise = det::testing::peak_rss_rise(
      [&] { e = test::error_of<DataError>([&] { read_idx_labels(gz); }); });
  EXPECT_NE(
      e.find("labels.gz: the header announces 5 labels (13 bytes) but the gzip trailer records"),
      std::string::npos)
      << e;
  // The same bomb with a trailer that agrees with the header: caught while streaming.
  write_gz_bomb(gz, labels_bytes(5), bomb, 13);
  int64_t rise2 = det::testing::peak_rss_rise(
      [&] { e = test::error_of<DataError>([&] { read_idx_labels(gz); }); });
  EXPECT_NE(e.find("labels.gz: the gzip stream inflates to more than the 5 labels (13 bytes) the "
                   "header announces"),
            std::string::npos)
      << e;
  if (rise < 0 || rise2 < 0)
    GTEST_SKIP() << "cannot measure peak memory here (/proc/self/clear_refs)";
  EXPECT_LT(rise, kSmall);
  EXPECT_LT(rise2, kSmall);
}

TEST(MnistHostile, CountsBeyondTheFileOrTheLimitAreRefusedBeforeAllocating) {
  Tmp tmp;
  // A 100-byte .gz that claims 60,000,000 images: more than the 2 GiB limit.
  fs::path gz = tmp.path / "images.gz";
  write(gz,
        test::be32(2051) + test::be32(60000000) + test::be32(28) + test::be32(28) +
            std::string(64, '\0'),
        true);
  std::string e;
  int64_t rise = det::testing::peak_rss_rise(
      [&] { e = test::error_of<DataError>([&] { read_idx_images(gz); }); });
  EXPECT_NE(e.find("images.gz: the header announces 60000000 images of 28x28 (47040000016 bytes), "
                   "more than the limit "
                   "of 2147483648 bytes for a data file"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("DET_MAX_DATA_FILE_BYTES"), std::string::npos) << e;
  {
    // Within a raised limit, the gzip file is still far too small to inflate to that.
    test::ScopedEnv env("DET_MAX_DATA_FILE_BYTES", "100000000000");
    e = test::error_of<DataError>([&] { read_idx_images(gz); });
    EXPECT_NE(e.find("but a gzip file of"), std::string::npos) << e;
    EXPECT_NE(e.find("cannot inflate to more than"), std::string::npos) << e;
  }
  {
    test::ScopedEnv env("DET_MAX_DATA_FILE_BYTES", "lots");
    e = test::error_of<DataError>([&] { read_idx_images(gz); });
    EXPECT_NE(e.find("DET_MAX_DATA_FILE_BYTES='lots': expected a whole number"), std::string::npos)
        << e;
  }
  // A plain file that claims a million images but holds ten bytes of them.
  fs::path plain = tmp.path / "images";
  write(plain,
        test::be32(2051) + test::be32(1000000) + test::be32(28) + test::be32(28) +
            std::string(10, 'x'),
        false);
  e = test::error_of<DataError>([&] { read_idx_images(plain); });
  EXPECT_NE(e.find("images: truncated: the header announces 1000000 images of 28x28 (784000016 "
                   "bytes) but the file "
                   "holds 26 bytes"),
            std::string::npos)
      << e;
  if (rise < 0) GTEST_SKIP() << "cannot measure peak memory here";
  EXPECT_LT(rise, kSmall);
}

TEST(MnistHostile, DimensionsWhoseProductOverflowsNameTheFile) {
  Tmp tmp;
  fs::path p = tmp.path / "t10k-images-idx3-ubyte";
  write(p,
        test::be32(2051) + test::be32(0xFFFFFFFF) + test::be32(0xFFFFFFFF) + test::be32(0xFFFFFFFF),
        false);
  std::string e = test::error_of<DataError>([&] { read_idx_images(p); });
  EXPECT_NE(e.find("t10k-images-idx3-ubyte: the header announces 4294967295 images of "
                   "4294967295x4294967295, whose "
                   "size overflows a 64-bit integer"),
            std::string::npos)
      << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
}

TEST(MnistHostile, TrailingBytesAndDataAfterTheGzipStreamAreRefused) {
  Tmp tmp;
  fs::path p = tmp.path / "labels";
  write(p, labels_bytes(5) + "junk", false);
  std::string e = test::error_of<DataError>([&] { read_idx_labels(p); });
  EXPECT_NE(e.find("labels: 4 unexpected bytes after the 5 labels the header announces"),
            std::string::npos)
      << e;
  // A whole gzip stream followed by four more bytes (a copy of its trailer, so the trailer check
  // passes and the bytes are found after the stream).
  fs::path gz = tmp.path / "labels.gz";
  write(gz, labels_bytes(5), true);
  std::string bytes = util::read_file(gz);
  std::ofstream(gz, std::ios::binary | std::ios::app) << bytes.substr(bytes.size() - 4);
  e = test::error_of<DataError>([&] { read_idx_labels(gz); });
  EXPECT_NE(e.find("labels.gz: 4 bytes after the end of the gzip stream"), std::string::npos) << e;
  // Not a regular file (a FIFO would block, /dev/zero would never end).
  e = test::error_of<DataError>([&] { read_idx_labels("/dev/zero"); });
  EXPECT_NE(e.find("/dev/zero: not a regular file"), std::string::npos) << e;
}

// Issue 23 item 2: a FIFO as a data file blocked in open() forever (SIGTERM did not end it).
TEST(MnistHostile, AFifoIsRefusedWithoutBlocking) {
  ::alarm(30);  // a FIFO that blocks kills the test in 30 s instead of hanging it
  Tmp tmp;
  for (const char* name : {"labels", "images.gz"}) {
    const fs::path p = tmp.path / name;
    ASSERT_EQ(::mkfifo(p.c_str(), 0600), 0);
    const std::string e = test::error_of<DataError>([&] { read_idx_labels(p); });
    EXPECT_NE(e.find(p.string() + ": not a regular file (a FIFO)"), std::string::npos) << e;
  }
  ::alarm(0);
}

TEST(MnistHostile, CountsThatDisagreeAreRefusedBeforeTheImagesAreRead) {
  Tmp tmp;
  write(tmp.path / "mnist" / "t10k-images-idx3-ubyte", images_bytes(6), false);
  write(tmp.path / "mnist" / "t10k-labels-idx1-ubyte", labels_bytes(5), false);
  MnistOptions o;
  o.root(tmp.path);
  o.train(false);
  o.download(false);
  std::string e = test::error_of<DataError>([&] { MnistDataset ds(o); });
  EXPECT_NE(e.find("t10k-images-idx3-ubyte holds 6 images but"), std::string::npos) << e;
  EXPECT_NE(e.find("t10k-labels-idx1-ubyte holds 5 labels"), std::string::npos) << e;
  write(tmp.path / "mnist" / "t10k-images-idx3-ubyte", images_bytes(0), false);
  write(tmp.path / "mnist" / "t10k-labels-idx1-ubyte", labels_bytes(0), false);
  e = test::error_of<DataError>([&] { MnistDataset ds(o); });
  EXPECT_NE(e.find("t10k-images-idx3-ubyte: holds no images"), std::string::npos) << e;
  std::string bad = labels_bytes(5);
  bad[8 + 3] = 42;
  write(tmp.path / "mnist" / "t10k-images-idx3-ubyte", images_bytes(5), false);
  write(tmp.path / "mnist" / "t10k-labels-idx1-ubyte", bad, false);
  e = test::error_of<DataError>([&] { MnistDataset ds(o); });
  EXPECT_NE(e.find("t10k-labels-idx1-ubyte: label 42 of record 3 is out of range 0-9"),
            std::string::npos)
      << e;
}

TEST(Mnist, MissingFilesSayWhatToPutWhere) {
  Tmp tmp;
  MnistOptions o;
  o.root(tmp.path / "empty");
  o.download(false);
  std::string e = test::error_of<DataError>([&] { MnistDataset ds(o); });
  EXPECT_NE(e.find("train-images-idx3-ubyte[.gz] not found under"), std::string::npos) << e;
  EXPECT_NE(e.find("DET_DATA_DIR"), std::string::npos) << e;
}

TEST(MnistDataTest, RealFilesHaveTheKnownShapeAndLabels) {
  const char* dir = std::getenv("DET_DATA_DIR");
  if (!dir) GTEST_SKIP() << "DET_DATA_DIR not set";
  MnistOptions o;
  o.root(dir);
  o.download(false);
  MnistDataset train(o);
  EXPECT_EQ(train.size(), 60000);
  EXPECT_EQ(train.labels()[0].item<int64_t>(), 5);  // the first training digit is a 5
  o.train(false);
  MnistDataset test(o);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(test.labels()[0].item<int64_t>(), 7);
  // torchvision's normalized mean over the training set is ~0.
  EXPECT_NEAR(train.images().mean().item<double>(), 0.0, 0.01);
}

}  // namespace
}  // namespace det::data
