#pragma once
/// \file
/// Resampling transforms with PIL's filters (what torchvision's Resize and
/// RandomResizedCrop run on PIL images): separable convolution with the filter support scaled
/// when downsampling (antialiasing) and PIL's 22-bit fixed-point rounding, so results equal
/// PIL's byte for byte.

#include <array>
#include <cstdint>
#include <string>
#include <utility>

#include "det/data/transforms.h"

namespace det::data {

/// Resampling filter.
enum class Interpolation { kBilinear, kBicubic };

/// "bilinear" or "bicubic" (throws ConfigError naming `at` otherwise).
Interpolation parse_interpolation(const std::string& name, const std::string& at);

/// Whether resize uses its AVX2 code path (by default: when the CPU has AVX2). Both paths give
/// identical results; this switch exists to test and compare them. Returns the previous setting.
bool set_resize_simd(bool enabled);
/// The current setting of set_resize_simd.
bool resize_simd();

/// `image` resized to out_height x out_width as PIL's Image.resize((w, h), filter).
Image resize(const Image& image, int64_t out_height, int64_t out_width, Interpolation filter);

/// torchvision.transforms.Resize(size): with one size the shorter side becomes `size` and the
/// longer one keeps the aspect ratio (truncated); with (h, w) that exact size.
class Resize : public ImageTransform {
 public:
  /// The shorter side becomes `size`, the other keeps the aspect ratio (truncated).
  Resize(int64_t size, Interpolation filter = Interpolation::kBilinear)
      : height_(size), width_(-1), filter_(filter) {}
  /// Exactly `height` x `width`.
  Resize(int64_t height, int64_t width, Interpolation filter)
      : height_(height), width_(width), filter_(filter) {}
  void apply(Image& image, SampleRng& rng) const override;
  std::string name() const override { return "resize"; }

 private:
  int64_t height_, width_;  // width_ < 0: height_ is the shorter side
  Interpolation filter_;
};

/// torchvision.transforms.RandomResizedCrop(size, scale, ratio, interpolation) (and timm's
/// RandomResizedCropAndInterpolation, which may pick the filter at random): a crop with a random
/// area fraction in `scale` and log-uniform aspect ratio in `ratio` (10 attempts, then the
/// central crop), resized to size x size.
class RandomResizedCrop : public WindowTransform {
 public:
  /// Output `size` x `size`; `random_filter` picks bilinear or bicubic per image (timm's 'random').
  RandomResizedCrop(int64_t size, std::pair<double, double> scale = {0.08, 1.0},
                    std::pair<double, double> ratio = {3.0 / 4.0, 4.0 / 3.0},
                    Interpolation filter = Interpolation::kBilinear, bool random_filter = false)
      : size_(size), scale_(scale), ratio_(ratio), filter_(filter), random_filter_(random_filter) {}
  Window choose_window(int64_t height, int64_t width, SampleRng& rng) const override;
  void apply_to_window(Image& window, SampleRng& rng) const override;
  std::string name() const override { return "random_resized_crop"; }
  /// The crop (top, left, height, width) torchvision's get_params would choose for these draws.
  std::array<int64_t, 4> crop_params(int64_t height, int64_t width, SampleRng& rng) const;

 private:
  int64_t size_;
  std::pair<double, double> scale_, ratio_;
  Interpolation filter_;
  bool random_filter_;
};

}  // namespace det::data
