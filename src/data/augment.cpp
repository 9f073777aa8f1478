// Photometric and policy augmentations (ColorJitter, RandAugment, RandomErasing).
//
// Each Pillow routine is re-derived from its C source with the same number types (C float vs
// double, truncating casts, evaluation order), because that is what makes 8-bit results match
// Pillow exactly rather than "within one".
#include "det/data/augment.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>

#include "det/util/error.h"
#include "det/util/strings.h"
#include "transform_detail.h"

namespace det::data::augment {
namespace {

uint8_t clip8(int v) { return static_cast<uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v); }

void require_rgb_or_gray(const Image& image, const char* what) {
  if (image.channels != 1 && image.channels != 3)
    throw DataError(std::string(what) + ": expected a 1- or 3-channel image, found " +
                    std::to_string(image.channels) + " channels");
}

// Image.point with one 256-entry table used for every band.
Image apply_lut(const Image& image, const std::array<uint8_t, 256>& lut) {
  Image out = image;
  for (auto& p : out.pixels) p = lut[p];
  return out;
}

// Image.point with one table per band (the layout of ImageOps' histogram-based luts).
Image apply_band_luts(const Image& image, const std::vector<std::array<uint8_t, 256>>& luts) {
  Image out = image;
  const auto c = static_cast<size_t>(image.channels);
  for (size_t i = 0; i < out.pixels.size(); ++i) out.pixels[i] = luts[i % c][out.pixels[i]];
  return out;
}

std::vector<std::array<int64_t, 256>> histograms(const Image& image) {
  std::vector<std::array<int64_t, 256>> h(static_cast<size_t>(image.channels));
  for (auto& band : h) band.fill(0);
  const auto c = static_cast<size_t>(image.channels);
  for (size_t i = 0; i < image.pixels.size(); ++i) ++h[i % c][image.pixels[i]];
  return h;
}

// A constant image shaped like `like`.
Image filled(const Image& like, const Color& fill) {
  Image out(like.height, like.width, like.channels);
  const auto c = static_cast<size_t>(like.channels);
  for (size_t i = 0; i < out.pixels.size(); ++i) out.pixels[i] = c == 1 ? fill[0] : fill[i % c];
  return out;
}

// Python's float `a % b` (result has the sign of b).
double py_mod(double a, double b) {
  double m = std::fmod(a, b);
  if (m != 0) {
    if ((b < 0) != (m < 0)) m += b;
  } else {
    m = std::copysign(0.0, b);
  }
  return m;
}

// Python's round(x, 15): correctly rounded to 15 decimals (glibc printf and strtod are exact).
double py_round15(double x) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.15f", x);
  return std::strtod(buf, nullptr);
}

// Py_MATH_PI, as math.radians uses.
constexpr double kPi = 3.14159265358979323846;

int pil_floor(double x) { return x < 0.0 ? static_cast<int>(std::floor(x)) : static_cast<int>(x); }

// Geometry.c bilinear_filter32RGB / bilinear_filter8.
bool bilinear_sample(const Image& im, double xin, double yin, uint8_t* out) {
  const int xsize = static_cast<int>(im.width), ysize = static_cast<int>(im.height),
            c = static_cast<int>(im.channels);
  if (xin < 0.0 || xin >= xsize || yin < 0.0 || yin >= ysize) return false;
  xin -= 0.5;
  yin -= 0.5;
  const int x = pil_floor(xin), y = pil_floor(yin);
  const double dx = xin - x, dy = yin - y;
  auto xclip = [&](int v) { return v < 0 ? 0 : v < xsize ? v : xsize - 1; };
  auto yclip = [&](int v) { return v < 0 ? 0 : v < ysize ? v : ysize - 1; };
  const int x0 = xclip(x) * c, x1 = xclip(x + 1) * c;
  for (int b = 0; b < c; ++b) {
    const uint8_t* in = im.row(yclip(y)) + b;
    double v1 = in[x0] + (in[x1] - in[x0]) * dx, v2;
    if (y + 1 >= 0 && y + 1 < ysize) {
      in = im.row(y + 1) + b;
      v2 = in[x0] + (in[x1] - in[x0]) * dx;
    } else {
      v2 = v1;
    }
    v1 = v1 + (v2 - v1) * dy;
    out[b] = static_cast<uint8_t>(v1);
  }
  return true;
}

