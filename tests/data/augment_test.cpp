#include "det/data/augment.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include <torch/torch.h>

#include "det/data/image_dataset.h"
#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::data {
namespace {

using augment::Op;
using augment::Resample;

const std::string kAugmentDir = std::string(DET_TEST_DATA_DIR) + "/augment/";

struct Expected {
  nlohmann::json manifest;
  std::map<std::string, Image> inputs;
  std::string blob;
};

const Expected& expected() {
  static const Expected e = [] {
    Expected x;
    x.manifest = nlohmann::json::parse(util::read_file(kAugmentDir + "manifest.json"));
    const int64_t h = x.manifest["height"], w = x.manifest["width"], c = x.manifest["channels"];
    for (const char* name : {"rand", "edgy", "dim"}) {
      Image img(h, w, c);
      std::string bytes = util::read_file(kAugmentDir + name + ".bin");
      EXPECT_EQ(bytes.size(), img.pixels.size());
      std::memcpy(img.pixels.data(), bytes.data(), img.pixels.size());
      x.inputs[name] = img;
    }
    x.blob = util::read_file(kAugmentDir + "expected.bin");
    return x;
  }();
  return e;
}

Image expected_output(const nlohmann::json& c, const Image& like) {
  Image out(like.height, like.width, like.channels);
  const auto offset = c["offset"].get<size_t>();
  EXPECT_LE(offset + out.pixels.size(), expected().blob.size());
  std::memcpy(out.pixels.data(), expected().blob.data() + offset, out.pixels.size());
  return out;
}

int max_abs_diff(const Image& a, const Image& b) {
  EXPECT_EQ(a.pixels.size(), b.pixels.size());
  int m = 0;
  for (size_t i = 0; i < std::min(a.pixels.size(), b.pixels.size()); ++i)
    m = std::max(m, std::abs(a.pixels[i] - b.pixels[i]));
  return m;
}

Op op_from_name(const std::string& name) {
  for (int i = 0; i <= static_cast<int>(Op::kTranslateYRel); ++i)
    if (augment::op_name(static_cast<Op>(i)) == name) return static_cast<Op>(i);
  ADD_FAILURE() << "unknown op " << name;
  return Op::kInvert;
}

Image test_image(int64_t h, int64_t w, uint64_t seed) {
  Image img(h, w, 3);
  SampleRng rng(seed);
  for (auto& p : img.pixels) p = static_cast<uint8_t>(rng.randint(0, 255));
  return img;
}

// ColorJitter's four ops against torchvision.transforms.functional on PIL (Pillow 9.4):
// integer-exact, so the difference must be 0.
TEST(ColorJitter, OpsMatchTorchvisionExactly) {
  int checked = 0;
  for (const auto& c : expected().manifest["cases"]) {
    const std::string op = c["op"];
    if (op.rfind("adjust_", 0) != 0) continue;
    const Image& in = expected().inputs.at(c["input"]);
    const double f = c["arg"];
    Image got;
    if (op == "adjust_brightness") got = augment::adjust_brightness(in, f);
    if (op == "adjust_contrast") got = augment::adjust_contrast(in, f);
    if (op == "adjust_saturation") got = augment::adjust_saturation(in, f);
    if (op == "adjust_hue") got = augment::adjust_hue(in, f);
    EXPECT_EQ(max_abs_diff(got, expected_output(c, in)), 0)
        << op << "(" << c["input"] << ", " << f << ")";
    ++checked;
  }
  EXPECT_EQ(checked, 30);
}

// Every RandAugment op (timm's functions, i.e. single Pillow calls) at fixed magnitudes, signs and
// resampling filters, plus the level -> argument mapping. Bilinear and bicubic affine transforms
// follow Geometry.c's double arithmetic, so these are exact too.
TEST(RandAugment, OpsMatchPillowExactly) {
  int checked = 0;
  std::map<std::string, int> worst;
  const auto& fill_json = expected().manifest["fill"];
  const augment::Color fill = {fill_json[0].get<uint8_t>(), fill_json[1].get<uint8_t>(),
                               fill_json[2].get<uint8_t>()};
  for (const auto& c : expected().manifest["cases"]) {
    const std::string name = c["op"];
    if (name.rfind("adjust_", 0) == 0) continue;
    const Op op = op_from_name(name);
    const double arg = c["arg"].is_null() ? 0.0 : c["arg"].get<double>();
    if (c.contains("magnitude")) {
      EXPECT_EQ(augment::level_to_arg(op, c["magnitude"], c["negate"]), arg)
          << name << " m=" << c["magnitude"];
    }
    const std::string r = c["resample"];
    const Resample resample = r == "bicubic" ? Resample::kBicubic : Resample::kBilinear;
    const Image& in = expected().inputs.at(c["input"]);
    const Image got = augment::apply_op(op, in, arg, resample, fill);
    const int d = max_abs_diff(got, expected_output(c, in));
    const std::string key = name + (r == "none" ? "" : "/" + r);
    worst[key] = std::max(worst[key], d);
    EXPECT_EQ(d, 0) << name << "(" << arg << ", " << r << ")";
    ++checked;
  }
  EXPECT_EQ(checked, 84);
  EXPECT_EQ(worst.size(), 20u);  // 10 photometric ops + 5 geometric ops x 2 filters
}

TEST(RandAugment, LevelToArgFollowsTimm) {
  EXPECT_DOUBLE_EQ(augment::level_to_arg(Op::kRotate, 9, false), 27.0);
  EXPECT_DOUBLE_EQ(augment::level_to_arg(Op::kRotate, 9, true), -27.0);
  EXPECT_EQ(augment::level_to_arg(Op::kPosterizeIncreasing, 9, false), 1);
  EXPECT_EQ(augment::level_to_arg(Op::kPosterize, 9, false), 3);
  EXPECT_EQ(augment::level_to_arg(Op::kSolarizeIncreasing, 9, false), 256 - 230);
  EXPECT_EQ(augment::level_to_arg(Op::kSolarizeAdd, 9, false), 99);
  EXPECT_DOUBLE_EQ(augment::level_to_arg(Op::kColorIncreasing, 9, false), 1.81);
  EXPECT_DOUBLE_EQ(augment::level_to_arg(Op::kColorIncreasing, 10, true),
                   0.1);  // max(0.1, 1 - 0.9)
  EXPECT_DOUBLE_EQ(augment::level_to_arg(Op::kShearX, 10, true), -0.3);
  EXPECT_DOUBLE_EQ(augment::level_to_arg(Op::kTranslateYRel, 10, false), 0.45);
  EXPECT_DOUBLE_EQ(augment::level_to_arg(Op::kTranslateYRel, 10, false, 0.2), 0.2);
}

TEST(RandAugment, ParsesTimmConfigStrings) {
  auto c = augment::RandAugmentConfig::parse("rand-m9-mstd0.5-inc1");
  EXPECT_EQ(c.magnitude, 9);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_DOUBLE_EQ(c.magnitude_std, 0.5);
  EXPECT_TRUE(c.increasing);
  EXPECT_DOUBLE_EQ(c.prob, 0.5);
  EXPECT_EQ(c.weight_index, -1);
  c = augment::RandAugmentConfig::parse("rand-n3-m7-mstd101-mmax15-p0.3-w0");
  EXPECT_EQ(c.magnitude, 7);
  EXPECT_EQ(c.num_layers, 3);
  EXPECT_TRUE(std::isinf(c.magnitude_std));
  EXPECT_EQ(c.magnitude_max, 15);
  EXPECT_FALSE(c.increasing);
  EXPECT_DOUBLE_EQ(c.prob, 0.3);
  EXPECT_EQ(c.weight_index, 0);
  EXPECT_EQ(augment::RandAugmentConfig::parse("rand").magnitude, 10);
  EXPECT_EQ(augment::RandAugmentConfig::parse("rand-inc").increasing,
            false);  // no digit: ignored, as timm
  for (const char* bad : {"randaug-m9", "rand-q3", "rand-m9x", "rand-m9.5", "rand-w1", "rand-p2"})
    EXPECT_THROW(augment::RandAugmentConfig::parse(bad), std::invalid_argument) << bad;
  EXPECT_EQ(augment::RandAugment(augment::RandAugmentConfig::parse("rand-inc1")).ops().size(), 15u);
  EXPECT_EQ(augment::op_name(
                augment::RandAugment(augment::RandAugmentConfig::parse("rand-inc1")).ops()[4]),
            "PosterizeIncreasing");
  EXPECT_EQ(
      augment::op_name(augment::RandAugment(augment::RandAugmentConfig::parse("rand")).ops()[4]),
      "Posterize");
}

// With p = 1, n = 1 and no magnitude noise, each output must be one of the 15 ops at magnitude m
// with some sign and filter; with p = 0 or n = 0 the image is untouched.
TEST(RandAugment, AppliesOneOfItsOpsPerLayer) {
  const Image img = expected().inputs.at("rand");
  const augment::Color fill = {124, 116, 104};
  augment::RandAugment ra(augment::RandAugmentConfig::parse("rand-m9-n1-p1-inc1"));
  std::vector<Image> candidates;
  for (Op op : ra.ops())
    for (bool negate : {false, true})
      for (Resample r : {Resample::kBilinear, Resample::kBicubic})
        candidates.push_back(
            augment::apply_op(op, img, augment::level_to_arg(op, 9, negate), r, fill));
  std::set<size_t> seen;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Image x = img;
    SampleRng rng(seed);
    ra.apply(x, rng);
    size_t k = 0;
    while (k < candidates.size() && candidates[k].pixels != x.pixels) ++k;
    ASSERT_LT(k, candidates.size()) << "seed " << seed;
    seen.insert(k / 4);  // the op
  }
  EXPECT_EQ(seen.size(), 15u);
  for (const char* cfg : {"rand-m9-n2-p0", "rand-m9-n0"}) {
    augment::RandAugment none(augment::RandAugmentConfig::parse(cfg));
    Image x = img;
    SampleRng rng(3);
    none.apply(x, rng);
    EXPECT_EQ(x.pixels, img.pixels) << cfg;
  }
  // The default policy: deterministic per stream, and it changes most images.
  augment::RandAugment dflt(augment::RandAugmentConfig::parse("rand-m9-mstd0.5-inc1"));
  int changed = 0;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    Image a = img, b = img;
    SampleRng r1(seed), r2(seed);
    dflt.apply(a, r1);
    dflt.apply(b, r2);
    EXPECT_EQ(a.pixels, b.pixels);
    changed += a.pixels != img.pixels;
  }
  EXPECT_GT(changed, 30);  // 1 - P(both ops skipped or identity) ~ 0.75
  // Weighted choice without replacement (w0) never picks Posterize or Invert (weight 0).
  augment::RandAugment weighted(augment::RandAugmentConfig::parse("rand-m9-n13-p1-mstd0-w0"));
  for (uint64_t seed = 0; seed < 3; ++seed) {
    Image x = img;
    SampleRng rng(seed);
    weighted.apply(x, rng);
  }
  EXPECT_THROW(augment::RandAugment(augment::RandAugmentConfig::parse("rand-n14-w0")),
               std::invalid_argument);
}

