// Geometric resampling transforms (Resize, RandomResizedCrop) with PIL's filters.
#include "det/data/resize.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "det/util/error.h"
#include "det/util/strings.h"
#include "transform_detail.h"

namespace det::data {

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // PIL's fixed point for 8-bit images

double bilinear(double x) {
  x = std::abs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}

double bicubic(double x) {
  const double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// One axis' filter taps: for output position i, `ksize` fixed-point weights starting at
// bounds[i].first, of which bounds[i].second are used.
struct Taps {
  int64_t ksize = 0;
  std::vector<std::pair<int64_t, int64_t>> bounds;
  std::vector<int32_t> weights;
};

Taps precompute(int64_t in_size, int64_t out_size, Interpolation filter) {
  const double support_unit = filter == Interpolation::kBilinear ? 1.0 : 2.0;
  double (*fn)(double) = filter == Interpolation::kBilinear ? bilinear : bicubic;
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = support_unit * filterscale;
  Taps t;
  t.ksize = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  t.bounds.resize(static_cast<size_t>(out_size));
  t.weights.assign(static_cast<size_t>(out_size * t.ksize), 0);
  std::vector<double> k(static_cast<size_t>(t.ksize));
  for (int64_t xx = 0; xx < out_size; ++xx) {
    const double center = (static_cast<double>(xx) + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    auto xmin = static_cast<int64_t>(center - support + 0.5);  // C truncation, as PIL
    if (xmin < 0) xmin = 0;
    auto xmax = static_cast<int64_t>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int64_t x = 0; x < xmax; ++x) {
      double w = fn((static_cast<double>(x + xmin) - center + 0.5) * ss);
      k[static_cast<size_t>(x)] = w;
      ww += w;
    }
    for (int64_t x = 0; x < xmax; ++x) {
      double v = ww != 0.0 ? k[static_cast<size_t>(x)] / ww : k[static_cast<size_t>(x)];
      t.weights[static_cast<size_t>(xx * t.ksize + x)] = static_cast<int32_t>(
          v < 0 ? -0.5 + v * (1 << kPrecisionBits) : 0.5 + v * (1 << kPrecisionBits));
    }
    t.bounds[static_cast<size_t>(xx)] = {xmin, xmax};
  }
  return t;
}

inline uint8_t clip8(int32_t v) {
  v >>= kPrecisionBits;  // arithmetic shift, as PIL's lookup table index
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// One RGB output pixel of the horizontal pass: `xn` taps from `px`, the channels in registers.
inline void rgb_taps(const uint8_t* px, const int32_t* k, int64_t xn, uint8_t* out) {
  int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
  for (int64_t x = 0; x < xn; ++x, px += 3) {
    s0 += px[0] * k[x];
    s1 += px[1] * k[x];
    s2 += px[2] * k[x];
  }
  out[0] = clip8(s0);
  out[1] = clip8(s1);
  out[2] = clip8(s2);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define DET_HAVE_AVX2_PATH 1
// The horizontal pass for RGB rows with AVX2: a pixel's three channels (and one byte beyond,
// ignored) are widened into 4 x int32 lanes and multiplied by the tap's weight. Integer sums are
// exact in any order, so the result equals the portable loop (and PIL) bit for bit.
__attribute__((target("avx2"))) void horizontal_rgb_avx2(const uint8_t* row,
                                                         const uint8_t* buffer_end, uint8_t* out,
                                                         const Taps& ht, int64_t out_w) {
  const __m256i half = _mm256_set1_epi32(1 << (kPrecisionBits - 1));
  int64_t xx = 0;
  // Two output pixels per 256-bit register; the shorter one's extra taps have weight 0 (the tap
  // arrays are zero past each pixel's count), so both sums stay exact.
  for (; xx + 1 < out_w; xx += 2) {
    const auto [amin, an] = ht.bounds[static_cast<size_t>(xx)];
    const auto [bmin, bn] = ht.bounds[static_cast<size_t>(xx + 1)];
    const int64_t n = std::max(an, bn);
    const uint8_t* pa = row + amin * 3;
    const uint8_t* pb = row + bmin * 3;
    if (pa + 3 * n + 1 > buffer_end || pb + 3 * n + 1 > buffer_end || n > ht.ksize)
      break;  // edge: scalar
    const int32_t* ka = ht.weights.data() + xx * ht.ksize;
    const int32_t* kb = ka + ht.ksize;
    __m256i acc = half;
    for (int64_t x = 0; x < n; ++x, pa += 3, pb += 3) {
      uint32_t wa, wb;
      std::memcpy(&wa, pa, 4);
      std::memcpy(&wb, pb, 4);
      const __m256i v =
          _mm256_cvtepu8_epi32(_mm_set_epi32(0, 0, static_cast<int>(wb), static_cast<int>(wa)));
      const __m256i w = _mm256_set_m128i(_mm_set1_epi32(kb[x]), _mm_set1_epi32(ka[x]));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(v, w));
    }
    alignas(32) int32_t s[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(s), acc);
    for (int i = 0; i < 3; ++i) {
      out[xx * 3 + i] = clip8(s[i]);
      out[xx * 3 + 3 + i] = clip8(s[4 + i]);
    }
  }
  for (; xx < out_w; ++xx) {  // the last pixels, up to the buffer's end
    const auto [xmin, xn] = ht.bounds[static_cast<size_t>(xx)];
    rgb_taps(row + xmin * 3, ht.weights.data() + xx * ht.ksize, xn, out + xx * 3);
  }
}
#endif

}  // namespace

namespace {
std::atomic<bool>& avx2_flag() {
#ifdef DET_HAVE_AVX2_PATH
  static std::atomic<bool> flag{__builtin_cpu_supports("avx2") != 0};
#else
  static std::atomic<bool> flag{false};
#endif
  return flag;
}
}  // namespace

bool resize_simd() { return avx2_flag().load(std::memory_order_relaxed); }

bool set_resize_simd(bool enabled) {
#ifdef DET_HAVE_AVX2_PATH
  enabled = enabled && __builtin_cpu_supports("avx2");
#else
  enabled = false;
#endif
  return avx2_flag().exchange(enabled);
}

Interpolation parse_interpolation(const std::string& name, const std::string& at) {
  if (name == "bilinear") return Interpolation::kBilinear;
  if (name == "bicubic") return Interpolation::kBicubic;
  throw ConfigError(at + ": interpolation must be bilinear or bicubic, found " + util::quote(name));
}

// Compiled twice (AVX2 and baseline x86-64) and picked at load time: the row accumulation of the
// vertical pass vectorizes much better with AVX2's 32-bit multiplies.
#if defined(__x86_64__) && defined(__GNUC__)
#define DET_RESIZE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define DET_RESIZE_CLONES
#endif

namespace {

// The horizontal pass over rows [first, last) of `in`, to `out_w` columns.
DET_RESIZE_CLONES Image horizontal_pass(const Image& in, int64_t first, int64_t last, int64_t out_w,
                                        const Taps& ht) {
  const int64_t c = in.channels;
  Image tmp = Image::uninitialized(last - first, out_w, c);
  [[maybe_unused]] const bool avx2 = resize_simd();
  for (int64_t y = 0; y < tmp.height; ++y) {
    const uint8_t* row = in.row(y + first);
    uint8_t* out = tmp.row(y);
#ifdef DET_HAVE_AVX2_PATH
    if (avx2 && c == 3) {
      horizontal_rgb_avx2(row, in.pixels.data() + in.pixels.size(), out, ht, out_w);
      continue;
    }
#endif
    for (int64_t xx = 0; xx < out_w; ++xx) {
      const auto [xmin, xn] = ht.bounds[static_cast<size_t>(xx)];
      const int32_t* k = ht.weights.data() + xx * ht.ksize;
      const uint8_t* px = row + xmin * c;
      if (c == 3) {
        rgb_taps(px, k, xn, out + xx * 3);
        continue;
      }
      for (int64_t ch = 0; ch < c; ++ch) {
        int32_t ss = 1 << (kPrecisionBits - 1);
        for (int64_t x = 0; x < xn; ++x) ss += static_cast<int32_t>(px[x * c + ch]) * k[x];
        out[xx * c + ch] = clip8(ss);
      }
    }
  }
  return tmp;
}

}  // namespace

DET_RESIZE_CLONES Image resize(const Image& in, int64_t out_h, int64_t out_w,
                               Interpolation filter) {
  if (out_h < 1 || out_w < 1) throw DataError("resize: the output size must be positive");
  const int64_t c = in.channels;
  if (in.height == out_h && in.width == out_w) return in;
  // PIL resamples horizontally first (only the rows the vertical pass reads), then vertically.
  const Image* src = &in;
  Image tmp;
  int64_t row_offset = 0;
  Taps vt;
  const bool vertical = out_h != in.height;
  if (vertical) vt = precompute(in.height, out_h, filter);
  if (out_w != in.width) {
    int64_t first = 0, last = in.height;
    if (vertical) {
      first = vt.bounds.front().first;
      last = vt.bounds.back().first + vt.bounds.back().second;
    }
    tmp = horizontal_pass(in, first, last, out_w, precompute(in.width, out_w, filter));
    src = &tmp;
    row_offset = first;
  }
  if (!vertical) return src == &tmp ? tmp : in;
  Image out = Image::uninitialized(out_h, out_w, c);
  // Row by row: accumulate whole source rows into an int32 row (contiguous, vectorizable).
  const int64_t n = out_w * c;
  std::vector<int32_t> acc(static_cast<size_t>(n));
  for (int64_t yy = 0; yy < out_h; ++yy) {
    const auto [ymin, yn] = vt.bounds[static_cast<size_t>(yy)];
    const int32_t* k = vt.weights.data() + yy * vt.ksize;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int64_t y = 0; y < yn; ++y) {
      const uint8_t* row = src->row(y + ymin - row_offset);
      const int32_t w = k[y];
      int32_t* a = acc.data();
      for (int64_t i = 0; i < n; ++i) a[i] += static_cast<int32_t>(row[i]) * w;
    }
    uint8_t* dst = out.row(yy);
    for (int64_t i = 0; i < n; ++i) dst[i] = clip8(acc[static_cast<size_t>(i)]);
  }
  return out;
}

void Resize::apply(Image& image, SampleRng&) const {
  int64_t h = height_, w = width_;
  if (w < 0) {
    // torchvision: the shorter side becomes `size`, the longer int(size * long / short).
    const int64_t size = height_;
    if ((image.width <= image.height && image.width == size) ||
        (image.height <= image.width && image.height == size))
      return;
    if (image.width <= image.height) {
      w = size;
      h = static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(image.height) /
                               static_cast<double>(image.width));
    } else {
      h = size;
      w = static_cast<int64_t>(static_cast<double>(size) * static_cast<double>(image.width) /
                               static_cast<double>(image.height));
    }
  }
  image = resize(image, h, w, filter_);
}

