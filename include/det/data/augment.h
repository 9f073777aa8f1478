#pragma once
/// \file
/// Photometric and policy augmentations with the semantics of torchvision's ColorJitter
/// and timm's RandAugment / RandomErasing on PIL images. Every PIL operation is reproduced with
/// the same integer and float arithmetic as Pillow's C code (Blend.c, Convert.c, Filter.c,
/// Geometry.c), so results match Pillow 9.4 bit for bit (see tests/data/augment_test.cpp).

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "det/data/image.h"
#include "det/data/transforms.h"

namespace det::data::augment {

/// An RGB colour (a grayscale image uses the first component).
using Color = std::array<uint8_t, 3>;

/// Pillow's resampling filters for Image.transform / Image.rotate.
enum class Resample { kBilinear, kBicubic };

// ---- Pillow primitives -------------------------------------------------------------------------

/// PIL Image.blend(a, b, alpha): a + alpha * (b - a) in C float, truncated for alpha in [0, 1]
/// and clipped to [0, 255] otherwise.
Image blend(const Image& a, const Image& b, double alpha);
/// PIL convert("L") of an RGB image: (R*19595 + G*38470 + B*7471 + 0x8000) >> 16 (1 channel).
Image to_luma(const Image& image);
/// PIL convert("HSV") of an RGB image (H, S, V in 0..255, 3 channels).
Image rgb_to_hsv(const Image& image);
/// PIL convert("RGB") of an HSV image.
Image hsv_to_rgb(const Image& image);
/// PIL Image.transform(size, AFFINE, (a, b, c, d, e, f), resample, fillcolor=fill): output pixel
/// (x, y) samples the input at (a*(x+.5) + b*(y+.5) + c, d*(x+.5) + e*(y+.5) + f); pixels whose
/// source lies outside the input keep `fill`.
Image affine(const Image& image, const std::array<double, 6>& matrix, Resample resample,
             const Color& fill);

// ---- torchvision.transforms.functional on PIL images --------------------------------------------

/// F.adjust_brightness: ImageEnhance.Brightness (blend with black).
Image adjust_brightness(const Image& image, double factor);
/// F.adjust_contrast: ImageEnhance.Contrast (blend with the rounded mean luma).
Image adjust_contrast(const Image& image, double factor);
/// F.adjust_saturation: ImageEnhance.Color (blend with the luma image).
Image adjust_saturation(const Image& image, double factor);
/// F.adjust_hue: HSV round trip adding uint8(hue_factor * 255) to H modulo 256; hue_factor in
/// [-0.5, 0.5]. Grayscale images are returned unchanged.
Image adjust_hue(const Image& image, double hue_factor);

// ---- timm auto_augment ops: `arg` is the op's argument after timm's level-to-arg mapping -------

/// ImageOps.autocontrast (cutoff 0): stretch each channel's [min, max] to [0, 255].
Image auto_contrast(const Image& image, double arg = 0);
/// ImageOps.equalize: per-channel histogram equalization.
Image equalize(const Image& image, double arg = 0);
/// ImageOps.invert.
Image invert(const Image& image, double arg = 0);
/// Image.rotate(degrees, resample, fillcolor=fill) about the centre, same size (counter-clockwise).
Image rotate(const Image& image, double degrees, Resample resample, const Color& fill);
/// ImageOps.posterize keeping `bits` high bits (>= 8: unchanged).
Image posterize(const Image& image, double bits);
/// ImageOps.solarize: invert every value >= threshold.
Image solarize(const Image& image, double threshold);
/// timm solarize_add: values below `threshold` get min(255, v + add).
Image solarize_add(const Image& image, double add, int threshold = 128);
/// ImageEnhance.Color (same as adjust_saturation).
Image color(const Image& image, double factor);
/// ImageEnhance.Contrast (same as adjust_contrast).
Image contrast(const Image& image, double factor);
/// ImageEnhance.Brightness (same as adjust_brightness).
Image brightness(const Image& image, double factor);
/// ImageEnhance.Sharpness: blend with ImageFilter.SMOOTH (border pixels are not filtered).
Image sharpness(const Image& image, double factor);
/// Affine (1, factor, 0, 0, 1, 0).
Image shear_x(const Image& image, double factor, Resample resample, const Color& fill);
/// Affine (1, 0, 0, factor, 1, 0).
Image shear_y(const Image& image, double factor, Resample resample, const Color& fill);
/// Affine translation by pct * width pixels (the content moves left for pct > 0).
Image translate_x_rel(const Image& image, double pct, Resample resample, const Color& fill);
/// Affine translation by pct * height pixels (the content moves up for pct > 0).
Image translate_y_rel(const Image& image, double pct, Resample resample, const Color& fill);

/// The ops of timm's _RAND_TRANSFORMS and _RAND_INCREASING_TRANSFORMS.
enum class Op {
  kAutoContrast,
  kEqualize,
  kInvert,
  kRotate,
  kPosterize,
  kPosterizeIncreasing,
  kSolarize,
  kSolarizeIncreasing,
  kSolarizeAdd,
  kColor,
  kColorIncreasing,
  kContrast,
  kContrastIncreasing,
  kBrightness,
  kBrightnessIncreasing,
  kSharpness,
  kSharpnessIncreasing,
  kShearX,
  kShearY,
  kTranslateXRel,
  kTranslateYRel
};

/// timm's op name ("PosterizeIncreasing", ...).
std::string op_name(Op op);
/// timm's LEVEL_TO_ARG for `op` at `magnitude` (0..10 scale); `negate` is the outcome of timm's
/// _randomly_negate for the ops that use it (ignored by the others).
double level_to_arg(Op op, double magnitude, bool negate, double translate_pct = 0.45);
/// Whether level_to_arg(op, ...) draws a random sign.
bool op_uses_sign(Op op);
/// Whether `op` resamples (and so draws a random filter in timm).
bool op_is_geometric(Op op);
/// Runs timm's NAME_TO_OP function for `op` with its argument.
Image apply_op(Op op, const Image& image, double arg, Resample resample, const Color& fill);

// ---- transforms --------------------------------------------------------------------------------

/// torchvision.transforms.ColorJitter(brightness, contrast, saturation, hue) on PIL images:
/// factors uniform in [lo, hi] (empty range = op off), applied in a random order.
class ColorJitter : public ImageTransform {
 public:
  /// The ranges as torchvision normalizes them: b/c/s -> [max(0, 1 - v), 1 + v], hue -> [-h, h].
  ColorJitter(double brightness, double contrast, double saturation, double hue);
  /// Explicit [lo, hi] ranges (a range with lo == hi == the identity disables that op).
  ColorJitter(std::array<double, 2> brightness, std::array<double, 2> contrast,
              std::array<double, 2> saturation, std::array<double, 2> hue);
  void apply(Image& image, SampleRng& rng) const override;
  std::string name() const override { return "color_jitter"; }