// Pillow's cubic convolution (a = -1) through four samples at offset d.
inline double cubic(double v1, double v2, double v3, double v4, double d) {
  const double p1 = v2;
  const double p2 = -v1 + v3;
  const double p3 = 2 * (v1 - v2) + v3 - v4;
  const double p4 = -v1 + v2 - v3 + v4;
  return p1 + d * (p2 + d * (p3 + d * p4));
}

// Geometry.c bicubic_filter32RGB / bicubic_filter8 (rows past the image repeat the previous
// row's value; columns are clamped).
bool bicubic_sample(const Image& im, double xin, double yin, uint8_t* out) {
  const int xsize = static_cast<int>(im.width), ysize = static_cast<int>(im.height),
            c = static_cast<int>(im.channels);
  if (xin < 0.0 || xin >= xsize || yin < 0.0 || yin >= ysize) return false;
  xin -= 0.5;
  yin -= 0.5;
  int x = pil_floor(xin), y = pil_floor(yin);
  const double dx = xin - x, dy = yin - y;
  --x;
  --y;
  auto xclip = [&](int v) { return v < 0 ? 0 : v < xsize ? v : xsize - 1; };
  auto yclip = [&](int v) { return v < 0 ? 0 : v < ysize ? v : ysize - 1; };
  const int x0 = xclip(x) * c, x1 = xclip(x + 1) * c, x2 = xclip(x + 2) * c, x3 = xclip(x + 3) * c;
  for (int b = 0; b < c; ++b) {
    auto row_value = [&](int yy) {
      const uint8_t* in = im.row(yy) + b;
      return cubic(in[x0], in[x1], in[x2], in[x3], dx);
    };
    const double v1 = row_value(yclip(y));
    const double v2 = (y + 1 >= 0 && y + 1 < ysize) ? row_value(y + 1) : v1;
    const double v3 = (y + 2 >= 0 && y + 2 < ysize) ? row_value(y + 2) : v2;
    const double v4 = (y + 3 >= 0 && y + 3 < ysize) ? row_value(y + 3) : v3;
    const double v = cubic(v1, v2, v3, v4, dy);
    out[b] = v <= 0.0 ? 0 : v >= 255.0 ? 255 : static_cast<uint8_t>(v);
  }
  return true;
}

// Filter.c ImagingFilter3x3 with ImageFilter.SMOOTH ((1 1 1; 1 5 1; 1 1 1) / 13): float sums
// with +0.5 folded into the offset, truncated; the one-pixel border is copied unchanged.
Image smooth(const Image& image) {
  if (image.width < 3 || image.height < 3) return image;
  float k[9];
  for (int i = 0; i < 9; ++i) k[i] = (i == 4 ? 5.0f : 1.0f) / 13.0f;
  const float offset = 0.0f + 0.5f;
  Image out = image;
  const int64_t c = image.channels;
  for (int64_t y = 1; y < image.height - 1; ++y) {
    const uint8_t* in_1 = image.row(y - 1);
    const uint8_t* in0 = image.row(y);
    const uint8_t* in1 = image.row(y + 1);
    uint8_t* dst = out.row(y);
    for (int64_t x = 1; x < image.width - 1; ++x) {
      for (int64_t b = 0; b < c; ++b) {
        const int64_t i = x * c + b;
        auto k1x3 = [&](const uint8_t* r, const float* kk) {
          return static_cast<float>(r[i - c]) * kk[0] + static_cast<float>(r[i]) * kk[1] +
                 static_cast<float>(r[i + c]) * kk[2];
        };
        float ss = offset;
        ss += k1x3(in1, &k[0]);
        ss += k1x3(in0, &k[3]);
        ss += k1x3(in_1, &k[6]);
        ss = ss < 0.0f ? 0.0f : ss;
        ss = ss > 255.0f ? 255.0f : ss;
        dst[i] = static_cast<uint8_t>(ss);
      }
    }
  }
  return out;
}

}  // namespace

