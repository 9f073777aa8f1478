#include "det/data/image_folder.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>

#include "../peak_rss.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "support/test_support.h"

namespace det::data {
namespace {
namespace fs = std::filesystem;

const fs::path kFolderImages = fs::path(DET_TEST_DATA_DIR) / "images";

// Expected pixels from PIL's Image.open(f).convert("RGB")
// (scripts/testdata/make_image_expected.py).
TEST(ImageDecode, MatchesPilConvertRgbExactly) {
  auto manifest = nlohmann::json::parse(util::read_file(kFolderImages / "manifest.json"));
  ASSERT_EQ(manifest["cases"].size(), 8u);
  for (const auto& c : manifest["cases"]) {
    std::string file = c["file"];
    Image img = decode_image(util::read_file(kFolderImages / file), file);
    ASSERT_EQ(img.height, c["height"].get<int64_t>()) << file;
    ASSERT_EQ(img.width, c["width"].get<int64_t>()) << file;
    ASSERT_EQ(img.channels, 3) << file;
    std::string expected = util::read_file(kFolderImages / (file + ".rgb"));
    ASSERT_EQ(expected.size(), img.pixels.size()) << file;
    size_t differing = 0;
    for (size_t i = 0; i < expected.size(); ++i)
      differing += static_cast<uint8_t>(expected[i]) != img.pixels[i];
    EXPECT_EQ(differing, 0u) << file;
  }
}

TEST(ImageDecode, TruncatedAndGarbageAreDataErrors) {
  std::string jpg = util::read_file(kFolderImages / "rgb420.jpg");
  auto err = [](const std::string& bytes) {
    try {
      decode_image(bytes, "x.jpg");
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(err(jpg.substr(0, jpg.size() / 2)).find("x.jpg: cannot decode JPEG"),
            std::string::npos);
  std::string png = util::read_file(kFolderImages / "rgb.png");
  EXPECT_NE(err(png.substr(0, png.size() / 2)).find("cannot decode PNG"), std::string::npos);
  EXPECT_NE(err("GIF89a....").find("not a JPEG or PNG image"), std::string::npos);
  EXPECT_NE(err("").find("empty file"), std::string::npos);
}

std::string decode_error(const std::string& bytes, const std::string& file,
                         int64_t max_pixels = kPilMaxImagePixels) {
  try {
    decode_image(bytes, file, max_pixels);
  } catch (const DataError& e) {
    return e.what();
  }
  return "(no error)";
}

uint32_t crc(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

// The campaign's PNG bomb in 40 bytes: a signature and an IHDR claiming 30000x30000 RGB.
std::string png_claiming(uint32_t w, uint32_t h) {
  std::string ihdr =
      "IHDR" + test::be32(w) + test::be32(h) + std::string("\x08\x02\x00\x00\x00", 5);
  std::string s =
      std::string("\x89PNG\r\n\x1a\n", 8) + test::be32(13) + ihdr + test::be32(crc(ihdr));
  return s + std::string(40 - s.size(), '\0');
}

// A real JPEG whose frame header (SOF0) is patched to claim `h` x `w`.
std::string jpeg_claiming(uint16_t h, uint16_t w) {
  std::string j = util::read_file(kFolderImages / "rgb420.jpg");
  for (size_t i = 2; i + 9 < j.size();) {
    const auto m = static_cast<uint8_t>(j[i + 1]);
    if (m == 0xC0) {
      j[i + 5] = char(h >> 8), j[i + 6] = char(h & 0xff), j[i + 7] = char(w >> 8),
            j[i + 8] = char(w & 0xff);
      return j;
    }
    i += 2 + (static_cast<uint8_t>(j[i + 2]) << 8 | static_cast<uint8_t>(j[i + 3]));
  }
  ADD_FAILURE() << "no SOF0 in rgb420.jpg";
  return j;
}

// PIL's limit: over max_image_pixels a warning, over twice it an error raised from the header,
// before anything is decoded (peak memory stays where it was).
TEST(ImageLimits, BombsAreRefusedFromTheirHeaderBeforeDecoding) {
  std::string png = png_claiming(30000, 30000), jpg = jpeg_claiming(65500, 65500);
  ASSERT_EQ(png.size(), 40u);
  std::string e1, e2;
  int64_t rise = det::testing::peak_rss_rise([&] {
    e1 = decode_error(png, "bomb.png");
    e2 = decode_error(jpg, "bomb.jpg");
  });
  EXPECT_NE(e1.find("bomb.png: image of 30000x30000 (900000000 pixels) exceeds the limit of "
                    "178956970 pixels"),
            std::string::npos)
      << e1;
  EXPECT_NE(e1.find("DET_MAX_IMAGE_PIXELS"), std::string::npos) << e1;
  EXPECT_NE(e2.find("bomb.jpg: image of 65500x65500 (4290250000 pixels) exceeds the limit"),
            std::string::npos)
      << e2;
  EXPECT_EQ(e2.find('\n'), std::string::npos);
  // 20000x20000 is over twice PIL's default too.
  EXPECT_NE(decode_error(png_claiming(20000, 20000), "b.png").find("exceeds the limit"),
            std::string::npos);
  if (rise < 0) GTEST_SKIP() << "cannot measure peak memory here";
  EXPECT_LT(rise, int64_t{16} << 20);
}

TEST(ImageLimits, WarnOverTheLimitRefuseOverTwiceItZeroDisables) {
  std::string png = util::read_file(kFolderImages / "rgb.png"),
              jpg = util::read_file(kFolderImages / "rgb444.jpg");  // 37x23 = 851
  for (const auto& [bytes, name] : {std::pair{png, "a.png"}, std::pair{jpg, "a.jpg"}}) {
    EXPECT_EQ(decode_image(bytes, name, 500).width, 37)
        << name;  // over 500: decoded, with a warning
    EXPECT_NE(decode_error(bytes, name, 425)
                  .find("image of 37x23 (851 pixels) exceeds the limit of 850 pixels"),
              std::string::npos)
        << name;
    EXPECT_EQ(decode_image(bytes, name, 0).height, 23) << name;
  }
}

TEST(ImageLimits, DefaultComesFromTheEnvironment) {
  {
    test::ScopedEnv env("DET_MAX_IMAGE_PIXELS", "1000");
    EXPECT_EQ(default_max_image_pixels(), 1000);
    EXPECT_EQ(ImageFolderOptions().max_image_pixels(), 1000);
    EXPECT_NE(decode_error(png_claiming(50, 50), "x.png", default_max_image_pixels())
                  .find("exceeds the limit of 2000"),
              std::string::npos);
  }
  {
    test::ScopedEnv env("DET_MAX_IMAGE_PIXELS", "1e9");
    try {
      default_max_image_pixels();
      ADD_FAILURE();
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find("DET_MAX_IMAGE_PIXELS='1e9': expected a whole number"),
                std::string::npos);
    }
  }
  ::unsetenv("DET_MAX_IMAGE_PIXELS");
  EXPECT_EQ(default_max_image_pixels(), 89478485);
}

// In an ImageFolder an oversized image is an error naming it when read, or with
// skip_undecodable is left out at start-up (logged by name) without being decoded.
TEST(ImageLimits, ImageFolderRefusesOrSkipsOversizedImages) {
  fs::path root = fs::temp_directory_path() / ("det-bombs-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "c");
  fs::copy_file(kFolderImages / "rgb420.jpg", root / "c" / "a_good.jpg");
  std::ofstream(root / "c" / "b_bomb.png", std::ios::binary) << png_claiming(30000, 30000);
  std::ofstream(root / "c" / "c_bomb.jpg", std::ios::binary) << jpeg_claiming(65500, 65500);
  ImageFolder folder(ImageFolderOptions().root(root));
  ASSERT_EQ(folder.size(), 3);
  for (int64_t i : {1, 2}) {
    try {
      folder.image_window(i, [](int64_t h, int64_t w) { return Window{0, 0, h / 2, w / 2}; });
      ADD_FAILURE();
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(folder.path(i).string() + ": image of "),
                std::string::npos)
          << e.what();
    }
  }
  std::optional<ImageFolder> skipping;
  int64_t rise = det::testing::peak_rss_rise(
      [&] { skipping.emplace(ImageFolderOptions().root(root).skip_undecodable(true)); });
  EXPECT_EQ(skipping->size(), 1);
  EXPECT_EQ(skipping->skipped(), 2);
  EXPECT_EQ(skipping->image(0).width, 37);
  // A limit of its own (400: the 851-pixel good image is over twice it): nothing is left.
  try {
    ImageFolder strict(
        ImageFolderOptions().root(root).skip_undecodable(true).max_image_pixels(400));
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("all 3 images were skipped as undecodable"),
              std::string::npos)
        << e.what();
  }
  fs::remove_all(root);
  if (rise < 0) GTEST_SKIP() << "cannot measure peak memory here";
  EXPECT_LT(rise, int64_t{16} << 20);
}

// Decoding only a window of a JPEG (rows above skipped, rows below never decoded) gives exactly
// the pixels of a crop of the whole decoded image.
TEST(ImageFolder, WindowDecodingEqualsCroppingTheWholeImage) {
  fs::path root = fs::temp_directory_path() / ("det-window-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "c");
  for (const char* f : {"big420.jpg", "rgb420.jpg", "rgb444.jpg", "gray.jpg", "rgb.png"})
    fs::copy_file(kFolderImages / f, root / "c" / f);
  ImageFolder folder(ImageFolderOptions().root(root));
  SampleRng rng(7);
  int checked = 0;
  for (int64_t i = 0; i < folder.size(); ++i) {
    Image whole = folder.image(i);
    for (int trial = 0; trial < 150; ++trial) {
      Window w;
      Image part = folder.image_window(i, [&](int64_t h, int64_t wd) {
        EXPECT_EQ(h, whole.height);
        EXPECT_EQ(wd, whole.width);
        w.height = rng.randint(1, h);
        w.width = rng.randint(1, wd);
        w.top = rng.randint(0, h - w.height);
        w.left = rng.randint(0, wd - w.width);
        if (trial == 0) w = {0, 0, h, wd};
        return w;
      });
      Image expected = crop(whole, w.top, w.left, w.height, w.width);
      ASSERT_EQ(part.pixels, expected.pixels) << folder.path(i) << " window " << w.top << ","
                                              << w.left << " " << w.height << "x" << w.width;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 750);
  fs::remove_all(root);
}

TEST(ImageFolder, ClassesSortedFilesSortedNothingSilentlyDropped) {
  fs::path root = fs::temp_directory_path() / ("det-imagefolder-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "b_dog");
  fs::create_directories(root / "a_cat" / "nested");
  fs::copy_file(kFolderImages / "rgb420.jpg", root / "b_dog" / "2.jpg");
  fs::copy_file(kFolderImages / "rgb.png", root / "b_dog" / "1.PNG");
  fs::copy_file(kFolderImages / "gray.jpg", root / "a_cat" / "nested" / "x.jpeg");
  std::ofstream(root / "a_cat" / "notes.txt") << "not an image";
  std::ofstream(root / "a_cat" / "broken.jpg") << "\xff\xd8\xff garbage";

  ImageFolder folder(ImageFolderOptions().root(root));
  EXPECT_EQ(folder.classes(), (std::vector<std::string>{"a_cat", "b_dog"}));
  ASSERT_EQ(folder.size(), 4);
  EXPECT_EQ(folder.path(0).filename(), "broken.jpg");
  EXPECT_EQ(folder.path(1).filename(), "x.jpeg");
  EXPECT_EQ(folder.path(2).filename(), "1.PNG");
  EXPECT_EQ(folder.label(1), 0);
  EXPECT_EQ(folder.label(3), 1);
  EXPECT_EQ(folder.image(3).width, 37);
  try {
    folder.image(0);
    ADD_FAILURE();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("broken.jpg: cannot decode JPEG"), std::string::npos)
        << e.what();
  }
  ImageFolder skipping(ImageFolderOptions().root(root).skip_undecodable(true));
  EXPECT_EQ(skipping.size(), 3);
  EXPECT_EQ(skipping.skipped(), 1);
  fs::remove_all(root);
  EXPECT_THROW(ImageFolder(ImageFolderOptions().root(root)), DataError);
}

}  // namespace
}  // namespace det::data
