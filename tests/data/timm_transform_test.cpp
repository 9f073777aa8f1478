#include "det/data/timm_transform.h"

#include <gtest/gtest.h>

#include "det/data/augment.h"
#include "det/data/resize.h"
#include "det/util/error.h"

namespace det::data {
namespace {

std::vector<std::string> names(const Pipeline& p) {
  std::vector<std::string> out;
  for (const auto& t : p.transforms()) out.push_back(t->name());
  for (const auto& t : p.tensor_transforms()) out.push_back(t->name());
  return out;
}

const std::vector<float> kMean = {0.4914f, 0.4822f, 0.4465f}, kStd = {0.2470f, 0.2435f, 0.2616f};

// The ShiftViT example's transform sections (spec/models.md 6.3).
TEST(TimmTransform, ShiftVitCifarAndImagenetSections) {
  auto cifar = nlohmann::json::parse(
      R"({"scale": [0.9, 1.0], "ratio": [0.9, 1.1], "hflip": 0.5, "vflip": 0.0,
      "color_jitter": 0.1, "auto_augment": null, "interpolation": "bicubic", "re_prob": 0.1, "re_mode": "pixel", "re_count": 1})");
  Pipeline train = make_timm_transform({cifar, "hyperparameters.transform"}, 32, kMean, kStd, true);
  EXPECT_EQ(names(train), (std::vector<std::string>{"random_resized_crop", "random_horizontal_flip",
                                                    "color_jitter", "random_erasing"}));
  Pipeline eval = make_timm_transform({cifar, "hyperparameters.transform"}, 32, kMean, kStd, false);
  EXPECT_EQ(names(eval), (std::vector<std::string>{"resize", "center_crop"}));
  Image img(32, 32, 3, 100);
  SampleRng rng(3);
  eval.transform(img, rng);
  EXPECT_EQ(img.height, 32);  // Resize(floor(32 / 0.875) = 36) then CenterCrop(32)

  auto imagenet = nlohmann::json::parse(
      R"({"scale": [0.08, 1.0], "ratio": [0.75, 1.33], "hflip": 0.5, "vflip": 0.0,
      "color_jitter": 0.4, "auto_augment": "rand-m9-mstd0.5-inc1", "interpolation": "bicubic", "re_prob": 0.25,
      "re_mode": "pixel", "re_count": 1})");
  Pipeline in_train = make_timm_transform({imagenet, "t"}, 224, {0.485f, 0.456f, 0.406f},
                                          {0.229f, 0.224f, 0.225f}, true);
  // RandAugment replaces ColorJitter, as in timm.
  EXPECT_EQ(names(in_train),
            (std::vector<std::string>{"random_resized_crop", "random_horizontal_flip",
                                      "rand_augment", "random_erasing"}));
  Image big(300, 400, 3, 50);
  in_train.transform(big, rng);
  EXPECT_EQ(big.height, 224);
  EXPECT_EQ(big.width, 224);

  // MNIST: one channel, no jitter, no erasing.
  auto mnist = nlohmann::json::parse(
      R"({"scale": [1, 1], "ratio": [1, 1], "hflip": 0, "vflip": 0, "color_jitter": 0,
      "auto_augment": null, "interpolation": "bicubic", "re_prob": 0, "re_mode": "pixel", "re_count": 1})");
  EXPECT_EQ(names(make_timm_transform({mnist, "t"}, 28, {0.1307f}, {0.3081f}, true)),
            (std::vector<std::string>{"random_resized_crop"}));
}

TEST(TimmTransform, MistakesAreConfigErrors) {
  auto err = [](const char* j) {
    try {
      make_timm_transform({nlohmann::json::parse(j), "hyperparameters.transform"}, 32, kMean, kStd,
                          true);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(err(R"({"hflp": 0.5})")
                .find("hyperparameters.transform.hflp: unknown key 'hflp', did you mean 'hflip'?"),
            std::string::npos);
  EXPECT_NE(err(R"({"scale": [1.0, 0.5]})").find("scale: expected [low, high]"), std::string::npos);
  EXPECT_NE(
      err(R"({"interpolation": "lanczos"})").find("interpolation must be bilinear or bicubic"),
      std::string::npos);
  EXPECT_NE(err(R"({"auto_augment": "v0"})").find("only RandAugment policies"), std::string::npos);
  EXPECT_NE(err(R"({"re_prob": 0.2, "re_mode": "const"})").find("only 'pixel' random erasing"),
            std::string::npos);
}

}  // namespace
}  // namespace det::data