// ---- Pillow primitives -------------------------------------------------------------------------

Image blend(const Image& a, const Image& b, double alpha_in) {
  if (a.pixels.size() != b.pixels.size()) throw DataError("blend: images differ in size");
  // Image.blend passes alpha to C as a float; so does the arithmetic.
  const float alpha = static_cast<float>(alpha_in);
  if (alpha == 0.0f) return a;
  if (alpha == 1.0f) return b;
  Image out(a.height, a.width, a.channels);
  const size_t n = a.pixels.size();
  if (alpha >= 0 && alpha <= 1.0f) {
    for (size_t i = 0; i < n; ++i) {
      const int p = a.pixels[i], q = b.pixels[i];
      out.pixels[i] =
          static_cast<uint8_t>(static_cast<float>(p) + alpha * static_cast<float>(q - p));
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      const int p = a.pixels[i], q = b.pixels[i];
      const float t = static_cast<float>(p) + alpha * static_cast<float>(q - p);
      out.pixels[i] = t <= 0.0f ? 0 : t >= 255.0f ? 255 : static_cast<uint8_t>(t);
    }
  }
  return out;
}

Image to_luma(const Image& image) {
  if (image.channels == 1) return image;
  require_rgb_or_gray(image, "to_luma");
  Image out(image.height, image.width, 1);
  for (size_t i = 0, j = 0; j < out.pixels.size(); i += 3, ++j) {
    const uint32_t l = image.pixels[i] * 19595u + image.pixels[i + 1] * 38470u +
                       image.pixels[i + 2] * 7471u + 0x8000u;
    out.pixels[j] = static_cast<uint8_t>(l >> 16);
  }
  return out;
}

namespace {
Image gray_to_rgb(const Image& gray) {
  Image out(gray.height, gray.width, 3);
  for (size_t j = 0; j < gray.pixels.size(); ++j)
    out.pixels[3 * j] = out.pixels[3 * j + 1] = out.pixels[3 * j + 2] = gray.pixels[j];
  return out;
}
}  // namespace

Image rgb_to_hsv(const Image& image) {
  if (image.channels != 3) throw DataError("rgb_to_hsv: expected 3 channels");
  Image out(image.height, image.width, 3);
  for (size_t i = 0; i < image.pixels.size(); i += 3) {
    const uint8_t r = image.pixels[i], g = image.pixels[i + 1], b = image.pixels[i + 2];
    const uint8_t maxc = std::max(r, std::max(g, b)), minc = std::min(r, std::min(g, b));
    uint8_t uh = 0, us = 0;
    if (minc != maxc) {
      // Convert.c rgb2hsv_row: float temporaries, double literals.
      const float cr = static_cast<float>(maxc - minc);
      const float s = cr / static_cast<float>(maxc);
      const float rc = static_cast<float>(maxc - r) / cr;
      const float gc = static_cast<float>(maxc - g) / cr;
      const float bc = static_cast<float>(maxc - b) / cr;
      float h;
      if (r == maxc)
        h = bc - gc;
      else if (g == maxc)
        h = static_cast<float>(2.0 + rc - bc);
      else
        h = static_cast<float>(4.0 + gc - rc);
      h = static_cast<float>(std::fmod(h / 6.0 + 1.0, 1.0));
      uh = clip8(static_cast<int>(h * 255.0));
      us = clip8(static_cast<int>(s * 255.0));
    }
    out.pixels[i] = uh;
    out.pixels[i + 1] = us;
    out.pixels[i + 2] = maxc;
  }
  return out;
}