TEST(ColorJitter, DrawsFactorsInRangeAndAppliesEachOpOnce) {
  const Image img = expected().inputs.at("rand");
  // A degenerate range fixes the factor: the result is the op itself.
  augment::ColorJitter only_b({1.3, 1.3}, {1, 1}, {1, 1}, {0, 0});
  Image x = img;
  SampleRng rng(1);
  only_b.apply(x, rng);
  EXPECT_EQ(x.pixels, augment::adjust_brightness(img, 1.3).pixels);
  // Identity ranges switch every op off.
  augment::ColorJitter off(0, 0, 0, 0);
  x = img;
  off.apply(x, rng);
  EXPECT_EQ(x.pixels, img.pixels);
  // All four ops at fixed factors: the result is one of the 24 orders.
  augment::ColorJitter fixed({0.8, 0.8}, {1.2, 1.2}, {0.7, 0.7}, {0.1, 0.1});
  std::set<PixelBuffer> orders;
  std::array<int, 4> perm = {0, 1, 2, 3};
  do {
    Image y = img;
    for (int fn : perm) {
      if (fn == 0) y = augment::adjust_brightness(y, static_cast<float>(0.8));
      if (fn == 1) y = augment::adjust_contrast(y, static_cast<float>(1.2));
      if (fn == 2) y = augment::adjust_saturation(y, static_cast<float>(0.7));
      if (fn == 3) y = augment::adjust_hue(y, static_cast<float>(0.1));
    }
    orders.insert(y.pixels);
  } while (std::next_permutation(perm.begin(), perm.end()));
  std::set<PixelBuffer> outcomes;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Image y = img;
    SampleRng r(seed);
    fixed.apply(y, r);
    EXPECT_TRUE(orders.count(y.pixels)) << "seed " << seed;
    outcomes.insert(y.pixels);
  }
  EXPECT_GT(outcomes.size(), 5u);
  // Random factors: same stream, same result.
  augment::ColorJitter cj(0.4, 0.4, 0.4, 0.1);
  Image a = img, b = img;
  SampleRng r1(9), r2(9);
  cj.apply(a, r1);
  cj.apply(b, r2);
  EXPECT_EQ(a.pixels, b.pixels);
  EXPECT_NE(a.pixels, img.pixels);
  EXPECT_THROW(augment::ColorJitter(0, 0, 0, 0.6), std::invalid_argument);
  EXPECT_THROW(augment::ColorJitter(-0.1, 0, 0, 0), std::invalid_argument);
}

