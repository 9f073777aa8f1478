#pragma once
/// \file
/// An 8-bit image in HWC layout (what torchvision's PIL-based transforms operate on).

#include <cstdint>
#include <memory>
#include <new>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace det::data {

/// An allocator that leaves elements it default-constructs uninitialized, so a pixel buffer that
/// is about to be overwritten (a decoded or resampled image) is not zero-filled first.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  /// Rebinding to another element type keeps the allocator uninitializing.
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;  ///< The allocator for `U`.
  };
  /// Stateless, like std::allocator.
  UninitializedAllocator() = default;
  template <typename U>
  /// Converts from the allocator of another element type (stateless).
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}  // NOLINT
  /// Default-initializes: a trivial `U` (a pixel byte) is left uninitialized.
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  /// Construction with arguments, as std::allocator does.
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

/// An image's bytes.
using PixelBuffer = std::vector<uint8_t, UninitializedAllocator<uint8_t>>;

/// Pixels row-major, channels interleaved (HWC), as PIL and libjpeg lay them out.
struct Image {
  /// @{
  /// Size in pixels, and channels per pixel (1 grayscale, 3 RGB); 0 for an empty image.
  int64_t height = 0, width = 0, channels = 0;
  /// @}
  PixelBuffer pixels;  ///< height * width * channels bytes, row-major, channels interleaved.

  /// An empty image (0 x 0 x 0).
  Image() = default;
  /// An image filled with `fill`.
  Image(int64_t h, int64_t w, int64_t c, uint8_t fill = 0)
      : height(h), width(w), channels(c), pixels(static_cast<size_t>(h * w * c), fill) {}
  /// An image whose pixels are left unset, for code that writes every one of them.
  static Image uninitialized(int64_t h, int64_t w, int64_t c) {
    Image img;
    img.height = h, img.width = w, img.channels = c;
    img.pixels.resize(static_cast<size_t>(h * w * c));
    return img;
  }
  /// The first byte of row `y` (width * channels bytes); no bounds check.
  uint8_t* row(int64_t y) { return pixels.data() + y * width * channels; }
  /// The first byte of row `y` (width * channels bytes); no bounds check.
  const uint8_t* row(int64_t y) const { return pixels.data() + y * width * channels; }
  /// Channel `c` of pixel (y, x); no bounds check.
  uint8_t& at(int64_t y, int64_t x, int64_t c) {
    return pixels[static_cast<size_t>((y * width + x) * channels + c)];
  }
  /// Channel `c` of pixel (y, x); no bounds check.
  uint8_t at(int64_t y, int64_t x, int64_t c) const {
    return pixels[static_cast<size_t>((y * width + x) * channels + c)];
  }
};

/// PIL's `Image.MAX_IMAGE_PIXELS`: an image with more pixels is decoded with a warning (a
/// possible decompression bomb), one with more than twice as many is refused, as PIL does.
constexpr int64_t kPilMaxImagePixels = 89'478'485;

/// The pixel limit in force by default: $DET_MAX_IMAGE_PIXELS when set (0: no limit), else
/// kPilMaxImagePixels. Throws DataError when the variable is not a whole number.
int64_t default_max_image_pixels();

/// Decodes a JPEG (libjpeg-turbo) or PNG (libpng) file's bytes to 8-bit RGB as PIL's
/// `Image.open(f).convert("RGB")` does (grayscale replicated, alpha dropped, palettes expanded).
/// The size in the header is checked against `max_pixels` (see kPilMaxImagePixels; 0: no limit)
/// before anything is decoded. Throws DataError naming `file` if the data cannot be decoded or
/// the image is over the limit.
Image decode_image(const std::string& bytes, const std::string& file,
                   int64_t max_pixels = default_max_image_pixels());

/// The random stream of one example (seeded from BatchRequest::sample_seed).
class SampleRng {
 public:
  /// A std::mt19937_64 seeded with `seed` (BatchRequest::sample_seed gives each example its own).
  explicit SampleRng(uint64_t seed) : gen_(seed) {}
  /// Uniform in [0, 1).
  double uniform() { return std::uniform_real_distribution<double>(0.0, 1.0)(gen_); }
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Uniform integer in [lo, hi] (inclusive).
  int64_t randint(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(gen_);
  }
  /// True with probability p.
  bool bernoulli(double p) { return uniform() < p; }
  std::mt19937_64& engine() { return gen_; }  ///< The generator itself, for std distributions.

 private:
  std::mt19937_64 gen_;
};

}  // namespace det::data
