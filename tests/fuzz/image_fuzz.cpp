// Fuzz target: JPEG (libjpeg-turbo) and PNG (libpng) decoding with the pixel limit, whole images
// and windows (inside the image and overhanging it). DataError is the expected answer to bad
// input; anything else is a bug.
#include <cstdint>
#include <functional>
#include <string>

#include "data/image_codec.h"
#include "det/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  // A small limit keeps each run fast; the code path is the one the default limit takes.
  constexpr int64_t kMaxPixels = 1 << 20;
  try {
    (void)det::data::peek_image_info(bytes);
    det::data::Image img = det::data::decode_image(bytes, "fuzz", kMaxPixels);
    if (img.channels != 3 || img.pixels.size() != static_cast<size_t>(img.height * img.width * 3) ||
        img.height * img.width > 2 * kMaxPixels)
      __builtin_trap();
  } catch (const det::DataError&) {
  }
  if (!det::data::is_jpeg(bytes)) return 0;
  for (int overhang = 0; overhang < 2; ++overhang) {
    try {
      std::function<det::data::Window(int64_t, int64_t)> choose = [&](int64_t h, int64_t w) {
        return overhang ? det::data::Window{-1, -2, h + 3, w + 1}
                        : det::data::Window{h / 3, w / 4, h / 2, w / 2};
      };
      det::data::Image img = det::data::decode_jpeg(bytes, "fuzz", kMaxPixels, &choose);
      if (img.pixels.size() != static_cast<size_t>(img.height * img.width * 3)) __builtin_trap();
    } catch (const det::DataError&) {
    }
  }
  return 0;
}