// timm RandomErasing('pixel') is stochastic: check its invariants and statistics.
TEST(RandomErasing, RectangleAreaValuesAndProbability) {
  const int64_t c = 3, h = 40, w = 56;
  const float sentinel = 7.5f;
  augment::RandomErasing re(1.0);
  double sum = 0, sum_sq = 0;
  int64_t n_values = 0;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    std::vector<float> t(static_cast<size_t>(c * h * w), sentinel);
    SampleRng rng(seed);
    re.apply(t.data(), c, h, w, rng);
    // The changed pixels form one rectangle, the same in every channel.
    int64_t y0 = h, y1 = -1, x0 = w, x1 = -1;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        if (t[static_cast<size_t>(y * w + x)] != sentinel)
          y0 = std::min(y0, y), y1 = std::max(y1, y), x0 = std::min(x0, x), x1 = std::max(x1, x);
    if (y1 < 0) continue;  // all 10 attempts missed (possible for tall/wide draws)
    const int64_t rh = y1 - y0 + 1, rw = x1 - x0 + 1;
    for (int64_t k = 0; k < c; ++k)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) {
          const float v = t[static_cast<size_t>((k * h + y) * w + x)];
          const bool inside = y >= y0 && y <= y1 && x >= x0 && x <= x1;
          ASSERT_EQ(v != sentinel, inside) << "seed " << seed;
          if (inside) sum += v, sum_sq += static_cast<double>(v) * v, ++n_values;
        }
    // Area within [0.02, 1/3] of the image up to the rounding of each side.
    const double area = static_cast<double>(h * w);
    EXPECT_GE(static_cast<double>((rh + 1) * (rw + 1)), 0.02 * area) << seed;
    EXPECT_LE(static_cast<double>((rh - 1) * (rw - 1)), area / 3) << seed;
    EXPECT_LT(rh, h);
    EXPECT_LT(rw, w);
  }
  const double mean = sum / static_cast<double>(n_values),
               var = sum_sq / static_cast<double>(n_values) - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.02);
  EXPECT_NEAR(var, 1.0, 0.03);

  // Probability: with a small max_area every attempt fits, so the erase rate is `probability`.
  augment::RandomErasing quarter(0.25, 0.02, 0.1);
  int erased = 0;
  const int trials = 4000;
  for (uint64_t seed = 0; seed < trials; ++seed) {
    std::vector<float> t(static_cast<size_t>(c * h * w), sentinel);
    SampleRng rng(seed);
    quarter.apply(t.data(), c, h, w, rng);
    erased += std::any_of(t.begin(), t.end(), [&](float v) { return v != sentinel; });
  }
  EXPECT_NEAR(static_cast<double>(erased) / trials, 0.25, 0.03);

  // Same stream, same output.
  std::vector<float> a(static_cast<size_t>(c * h * w), 0.f), b = a;
  SampleRng r1(42), r2(42);
  re.apply(a.data(), c, h, w, r1);
  re.apply(b.data(), c, h, w, r2);
  EXPECT_EQ(a, b);
  // max_count > 1: several rectangles, each of area / count.
  augment::RandomErasing multi(1.0, 0.02, 1.0 / 3, 0.3, 1, 4);
  std::vector<float> m(static_cast<size_t>(c * h * w), sentinel);
  SampleRng r3(5);
  multi.apply(m.data(), c, h, w, r3);
  EXPECT_TRUE(std::any_of(m.begin(), m.end(), [&](float v) { return v != sentinel; }));
}