std::array<int64_t, 4> RandomResizedCrop::crop_params(int64_t height, int64_t width,
                                                      SampleRng& rng) const {
  const double area = static_cast<double>(height * width);
  const double log_lo = std::log(ratio_.first), log_hi = std::log(ratio_.second);
  for (int attempt = 0; attempt < 10; ++attempt) {
    double target_area = area * rng.uniform(scale_.first, scale_.second);
    double aspect = std::exp(rng.uniform(log_lo, log_hi));
    auto w =
        static_cast<int64_t>(std::nearbyint(std::sqrt(target_area * aspect)));  // Python round()
    auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      int64_t i = rng.randint(0, height - h), j = rng.randint(0, width - w);
      return {i, j, h, w};
    }
  }
  // Fallback: the central crop with the ratio clamped into range.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < std::min(ratio_.first, ratio_.second)) {
    h = static_cast<int64_t>(
        std::nearbyint(static_cast<double>(w) / std::min(ratio_.first, ratio_.second)));
  } else if (in_ratio > std::max(ratio_.first, ratio_.second)) {
    w = static_cast<int64_t>(
        std::nearbyint(static_cast<double>(h) * std::max(ratio_.first, ratio_.second)));
  }
  return {(height - h) / 2, (width - w) / 2, h, w};
}