Image hsv_to_rgb(const Image& image) {
  if (image.channels != 3) throw DataError("hsv_to_rgb: expected 3 channels");
  Image out(image.height, image.width, 3);
  for (size_t k = 0; k < image.pixels.size(); k += 3) {
    const uint8_t h = image.pixels[k], s = image.pixels[k + 1], v = image.pixels[k + 2];
    uint8_t* o = out.pixels.data() + k;
    if (s == 0) {
      o[0] = o[1] = o[2] = v;
      continue;
    }
    // Convert.c hsv2rgb.
    const int i = static_cast<int>(std::floor(static_cast<float>(h) * 6.0 / 255.0));
    const float f = static_cast<float>(static_cast<float>(h) * 6.0 / 255.0 - static_cast<float>(i));
    const float fs = static_cast<float>(static_cast<float>(s) / 255.0);
    const uint8_t up = clip8(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs))));
    const uint8_t uq = clip8(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs * f))));
    const uint8_t ut =
        clip8(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs * (1.0 - f)))));
    switch (i % 6) {
      case 0:
        o[0] = v, o[1] = ut, o[2] = up;
        break;
      case 1:
        o[0] = uq, o[1] = v, o[2] = up;
        break;
      case 2:
        o[0] = up, o[1] = v, o[2] = ut;
        break;
      case 3:
        o[0] = up, o[1] = uq, o[2] = v;
        break;
      case 4:
        o[0] = ut, o[1] = up, o[2] = v;
        break;
      default:
        o[0] = v, o[1] = up, o[2] = uq;
        break;
    }
  }
  return out;
}

Image affine(const Image& image, const std::array<double, 6>& a, Resample resample,
             const Color& fill) {
  require_rgb_or_gray(image, "affine");
  Image out = filled(image, fill);
  const auto sample = resample == Resample::kBicubic ? bicubic_sample : bilinear_sample;
  for (int64_t y = 0; y < out.height; ++y) {
    uint8_t* dst = out.row(y);
    for (int64_t x = 0; x < out.width; ++x) {
      // Geometry.c affine_transform: pixel centres, evaluated left to right.
      const double xin = static_cast<double>(x) + 0.5, yin = static_cast<double>(y) + 0.5;
      const double xx = a[0] * xin + a[1] * yin + a[2];
      const double yy = a[3] * xin + a[4] * yin + a[5];
      sample(image, xx, yy, dst + x * image.channels);  // outside: the pixel keeps `fill`
    }
  }
  return out;
}

// ---- torchvision.transforms.functional ---------------------------------------------------------

Image adjust_brightness(const Image& image, double factor) {
  return blend(Image(image.height, image.width, image.channels, 0), image, factor);
}

Image adjust_contrast(const Image& image, double factor) {
  require_rgb_or_gray(image, "adjust_contrast");
  const Image luma = to_luma(image);
  // ImageStat mean of the L histogram, then int(mean + 0.5).
  double sum = 0;
  std::array<int64_t, 256> h{};
  for (uint8_t p : luma.pixels) ++h[p];
  for (int i = 0; i < 256; ++i)
    sum += static_cast<double>(i) * static_cast<double>(h[static_cast<size_t>(i)]);
  const double mean = luma.pixels.empty() ? 0.0 : sum / static_cast<double>(luma.pixels.size());
  const auto m = static_cast<uint8_t>(static_cast<int>(mean + 0.5));
  return blend(Image(image.height, image.width, image.channels, m), image, factor);
}

Image adjust_saturation(const Image& image, double factor) {
  require_rgb_or_gray(image, "adjust_saturation");
  if (image.channels == 1) return blend(image, image, factor);
  return blend(gray_to_rgb(to_luma(image)), image, factor);
}

