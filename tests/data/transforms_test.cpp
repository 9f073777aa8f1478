#include "det/data/transforms.h"

#include <gtest/gtest.h>

#include <fstream>

#include "det/config/experiment_config.h"
#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::data {
namespace {

const std::string kTransformsDir = std::string(DET_TEST_DATA_DIR) + "/transforms/";

Image load_input(const nlohmann::json& c) {
  auto shape = c["input_shape"].get<std::vector<int64_t>>();
  Image img(shape[0], shape[1], shape.size() > 2 ? shape[2] : 1);
  std::string bytes = util::read_file(kTransformsDir + c["name"].get<std::string>() + ".input.bin");
  EXPECT_EQ(bytes.size(), img.pixels.size());
  std::memcpy(img.pixels.data(), bytes.data(), img.pixels.size());
  return img;
}

std::vector<float> load_expected(const nlohmann::json& c) {
  std::string bytes =
      util::read_file(kTransformsDir + c["name"].get<std::string>() + ".expected.bin");
  std::vector<float> v(bytes.size() / 4);
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

// Expected tensors from torchvision (scripts/testdata/make_transform_expected.py).
TEST(Transforms, MatchTorchvisionOnFixedImages) {
  auto manifest = nlohmann::json::parse(util::read_file(kTransformsDir + "manifest.json"));
  int checked = 0;
  for (const auto& c : manifest["cases"]) {
    std::string name = c["name"];
    Image img = load_input(c);
    SampleRng rng(0);
    Pipeline p;
    if (c.contains("mean"))
      p.normalize(c["mean"].get<std::vector<float>>(), c["std"].get<std::vector<float>>());
    if (name.rfind("center_crop", 0) == 0)
      p.add(std::make_shared<CenterCrop>(c["size"].get<int64_t>()));
    if (name == "hflip") p.add(std::make_shared<RandomHorizontalFlip>(1.0));
    if (name == "vflip") p.add(std::make_shared<RandomVerticalFlip>(1.0));
    p.transform(img, rng);
    if (name.rfind("pad4_crop", 0) == 0) {
      int64_t pad = c["padding"];
      img = crop(img, c["top"].get<int64_t>() - pad, c["left"].get<int64_t>() - pad, c["size"],
                 c["size"]);
    }
    auto expected = load_expected(c);
    auto out_shape = c["output_shape"].get<std::vector<int64_t>>();
    ASSERT_EQ(img.channels, out_shape[0]) << name;
    ASSERT_EQ(img.height, out_shape[1]) << name;
    ASSERT_EQ(img.width, out_shape[2]) << name;
    std::vector<float> got(expected.size());
    p.to_tensor(img, got.data());
    double max_err = 0;
    for (size_t i = 0; i < got.size(); ++i)
      max_err = std::max(max_err, static_cast<double>(std::abs(got[i] - expected[i])));
    EXPECT_LT(max_err, 1e-6) << name;
    ++checked;
  }
  EXPECT_EQ(checked, 10);
}

TEST(Transforms, RandomCropAndFlipDependOnlyOnTheSampleStream) {
  Image img(32, 32, 3);
  for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = static_cast<uint8_t>(i * 7);
  Pipeline p;
  p.add(std::make_shared<RandomCrop>(32, 4)).add(std::make_shared<RandomHorizontalFlip>(0.5));
  auto run = [&](uint64_t seed) {
    Image x = img;
    SampleRng rng(seed);
    p.transform(x, rng);
    return x.pixels;
  };
  EXPECT_EQ(run(5), run(5));
  int differing = 0, flipped_or_shifted = 0;
  for (uint64_t s = 0; s < 50; ++s) {
    differing += run(s) != run(s + 1000);
    flipped_or_shifted += run(s) != img.pixels;
  }
  EXPECT_GT(differing, 40);
  EXPECT_GT(flipped_or_shifted, 45);
  // Every offset of a 4-pixel padding is reachable: 9 x 9 positions.
  std::set<PixelBuffer> outcomes;
  Pipeline crop_only;
  crop_only.add(std::make_shared<RandomCrop>(32, 4));
  for (uint64_t s = 0; s < 3000; ++s) {
    Image x = img;
    SampleRng rng(s);
    crop_only.transform(x, rng);
    outcomes.insert(x.pixels);
  }
  EXPECT_EQ(outcomes.size(), 81u);
}

TEST(Transforms, FromConfigAndItsErrors) {
  auto p =
      Pipeline::from_json({nlohmann::json::parse(R"([{"random_crop": {"size": 32, "padding": 4}},
      "random_horizontal_flip", {"normalize": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}])"),
                           "data.transforms.train"});
  ASSERT_EQ(p.transforms().size(), 2u);
  EXPECT_EQ(p.transforms()[0]->name(), "random_crop");
  auto err = [](const char* spec) {
    try {
      Pipeline::from_json({nlohmann::json::parse(spec), "data.transforms.train"});
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(err(R"(["random_hflip_x"])").find("data.transforms.train[0]: unknown transform"),
            std::string::npos);
  EXPECT_NE(err(R"(["random_horizontal_fip"])").find("did you mean 'random_horizontal_flip'"),
            std::string::npos);
  EXPECT_NE(err(R"([{"random_crop": {"padding": 4}}])")
                .find("data.transforms.train[0].random_crop.size: expected an integer from 1 to "
                      "65536, found nothing"),
            std::string::npos);
  EXPECT_NE(err(R"([{"normalize": {"mean": [0.5]}}])")
                .find("normalize.std: expected a list, found nothing"),
            std::string::npos);
  EXPECT_NE(err(R"({"a": 1})").find("expected a list of transforms"), std::string::npos);
  // Only color_jitter takes a bare number; elsewhere it would be silently ignored.
  EXPECT_NE(err(R"([{"random_horizontal_flip": 0.3}])")
                .find("data.transforms.train[0].random_horizontal_flip: expected a mapping of "
                      "arguments, found 0.3"),
            std::string::npos);
  EXPECT_NE(err(R"([{"random_crop": {"size": 32.5}}])")
                .find("random_crop.size: expected an integer from 1 to 65536, found 32.5"),
            std::string::npos);
  EXPECT_NE(err(R"([{"random_horizontal_flip": {"p": 2}}])")
                .find("random_horizontal_flip.p: expected a number from 0 to 1"),
            std::string::npos);
  EXPECT_NE(err(R"([{"random_crop": {"size": 32, "pad": 4}}])")
                .find("random_crop.pad: unknown key 'pad'"),
            std::string::npos);
  EXPECT_NE(err(R"([{"normalize": {"mean": [0.5], "std": [0]}}])")
                .find("normalize.std: a standard deviation of 0"),
            std::string::npos);
}

TEST(Transforms, ErrorsNameTheLineOfTheConfigFile) {
  auto c = config::parse_experiment_config(R"(data:
  transforms:
    train:
      - random_horizontal_flip
      - random_crop: {size: 32, padding: -4}
searcher: {name: single, metric: m, max_length: 1}
)",
                                           "exp.yaml");
  try {
    Pipeline::from_json(config::Args(c.data, "data", c.sources).child("transforms")["train"]);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "exp.yaml:5:42: data.transforms.train[1].random_crop.padding: expected an integer "
                 "from 0 to 65536, "
                 "found -4");
  }
}

}  // namespace
}  // namespace det::data