Window RandomResizedCrop::choose_window(int64_t height, int64_t width, SampleRng& rng) const {
  auto [top, left, h, w] = crop_params(height, width, rng);
  return {top, left, h, w};
}

void RandomResizedCrop::apply_to_window(Image& window, SampleRng& rng) const {
  Interpolation f = filter_;
  if (random_filter_) f = rng.bernoulli(0.5) ? Interpolation::kBilinear : Interpolation::kBicubic;
  window = resize(window, size_, size_, f);
}

namespace detail {

namespace {
// A [low, high] argument (RandomResizedCrop's scale and ratio).
std::pair<double, double> pair_arg(const config::Args& args, const char* key,
                                   std::pair<double, double> fallback, const config::Range& range) {
  if (!args.has(key)) return fallback;
  const config::Args v = args[key];
  auto lh = v.as<std::vector<double>>(range);
  if (lh.size() != 2 || lh[0] > lh[1]) v.fail_expected("[low, high] with low <= high");
  return {lh[0], lh[1]};
}
}  // namespace

void add_resize_transforms(std::map<std::string, TransformFactory>& table) {
  table["resize"] = [](Pipeline& p, const config::Args& a) {
    a.check_keys({"size", "interpolation"});
    auto filter = parse_interpolation(a.get<std::string>("interpolation", "bilinear"),
                                      a["interpolation"].where());
    if (a["size"].is_array()) {
      auto hw = a.get<std::vector<int64_t>>("size", kSizeRange);
      if (hw.size() != 2) a["size"].fail_expected("a number or [height, width]");
      p.add(std::make_shared<Resize>(hw[0], hw[1], filter));
      return;
    }
    p.add(std::make_shared<Resize>(a.get<int64_t>("size", kSizeRange), filter));
  };
  table["random_resized_crop"] = [](Pipeline& p, const config::Args& a) {
    a.check_keys({"size", "scale", "ratio", "interpolation"});
    const std::string interp = a.get<std::string>("interpolation", "bilinear");
    const bool random = interp == "random";
    auto filter =
        random ? Interpolation::kBilinear : parse_interpolation(interp, a["interpolation"].where());
    p.add(std::make_shared<RandomResizedCrop>(
        a.get<int64_t>("size", kSizeRange),
        pair_arg(a, "scale", {0.08, 1.0}, config::Range::at_least(0)),
        pair_arg(a, "ratio", {3.0 / 4.0, 4.0 / 3.0}, config::Range::greater_than(0)), filter,
        random));
  };
}

}  // namespace detail
}  // namespace det::data