Image adjust_hue(const Image& image, double hue_factor) {
  if (!(hue_factor >= -0.5 && hue_factor <= 0.5))
    throw DataError("adjust_hue: hue_factor " + std::to_string(hue_factor) +
                    " is not in [-0.5, 0.5]");
  require_rgb_or_gray(image, "adjust_hue");
  if (image.channels == 1) return image;
  Image hsv = rgb_to_hsv(image);
  // np.uint8(hue_factor * 255): truncation toward zero, then modulo 256.
  const auto shift = static_cast<uint8_t>(static_cast<int64_t>(hue_factor * 255.0) & 0xFF);
  for (size_t i = 0; i < hsv.pixels.size(); i += 3)
    hsv.pixels[i] = static_cast<uint8_t>(hsv.pixels[i] + shift);
  return hsv_to_rgb(hsv);
}

// ---- timm ops ----------------------------------------------------------------------------------

Image auto_contrast(const Image& image, double) {
  std::vector<std::array<uint8_t, 256>> luts;
  for (const auto& h : histograms(image)) {
    std::array<uint8_t, 256> lut{};
    int lo = 0, hi = 255;
    while (lo < 256 && h[static_cast<size_t>(lo)] == 0) ++lo;
    while (hi >= 0 && h[static_cast<size_t>(hi)] == 0) --hi;
    if (hi <= lo) {
      for (int i = 0; i < 256; ++i) lut[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
    } else {
      const double scale = 255.0 / (hi - lo), offset = -lo * scale;
      for (int i = 0; i < 256; ++i)
        lut[static_cast<size_t>(i)] = clip8(static_cast<int>(i * scale + offset));
    }
    luts.push_back(lut);
  }
  return apply_band_luts(image, luts);
}

Image equalize(const Image& image, double) {
  std::vector<std::array<uint8_t, 256>> luts;
  for (const auto& h : histograms(image)) {
    std::array<uint8_t, 256> lut{};
    for (int i = 0; i < 256; ++i) lut[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
    int64_t total = 0, last = 0, nonzero = 0;
    for (int64_t v : h)
      if (v) total += v, last = v, ++nonzero;
    const int64_t step = nonzero <= 1 ? 0 : (total - last) / 255;
    if (step) {
      int64_t n = step / 2;
      for (int i = 0; i < 256; ++i) {
        lut[static_cast<size_t>(i)] =
            static_cast<uint8_t>(std::min<int64_t>(255, n / step));  // point() clips
        n += h[static_cast<size_t>(i)];
      }
    }
    luts.push_back(lut);
  }
  return apply_band_luts(image, luts);
}

Image invert(const Image& image, double) {
  Image out = image;
  for (auto& p : out.pixels) p = static_cast<uint8_t>(255 - p);
  return out;
}

Image rotate(const Image& image, double degrees, Resample resample, const Color& fill) {
  // Image.rotate(expand=False, center=None): exact fast paths first, then an affine about the
  // centre with the matrix rounded to 15 decimals as Pillow does.
  const double angle = py_mod(degrees, 360.0);
  if (angle == 0) return image;
  if (angle == 180) {
    Image out = image;
    const int64_t n = image.height * image.width, c = image.channels;
    for (int64_t p = 0; p < n; ++p)
      for (int64_t k = 0; k < c; ++k)
        out.pixels[static_cast<size_t>(p * c + k)] =
            image.pixels[static_cast<size_t>((n - 1 - p) * c + k)];
    return out;
  }
  if ((angle == 90 || angle == 270) && image.width == image.height) {
    Image out(image.height, image.width, image.channels);
    const int64_t s = image.width, c = image.channels;
    for (int64_t y = 0; y < s; ++y)
      for (int64_t x = 0; x < s; ++x)
        for (int64_t k = 0; k < c; ++k)
          // ROTATE_90 (counter-clockwise): out(y, x) = in(x, s-1-y); ROTATE_270: in(s-1-x, y).
          out.at(y, x, k) = angle == 90 ? image.at(x, s - 1 - y, k) : image.at(s - 1 - x, y, k);
    return out;
  }
  const double cx = static_cast<double>(image.width) / 2.0,
               cy = static_cast<double>(image.height) / 2.0;
  const double rad = -(angle * (kPi / 180.0));  // math.radians
  std::array<double, 6> m = {py_round15(std::cos(rad)),  py_round15(std::sin(rad)), 0.0,
                             py_round15(-std::sin(rad)), py_round15(std::cos(rad)), 0.0};
  const double tx = -cx - 0, ty = -cy - 0;
  const double m2 = m[0] * tx + m[1] * ty + m[2], m5 = m[3] * tx + m[4] * ty + m[5];
  m[2] = m2 + cx;
  m[5] = m5 + cy;
  return affine(image, m, resample, fill);
}

Image posterize(const Image& image, double bits_arg) {
  const int bits = static_cast<int>(bits_arg);
  if (bits >= 8) return image;
  const int mask = ~((1 << (8 - std::max(0, bits))) - 1);
  std::array<uint8_t, 256> lut{};
  for (int i = 0; i < 256; ++i) lut[static_cast<size_t>(i)] = static_cast<uint8_t>(i & mask);
  return apply_lut(image, lut);
}

Image solarize(const Image& image, double threshold) {
  std::array<uint8_t, 256> lut{};
  for (int i = 0; i < 256; ++i)
    lut[static_cast<size_t>(i)] = static_cast<uint8_t>(i < threshold ? i : 255 - i);
  return apply_lut(image, lut);
}

Image solarize_add(const Image& image, double add, int threshold) {
  std::array<uint8_t, 256> lut{};
  const int a = static_cast<int>(add);
  for (int i = 0; i < 256; ++i)
    lut[static_cast<size_t>(i)] = static_cast<uint8_t>(i < threshold ? std::min(255, i + a) : i);
  return apply_lut(image, lut);
}

Image color(const Image& image, double factor) { return adjust_saturation(image, factor); }
Image contrast(const Image& image, double factor) { return adjust_contrast(image, factor); }
Image brightness(const Image& image, double factor) { return adjust_brightness(image, factor); }
Image sharpness(const Image& image, double factor) { return blend(smooth(image), image, factor); }

Image shear_x(const Image& image, double factor, Resample resample, const Color& fill) {
  return affine(image, {1, factor, 0, 0, 1, 0}, resample, fill);
}
Image shear_y(const Image& image, double factor, Resample resample, const Color& fill) {
  return affine(image, {1, 0, 0, factor, 1, 0}, resample, fill);
}
Image translate_x_rel(const Image& image, double pct, Resample resample, const Color& fill) {
  return affine(image, {1, 0, pct * static_cast<double>(image.width), 0, 1, 0}, resample, fill);
}
Image translate_y_rel(const Image& image, double pct, Resample resample, const Color& fill) {
  return affine(image, {1, 0, 0, 0, 1, pct * static_cast<double>(image.height)}, resample, fill);
}

// ---- ColorJitter -------------------------------------------------------------------------------

namespace {
std::array<double, 2> jitter_range(double v, double center, const char* what) {
  if (v < 0)
    throw std::invalid_argument(std::string(what) + " must be non-negative, found " +
                                std::to_string(v));
  return {center == 1 ? std::max(0.0, center - v) : center - v, center + v};
}
}  // namespace

ColorJitter::ColorJitter(double b, double c, double s, double h)
    : ColorJitter(jitter_range(b, 1, "brightness"), jitter_range(c, 1, "contrast"),
                  jitter_range(s, 1, "saturation"), jitter_range(h, 0, "hue")) {}

ColorJitter::ColorJitter(std::array<double, 2> b, std::array<double, 2> c, std::array<double, 2> s,
                         std::array<double, 2> h)
    : brightness_(b), contrast_(c), saturation_(s), hue_(h) {
  auto check = [](const std::array<double, 2>& r, double lo, double hi, const char* what) {
    if (!(r[0] >= lo && r[0] <= r[1] && r[1] <= hi))
      throw std::invalid_argument(std::string(what) + " range [" + std::to_string(r[0]) + ", " +
                                  std::to_string(r[1]) + "] is not within [" + std::to_string(lo) +
                                  ", " + std::to_string(hi) + "]");
  };
  const double inf = std::numeric_limits<double>::infinity();
  check(b, 0, inf, "brightness");
  check(c, 0, inf, "contrast");
  check(s, 0, inf, "saturation");
  check(h, -0.5, 0.5, "hue");
  use_brightness_ = !(b[0] == 1 && b[1] == 1);
  use_contrast_ = !(c[0] == 1 && c[1] == 1);
  use_saturation_ = !(s[0] == 1 && s[1] == 1);
  use_hue_ = !(h[0] == 0 && h[1] == 0);
}

void ColorJitter::apply(Image& image, SampleRng& rng) const {
  // torchvision: fn_idx = randperm(4), then one float32 factor per enabled op.
  std::array<int, 4> order = {0, 1, 2, 3};
  for (int i = 3; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.randint(0, i))]);
  auto draw = [&](const std::array<double, 2>& r) {
    return static_cast<double>(static_cast<float>(rng.uniform(r[0], r[1])));
  };
  const double bf = use_brightness_ ? draw(brightness_) : 1,
               cf = use_contrast_ ? draw(contrast_) : 1;
  const double sf = use_saturation_ ? draw(saturation_) : 1, hf = use_hue_ ? draw(hue_) : 0;
  for (int fn : order) {
    if (fn == 0 && use_brightness_) image = adjust_brightness(image, bf);
    if (fn == 1 && use_contrast_) image = adjust_contrast(image, cf);
    if (fn == 2 && use_saturation_) image = adjust_saturation(image, sf);
    if (fn == 3 && use_hue_) image = adjust_hue(image, hf);
  }
}