class MemorySource : public ImageSource {
 public:
  explicit MemorySource(std::vector<Image> images) : images_(std::move(images)) {}
  int64_t size() const override { return static_cast<int64_t>(images_.size()); }
  Image image(int64_t i) const override { return images_[static_cast<size_t>(i)]; }
  int64_t label(int64_t i) const override { return i; }

 private:
  std::vector<Image> images_;
};

// The config names, and RandomErasing running on the normalized tensor inside ImageDataset.
TEST(AugmentConfig, BuildsPipelineAndErasesAfterNormalize) {
  auto spec = nlohmann::json::parse(R"([
      {"color_jitter": 0.4},
      {"rand_augment": {"config": "rand-m9-mstd0.5-inc1"}},
      {"random_erasing": {"probability": 1.0, "mode": "pixel", "max_count": 1}},
      {"normalize": {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}}])");
  Pipeline p = Pipeline::from_json({spec, "data.transforms.train"});
  ASSERT_EQ(p.transforms().size(), 2u);
  EXPECT_EQ(p.transforms()[0]->name(), "color_jitter");
  EXPECT_EQ(p.transforms()[1]->name(), "rand_augment");
  ASSERT_EQ(p.tensor_transforms().size(), 1u);  // runs after Normalize, as in timm
  EXPECT_EQ(p.tensor_transforms()[0]->name(), "random_erasing");
  // Constant gray images: after jitter/RandAugment the values stay in [-2, 2]; erased values are
  // normal draws, so some fall outside that range only if erasing ran after normalization.
  std::vector<Image> images(4, Image(32, 32, 3, 128));
  ImageDataset ds(std::make_shared<MemorySource>(images), p);
  BatchRequest req;
  req.indices = {0, 1, 2, 3};
  req.seed = 11;
  Batch b1 = ds.get_batch(req), b2 = ds.get_batch(req);
  ASSERT_EQ(b1.data.sizes(), torch::IntArrayRef({4, 3, 32, 32}));
  EXPECT_TRUE(torch::equal(b1.data, b2.data));
  EXPECT_GT((b1.data.abs() > 2.0f).sum().item<int64_t>(), 0);

  // Only the erasing stage, added as a tensor transform: outside the rectangle the values are
  // exactly Normalize's.
  Pipeline q;
  q.normalize({0.5f}, {0.25f});
  q.add(std::make_shared<augment::RandomErasing>(1.0));
  ImageDataset ds2(std::make_shared<MemorySource>(images), q);
  Batch b3 = ds2.get_batch(req);
  const float normalized = (128.0f / 255.0f - 0.5f) / 0.25f;
  const auto untouched = (b3.data == normalized).sum().item<int64_t>();
  EXPECT_GT(untouched, 4 * 3 * 32 * 32 / 2);
  EXPECT_LT(untouched, 4 * 3 * 32 * 32);
}

