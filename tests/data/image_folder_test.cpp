#include "det/data/image_folder.h"

#include <gtest/gtest.h>

#include <fstream>

#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::data {
namespace {
namespace fs = std::filesystem;

const fs::path kDir = fs::path(DET_TEST_DATA_DIR) / "images";

// Expected pixels from PIL's Image.open(f).convert("RGB") (scripts/testdata/make_image_expected.py).
TEST(ImageDecode, MatchesPilConvertRgbExactly) {
  auto manifest = nlohmann::json::parse(util::read_file(kDir / "manifest.json"));
  ASSERT_EQ(manifest["cases"].size(), 8u);
  for (const auto& c : manifest["cases"]) {
    std::string file = c["file"];
    Image img = decode_image(util::read_file(kDir / file), file);
    ASSERT_EQ(img.height, c["height"].get<int64_t>()) << file;
    ASSERT_EQ(img.width, c["width"].get<int64_t>()) << file;
    ASSERT_EQ(img.channels, 3) << file;
    std::string expected = util::read_file(kDir / (file + ".rgb"));
    ASSERT_EQ(expected.size(), img.pixels.size()) << file;
    size_t differing = 0;
    for (size_t i = 0; i < expected.size(); ++i) differing += static_cast<uint8_t>(expected[i]) != img.pixels[i];
    EXPECT_EQ(differing, 0u) << file;
  }
}

TEST(ImageDecode, TruncatedAndGarbageAreDataErrors) {
  std::string jpg = util::read_file(kDir / "rgb420.jpg");
  auto err = [](const std::string& bytes) {
    try {
      decode_image(bytes, "x.jpg");
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(err(jpg.substr(0, jpg.size() / 2)).find("x.jpg: cannot decode JPEG"), std::string::npos);
  std::string png = util::read_file(kDir / "rgb.png");
  EXPECT_NE(err(png.substr(0, png.size() / 2)).find("cannot decode PNG"), std::string::npos);
  EXPECT_NE(err("GIF89a....").find("not a JPEG or PNG image"), std::string::npos);
  EXPECT_NE(err("").find("empty file"), std::string::npos);
}

// Decoding only a window of a JPEG (rows above skipped, rows below never decoded) gives exactly
// the pixels of a crop of the whole decoded image.
TEST(ImageFolder, WindowDecodingEqualsCroppingTheWholeImage) {
  fs::path root = fs::temp_directory_path() / ("det-window-" + std::to_string(::getpid()));
  fs::remove_all(root);
  fs::create_directories(root / "c");
  for (const char* f : {"big420.jpg", "rgb420.jpg", "rgb444.jpg", "gray.jpg", "rgb.png"}) fs::copy_file(kDir / f, root / "c" / f);
  ImageFolder folder({root, false});
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
      ASSERT_EQ(part.pixels, expected.pixels) << folder.path(i) << " window " << w.top << "," << w.left << " " << w.height
                                              << "x" << w.width;
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
  fs::copy_file(kDir / "rgb420.jpg", root / "b_dog" / "2.jpg");
  fs::copy_file(kDir / "rgb.png", root / "b_dog" / "1.PNG");
  fs::copy_file(kDir / "gray.jpg", root / "a_cat" / "nested" / "x.jpeg");
  std::ofstream(root / "a_cat" / "notes.txt") << "not an image";
  std::ofstream(root / "a_cat" / "broken.jpg") << "\xff\xd8\xff garbage";

  ImageFolder folder({root, false});
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
    EXPECT_NE(std::string(e.what()).find("broken.jpg: cannot decode JPEG"), std::string::npos) << e.what();
  }
  ImageFolder skipping({root, true});
  EXPECT_EQ(skipping.size(), 3);
  EXPECT_EQ(skipping.skipped(), 1);
  fs::remove_all(root);
  EXPECT_THROW(ImageFolder({root, false}), DataError);
}

}  // namespace
}  // namespace det::data