// ---- tensor transforms -------------------------------------------------------------------------

RandomErasing::RandomErasing(double probability, double min_area, double max_area,
                             double min_aspect, int min_count, int max_count)
    : probability_(probability),
      min_area_(min_area),
      max_area_(max_area),
      log_aspect_lo_(std::log(min_aspect)),
      log_aspect_hi_(std::log(1.0 / min_aspect)),
      min_count_(min_count),
      max_count_(max_count > 0 ? max_count : min_count) {
  if (probability < 0 || probability > 1)
    throw std::invalid_argument("probability must be in [0, 1]");
  if (!(min_area > 0 && min_area <= max_area))
    throw std::invalid_argument("need 0 < min_area <= max_area");
  if (!(min_aspect > 0)) throw std::invalid_argument("min_aspect must be positive");
  if (min_count < 1 || max_count_ < min_count)
    throw std::invalid_argument("need 1 <= min_count <= max_count");
}

void RandomErasing::apply(float* chw, int64_t channels, int64_t height, int64_t width,
                          SampleRng& rng) const {
  // timm RandomErasing._erase (mode 'pixel').
  if (rng.uniform() > probability_) return;
  const double area = static_cast<double>(height * width);
  const int count =
      min_count_ == max_count_ ? min_count_ : static_cast<int>(rng.randint(min_count_, max_count_));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (int n = 0; n < count; ++n) {
    for (int attempt = 0; attempt < 10; ++attempt) {
      const double target_area = rng.uniform(min_area_, max_area_) * area / count;
      const double aspect = std::exp(rng.uniform(log_aspect_lo_, log_aspect_hi_));
      // Python's round() is half-to-even, as nearbyint in the default rounding mode.
      const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area * aspect)));
      const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area / aspect)));
      if (w < width && h < height) {
        const int64_t top = rng.randint(0, height - h), left = rng.randint(0, width - w);
        for (int64_t c = 0; c < channels; ++c)
          for (int64_t y = top; y < top + h; ++y) {
            float* row = chw + (c * height + y) * width;
            for (int64_t x = left; x < left + w; ++x) row[x] = normal(rng.engine());
          }
        break;
      }
    }
  }
}

}  // namespace det::data::augment

