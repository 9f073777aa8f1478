#include "det/data/transforms.h"

#include <array>
#include <cmath>
#include <cstring>

#include "det/util/error.h"
#include "det/util/strings.h"
#include "transform_detail.h"

namespace det::data {

Image crop(const Image& src, int64_t y0, int64_t x0, int64_t h, int64_t w) {
  const bool inside = y0 >= 0 && x0 >= 0 && y0 + h <= src.height && x0 + w <= src.width;
  Image out = inside ? Image::uninitialized(h, w, src.channels) : Image(h, w, src.channels, 0);
  const int64_t c = src.channels;
  for (int64_t y = 0; y < h; ++y) {
    int64_t sy = y0 + y;
    if (sy < 0 || sy >= src.height) continue;
    int64_t x_begin = std::max<int64_t>(0, -x0), x_end = std::min<int64_t>(w, src.width - x0);
    if (x_end <= x_begin) continue;
    std::memcpy(out.row(y) + x_begin * c, src.row(sy) + (x0 + x_begin) * c,
                static_cast<size_t>((x_end - x_begin) * c));
  }
  return out;
}

void RandomCrop::apply(Image& image, SampleRng& rng) const {
  const int64_t h = image.height + 2 * padding_, w = image.width + 2 * padding_;
  if (h < size_ || w < size_)
    throw DataError("random_crop: crop size " + std::to_string(size_) +
                    " is larger than the padded image " + std::to_string(h) + "x" +
                    std::to_string(w));
  // torchvision: i = randint(0, h - th), j = randint(0, w - tw), inclusive.
  int64_t i = rng.randint(0, h - size_), j = rng.randint(0, w - size_);
  if (padding_ == 0 && i == 0 && j == 0 && h == size_ && w == size_) return;
  image = crop(image, i - padding_, j - padding_, size_, size_);
}

namespace {
// torchvision's center offset: zero-pad by (size - dim) // 2 before when the crop is larger;
// else round((dim - size) / 2) with Python's round-half-to-even.
int64_t center_offset(int64_t dim, int64_t size) {
  if (size > dim) return -((size - dim) / 2);
  return static_cast<int64_t>(std::nearbyint(static_cast<double>(dim - size) / 2.0));
}
}  // namespace

void CenterCrop::apply(Image& image, SampleRng&) const {
  if (image.height == size_ && image.width == size_) return;
  image = crop(image, center_offset(image.height, size_), center_offset(image.width, size_), size_,
               size_);
}

void RandomHorizontalFlip::apply(Image& image, SampleRng& rng) const {
  if (!rng.bernoulli(p_)) return;
  const int64_t c = image.channels;
  for (int64_t y = 0; y < image.height; ++y) {
    uint8_t* r = image.row(y);
    for (int64_t a = 0, b = image.width - 1; a < b; ++a, --b)
      for (int64_t k = 0; k < c; ++k) std::swap(r[a * c + k], r[b * c + k]);
  }
}

void RandomVerticalFlip::apply(Image& image, SampleRng& rng) const {
  if (!rng.bernoulli(p_)) return;
  const size_t row_bytes = static_cast<size_t>(image.width * image.channels);
  std::vector<uint8_t> tmp(row_bytes);
  for (int64_t a = 0, b = image.height - 1; a < b; ++a, --b) {
    std::memcpy(tmp.data(), image.row(a), row_bytes);
    std::memcpy(image.row(a), image.row(b), row_bytes);
    std::memcpy(image.row(b), tmp.data(), row_bytes);
  }
}

Pipeline::Pipeline(std::vector<std::shared_ptr<ImageTransform>> transforms, std::vector<float> mean,
                   std::vector<float> std)
    : transforms_(std::move(transforms)) {
  normalize(std::move(mean), std::move(std));
}

Pipeline::Pipeline() { normalize({}, {}); }

Pipeline& Pipeline::normalize(std::vector<float> mean, std::vector<float> std) {
  if (mean.size() != std.size()) throw Error("normalize: mean and std have different lengths");
  for (float s : std)
    if (s == 0) throw Error("normalize: std must not be 0");
  mean_ = std::move(mean);
  std_ = std::move(std);
  // One 256-entry table per normalized channel (one for all channels when there is a single
  // mean, or none), holding exactly what ToTensor (x / 255) then Normalize ((x - mean) / std)
  // compute in float32: the per-pixel work of to_tensor is then a lookup.
  luts_.assign(std::max<size_t>(mean_.size(), 1), {});
  for (size_t k = 0; k < luts_.size(); ++k) {
    for (int v = 0; v < 256; ++v) {
      float x = static_cast<float>(v) / 255.0f;
      if (!mean_.empty()) x = (x - mean_[k]) / std_[k];
      luts_[k][static_cast<size_t>(v)] = x;
    }
  }
  return *this;
}

void Pipeline::transform(Image& image, SampleRng& rng, size_t first) const {
  for (size_t i = first; i < transforms_.size(); ++i) transforms_[i]->apply(image, rng);
}

void Pipeline::to_tensor(const Image& image, float* out) const {
  const int64_t c = image.channels, hw = image.height * image.width;
  if (luts_.size() != 1 && static_cast<int64_t>(luts_.size()) != c)
    throw DataError("normalize: " + std::to_string(mean_.size()) + " means for an image with " +
                    std::to_string(c) + " channels");
  auto lut = [&](int64_t k) -> const std::array<float, 256>& {
    return luts_[luts_.size() == 1 ? 0 : static_cast<size_t>(k)];
  };
  const uint8_t* src = image.pixels.data();
  if (c == 3) {
    float *r = out, *g = out + hw, *b = out + 2 * hw;
    const auto &lr = lut(0), &lg = lut(1), &lb = lut(2);
    for (int64_t p = 0; p < hw; ++p, src += 3) {
      r[p] = lr[src[0]];
      g[p] = lg[src[1]];
      b[p] = lb[src[2]];
    }
    return;
  }
  for (int64_t k = 0; k < c; ++k) {
    const auto& l = lut(k);
    float* dst = out + k * hw;
    for (int64_t p = 0; p < hw; ++p) dst[p] = l[src[p * c + k]];
  }
}

const std::map<std::string, TransformFactory>& transform_factories() {
  static const std::map<std::string, TransformFactory> table = [] {
    std::map<std::string, TransformFactory> t;
    t["random_crop"] = [](Pipeline& p, const config::Args& a) {
      a.check_keys({"size", "padding"});
      p.add(std::make_shared<RandomCrop>(a.get<int64_t>("size", detail::kSizeRange),
                                         a.get<int64_t>("padding", 0, detail::kPaddingRange)));
    };
    t["center_crop"] = [](Pipeline& p, const config::Args& a) {
      a.check_keys({"size"});
      p.add(std::make_shared<CenterCrop>(a.get<int64_t>("size", detail::kSizeRange)));
    };
    t["random_horizontal_flip"] = [](Pipeline& p, const config::Args& a) {
      a.check_keys({"p"});
      p.add(std::make_shared<RandomHorizontalFlip>(
          a.get<double>("p", 0.5, detail::kProbabilityRange)));
    };
    t["random_vertical_flip"] = [](Pipeline& p, const config::Args& a) {
      a.check_keys({"p"});
      p.add(
          std::make_shared<RandomVerticalFlip>(a.get<double>("p", 0.5, detail::kProbabilityRange)));
    };
    detail::add_augment_transforms(t);
    detail::add_resize_transforms(t);
    return t;
  }();
  return table;
}

Pipeline Pipeline::from_json(const config::Args& spec) {
  Pipeline p;
  if (spec.is_null()) return p;
  if (!spec.is_array()) spec.fail_expected("a list of transforms");
  const auto& table = transform_factories();
  std::vector<std::string> known = {"normalize"};
  for (const auto& kv : table) known.push_back(kv.first);
  for (size_t i = 0; i < spec.size(); ++i) {
    const config::Args item = spec[i];
    std::string name;
    if (item.json().is_string()) {
      name = item.as<std::string>();
    } else if (item.is_object() && item.size() == 1) {
      name = item.keys().front();
    } else {
      item.fail_expected("a transform name or {name: {arguments}}");
    }
    if (name != "normalize" && table.find(name) == table.end())
      item.fail("unknown transform " + util::quote(name) + util::did_you_mean(name, known) +
                " (known: " + util::join(known, ", ") + ")");
    // The arguments: a mapping; nothing; or, for ColorJitter, just its strength (timm's
    // --color-jitter 0.4), read by its factory as `value`.
    const config::Args given =
        item.is_object() ? item[name]
                         : config::Args(nullptr, item.path() + "." + name, item.sources());
    config::Args args = given;
    if (given.is_null()) {
      args = config::Args(nlohmann::json::object(), given.path(), given.sources());
    } else if (given.json().is_number() && name == "color_jitter") {
      args = config::Args(nlohmann::json{{"value", given.json()}}, given.path(), given.sources());
    } else if (!given.is_object()) {
      given.fail_expected("a mapping of arguments");
    }
    if (name == "normalize") {
      args.check_keys({"mean", "std"});
      auto mean = args.get<std::vector<float>>("mean"), sd = args.get<std::vector<float>>("std");
      if (mean.size() != sd.size())
        args["std"].fail("has " + std::to_string(sd.size()) + " values and mean has " +
                         std::to_string(mean.size()) + "; give one of each per channel");
      for (float s : sd)
        if (s == 0) args["std"].fail("a standard deviation of 0 would divide by zero");
      p.normalize(std::move(mean), std::move(sd));
      continue;
    }
    table.at(name)(p, args);
  }
  return p;
}

}  // namespace det::data
