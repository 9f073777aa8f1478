#include "det/data/resize.h"

#include <gtest/gtest.h>

#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::data {
namespace {
namespace fs = std::filesystem;

const fs::path kResizeDir = fs::path(DET_TEST_DATA_DIR) / "resize";

Image load(const std::string& name, const std::vector<int64_t>& shape) {
  Image img(shape[0], shape[1], shape[2]);
  std::string bytes = util::read_file(kResizeDir / (name + ".rgb"));
  EXPECT_EQ(bytes.size(), img.pixels.size()) << name;
  std::memcpy(img.pixels.data(), bytes.data(), std::min(bytes.size(), img.pixels.size()));
  return img;
}

// Expected pixels from PIL through torchvision.transforms.functional (resize, resized_crop),
// with the AVX2 path (where the CPU has it) and with the portable one.
TEST(Resize, MatchesPilByteForByte) {
  int checked = 0;
  auto manifest = nlohmann::json::parse(util::read_file(kResizeDir / "manifest.json"));
  for (bool avx2 : {true, false}) {
    bool previous = set_resize_simd(avx2);
    for (const auto& c : manifest["cases"]) {
      std::string name = c["name"];
      Image in = load(c["input"], c["input_shape"].get<std::vector<int64_t>>());
      Image expected = load(name, c["output_shape"].get<std::vector<int64_t>>());
      auto filter = parse_interpolation(c["interpolation"], "test");
      Image got;
      SampleRng rng(0);
      if (c.contains("top")) {
        got = resize(crop(in, c["top"], c["left"], c["height"], c["width"]), c["size"], c["size"],
                     filter);
      } else if (c.contains("size")) {
        got = in;
        Resize(c["size"].get<int64_t>(), filter).apply(got, rng);
      } else {
        got = resize(in, c["height"], c["width"], filter);
      }
      ASSERT_EQ(got.height, expected.height) << name;
      ASSERT_EQ(got.width, expected.width) << name;
      size_t differing = 0;
      for (size_t i = 0; i < got.pixels.size(); ++i)
        differing += got.pixels[i] != expected.pixels[i];
      EXPECT_EQ(differing, 0u) << name << (resize_simd() ? " (avx2)" : " (portable)");
      ++checked;
    }
    set_resize_simd(previous);
  }
  EXPECT_EQ(checked, 28);
}

TEST(RandomResizedCrop, CropsFollowScaleAndRatio) {
  RandomResizedCrop rrc(224, {0.08, 1.0}, {3.0 / 4.0, 4.0 / 3.0});
  int fallback = 0;
  for (uint64_t s = 0; s < 2000; ++s) {
    SampleRng rng(s);
    auto [top, left, h, w] = rrc.crop_params(375, 500, rng);
    ASSERT_GE(top, 0);
    ASSERT_GE(left, 0);
    ASSERT_LE(top + h, 375);
    ASSERT_LE(left + w, 500);
    double area = static_cast<double>(h * w) / (375.0 * 500.0),
           ratio = static_cast<double>(w) / static_cast<double>(h);
    if (h == 375 && w == 500) {
      ++fallback;
      continue;
    }
    EXPECT_GE(area, 0.075);
    EXPECT_LE(area, 1.01);
    EXPECT_GE(ratio, 0.74);
    EXPECT_LE(ratio, 1.35);
  }
  EXPECT_LT(fallback, 20);
  // A tall thin image forces the central fallback: width kept, height from the largest ratio bound.
  RandomResizedCrop tight(8, {0.99, 1.0}, {1.0, 1.0});
  SampleRng rng(1);
  auto p = tight.crop_params(100, 10, rng);
  EXPECT_EQ(p, (std::array<int64_t, 4>{45, 0, 10, 10}));
  Image img(40, 30, 3, 7);
  rrc.apply(img, rng);
  EXPECT_EQ(img.height, 224);
  EXPECT_EQ(img.width, 224);
  EXPECT_EQ(img.at(100, 100, 1), 7);
}

TEST(Resize, FromConfig) {
  auto p = Pipeline::from_json(
      {nlohmann::json::parse(
           R"([{"random_resized_crop": {"size": 224, "scale": [0.08, 1.0], "interpolation": "bicubic"}},
                                       {"resize": {"size": [32, 48]}}])"),
       "data.transforms.train"});
  ASSERT_EQ(p.transforms().size(), 2u);
  EXPECT_EQ(p.transforms()[0]->name(), "random_resized_crop");
  EXPECT_THROW(
      Pipeline::from_json(
          {nlohmann::json::parse(R"([{"resize": {"size": 3, "interpolation": "lanczos"}}])"), "x"}),
      ConfigError);
  EXPECT_THROW(
      Pipeline::from_json(
          {nlohmann::json::parse(R"([{"random_resized_crop": {"size": 3, "scale": [1.0, 0.5]}}])"),
           "x"}),
      ConfigError);
}

}  // namespace
}  // namespace det::data