// ---- config names ------------------------------------------------------------------------------

namespace det::data::detail {
namespace {

// A ColorJitter argument: a number v (torchvision's [1 - v, 1 + v] / [-v, v]) or a [lo, hi] pair.
std::array<double, 2> jitter_arg(const config::Args& args, const char* key, double center,
                                 double fallback) {
  const config::Args v = args[key];
  if (v.is_array()) {
    auto lh = v.as<std::vector<double>>();
    if (lh.size() != 2) v.fail_expected("a number or [min, max]");
    return {lh[0], lh[1]};
  }
  // Hue is a fraction of a turn: at most half of one either way.
  const double x = args.get<double>(
      key, fallback, center == 0 ? config::Range{0, 0.5} : config::Range::at_least(0));
  return {center == 1 ? std::max(0.0, center - x) : center - x, center + x};
}

}  // namespace

void add_augment_transforms(std::map<std::string, TransformFactory>& table) {
  table["color_jitter"] = [](Pipeline& p, const config::Args& a) {
    a.check_keys({"value", "brightness", "contrast", "saturation", "hue"});
    // `color_jitter: 0.4` (timm's --color-jitter) jitters brightness, contrast and saturation.
    const double all = a.get<double>("value", 0.0, config::Range::at_least(0));
    try {
      p.add(std::make_shared<augment::ColorJitter>(
          jitter_arg(a, "brightness", 1, all), jitter_arg(a, "contrast", 1, all),
          jitter_arg(a, "saturation", 1, all), jitter_arg(a, "hue", 0, 0)));
    } catch (const std::invalid_argument& e) {
      a.fail(util::shorten(e.what(), 200));
    }
  };
  table["rand_augment"] = [](Pipeline& p, const config::Args& a) {
    a.check_keys({"config", "fill", "translate_pct"});
    const std::string config = a.get<std::string>("config", "rand-m9-mstd0.5-inc1");
    augment::Color fill = {124, 116,
                           104};  // timm create_transform: round(255 * IMAGENET_DEFAULT_MEAN)
    if (a.has("fill")) {
      auto f = a.get<std::vector<int>>("fill", config::Range{0, 255});
      if (f.size() != 3) a["fill"].fail("expected 3 values, found " + std::to_string(f.size()));
      for (size_t i = 0; i < 3; ++i) fill[i] = static_cast<uint8_t>(f[i]);
    }
    const double translate_pct = a.get<double>("translate_pct", 0.45, config::Range{0, 1});
    try {
      p.add(std::make_shared<augment::RandAugment>(augment::RandAugmentConfig::parse(config), fill,
                                                   translate_pct));
    } catch (const std::invalid_argument& e) {
      a["config"].fail(util::quote(config) + ": " + util::shorten(e.what(), 200));
    }
  };
  table["random_erasing"] = [](Pipeline& p, const config::Args& a) {
    a.check_keys(
        {"probability", "mode", "min_area", "max_area", "min_aspect", "min_count", "max_count"});
    const std::string mode = a.get<std::string>("mode", "pixel");
    if (mode != "pixel")
      a["mode"].fail("only 'pixel' (per-pixel normal values) is supported, found " +
                     util::quote(mode));
    const config::Range counts{0, 1000};
    const int min_count = a.get<int>("min_count", 1, counts);
    try {
      p.add(std::make_shared<augment::RandomErasing>(
          a.get<double>("probability", 0.5), a.get<double>("min_area", 0.02),
          a.get<double>("max_area", 1.0 / 3), a.get<double>("min_aspect", 0.3), min_count,
          a.get<int>("max_count", min_count, counts)));
    } catch (const std::invalid_argument& e) {
      a.fail(util::shorten(e.what(), 200));
    }
  };
}

}  // namespace det::data::detail