 private:
  // torchvision's _check_input yields None when the range is just the identity.
  std::array<double, 2> brightness_, contrast_, saturation_, hue_;
  bool use_brightness_, use_contrast_, use_saturation_, use_hue_;
};

/// Parsed timm RandAugment config string ("rand-m9-mstd0.5-inc1").
struct RandAugmentConfig {
  double magnitude = 10;      ///< m
  int num_layers = 2;         ///< n
  double magnitude_std = 0;   ///< mstd (> 100 = uniform in [0, magnitude], stored as +inf)
  double magnitude_max = 10;  ///< mmax (upper clip of a drawn magnitude)
  bool increasing = false;    ///< inc
  double prob = 0.5;          ///< p: probability of applying each chosen op
  int weight_index = -1;  ///< w: index of timm's op choice weights (-1 = uniform, with replacement)
  /// Parses timm's syntax; throws std::invalid_argument naming the bad section.
  static RandAugmentConfig parse(const std::string& config);
};

/// timm.data.auto_augment.RandAugment built by rand_augment_transform(config, hparams) with
/// create_transform's hparams (img_mean fill, random bilinear/bicubic resampling).
class RandAugment : public ImageTransform {
 public:
  /// `resample`: the filter of the geometric ops; unset = a random choice of bilinear and bicubic
  /// per op (timm's default when create_transform gets no interpolation, or 'random').
  explicit RandAugment(RandAugmentConfig config, Color fill = {124, 116, 104},
                       double translate_pct = 0.45,
                       std::optional<Resample> resample = std::nullopt);
  void apply(Image& image, SampleRng& rng) const override;
  std::string name() const override { return "rand_augment"; }
  /// The ops a layer chooses from (timm's _RAND_TRANSFORMS or _RAND_INCREASING_TRANSFORMS order).
  const std::vector<Op>& ops() const { return ops_; }
  /// The parsed config.
  const RandAugmentConfig& config() const { return config_; }

 private:
  RandAugmentConfig config_;
  Color fill_;
  double translate_pct_;
  std::optional<Resample> resample_;
  std::vector<Op> ops_;
  std::vector<double> weights_;  // empty: uniform choice with replacement
};

// ---- transforms on the normalized float tensor
// ---------------------------------------------------

/// timm.data.random_erasing.RandomErasing(probability, mode='pixel', min_area, max_area,
/// min_aspect, max_count): with `probability`, erase count in [min_count, max_count] rectangles
/// (each up to 10 attempts) with per-pixel standard normal values.
class RandomErasing : public TensorTransform {
 public:
  /// max_count 0 means min_count; throws std::invalid_argument on a probability outside [0, 1],
  /// min_area outside (0, max_area], min_aspect <= 0 or min_count < 1.
  RandomErasing(double probability = 0.5, double min_area = 0.02, double max_area = 1.0 / 3,
                double min_aspect = 0.3, int min_count = 1, int max_count = 0);
  void apply(float* chw, int64_t channels, int64_t height, int64_t width,
             SampleRng& rng) const override;
  std::string name() const override { return "random_erasing"; }

 private:
  double probability_, min_area_, max_area_, log_aspect_lo_, log_aspect_hi_;
  int min_count_, max_count_;
};

}  // namespace det::data::augment