TEST(AugmentConfig, ErrorsNameTheEntry) {
  auto err = [](const std::string& spec) {
    try {
      Pipeline::from_json({nlohmann::json::parse(spec), "data.transforms.train"});
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  auto has = [](const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos ? ::testing::AssertionSuccess()
                                             : ::testing::AssertionFailure() << s;
  };
  EXPECT_EQ(err(R"([{"color_jitter": {"brightness": 0.4, "contrast": [0.5, 1.5], "hue": 0.1}}])"),
            "(no error)");
  EXPECT_TRUE(
      has(err(R"([{"color_jitter": {"brightness": -0.4}}])"),
          "data.transforms.train[0].color_jitter.brightness: expected a number >= 0, found -0.4"));
  EXPECT_TRUE(
      has(err(R"([{"color_jitter": {"hue": 0.7}}])"),
          "data.transforms.train[0].color_jitter.hue: expected a number from 0 to 0.5, found 0.7"));
  EXPECT_TRUE(has(err(R"([{"color_jitter": {"hue": [0.1, 0.9]}}])"),
                  "data.transforms.train[0].color_jitter: hue range"));
  EXPECT_TRUE(has(err(R"([{"color_jitter": {"brightnes": 0.4}}])"),
                  "color_jitter.brightnes: unknown key 'brightnes', did you mean 'brightness'?"));
  EXPECT_TRUE(has(err(R"([{"color_jitter": {"contrast": "high"}}])"),
                  "color_jitter.contrast: expected a number"));
  EXPECT_TRUE(has(err(R"([{"color_jitter": [0.4]}])"), "expected a mapping of arguments"));
  EXPECT_EQ(err(R"(["rand_augment"])"), "(no error)");
  EXPECT_TRUE(
      has(err(R"([{"rand_augment": {"config": "rand-m9-x4"}}])"),
          "data.transforms.train[0].rand_augment.config: 'rand-m9-x4': unknown section 'x4'"));
  EXPECT_TRUE(has(err(R"([{"rand_augment": {"config": "augmix-m3"}}])"), "must start with 'rand'"));
  EXPECT_TRUE(
      has(err(R"([{"rand_augment": {"config": 9}}])"), "rand_augment.config: expected a string"));
  EXPECT_TRUE(
      has(err(R"([{"rand_augment": {"fill": [1, 2]}}])"), "rand_augment.fill: expected 3 values"));
  EXPECT_TRUE(has(err(R"([{"random_erasing": {"probability": 0.25, "mode": "const"}}])"),
                  "data.transforms.train[0].random_erasing.mode: only 'pixel'"));
  EXPECT_TRUE(has(err(R"([{"random_erasing": {"probability": 1.5}}])"),
                  "data.transforms.train[0].random_erasing: probability must be in [0, 1]"));
  EXPECT_TRUE(has(err(R"([{"random_erasing": {"max_count": 1, "min_count": 2}}])"),
                  "min_count <= max_count"));
  EXPECT_TRUE(has(err(R"([{"random_erasing": {"probabilty": 0.5}}])"), "unknown key 'probabilty'"));
}

// Pillow corner cases beyond the fixed images.
TEST(AugmentOps, PillowCornerCases) {
  const Image img = test_image(5, 4, 3);
  const Image inv = augment::invert(img);
  // Image.blend's shortcuts, and clipping when extrapolating.
  EXPECT_EQ(augment::blend(img, inv, 0.0).pixels, img.pixels);
  EXPECT_EQ(augment::blend(img, inv, 1.0).pixels, inv.pixels);
  const Image far = augment::blend(img, inv, 300.0);  // |inv - img| >= 1, so every value clips
  for (size_t i = 0; i < img.pixels.size(); ++i)
    EXPECT_EQ(far.pixels[i], img.pixels[i] == inv.pixels[i]  ? img.pixels[i]
                             : inv.pixels[i] > img.pixels[i] ? 255
                                                             : 0);
  // Rotation fast paths: 0/360 copy, two half turns are the identity.
  EXPECT_EQ(augment::rotate(img, 360, Resample::kBicubic, {0, 0, 0}).pixels, img.pixels);
  EXPECT_EQ(augment::rotate(augment::rotate(img, 180, Resample::kBilinear, {0, 0, 0}), -180,
                            Resample::kBilinear, {0, 0, 0})
                .pixels,
            img.pixels);
  // Grayscale images: hue and saturation leave them alone; geometric ops use fill[0].
  Image gray(6, 7, 1);
  for (size_t i = 0; i < gray.pixels.size(); ++i) gray.pixels[i] = static_cast<uint8_t>(i * 37);
  EXPECT_EQ(augment::adjust_hue(gray, 0.3).pixels, gray.pixels);
  EXPECT_EQ(augment::adjust_saturation(gray, 0.3).pixels, gray.pixels);
  const Image moved = augment::translate_x_rel(gray, 0.5, Resample::kBilinear, {9, 8, 7});
  EXPECT_EQ(moved.at(0, 6, 0), 9);
  // Shifted by 3.5 px: output x = 0 samples between input x = 3 and 4, truncated.
  const int a = gray.at(2, 3, 0), b = gray.at(2, 4, 0);
  EXPECT_EQ(moved.at(2, 0, 0), static_cast<int>(a + (b - a) * 0.5));
  // Sharpness on an image too small for the 3x3 kernel is a blend with itself.
  const Image thin = test_image(2, 9, 4);
  EXPECT_EQ(augment::sharpness(thin, 1.7).pixels, augment::blend(thin, thin, 1.7).pixels);
  EXPECT_THROW(augment::adjust_hue(img, 0.6), DataError);
}

}  // namespace
}  // namespace det::data
