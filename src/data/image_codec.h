#pragma once
// Internal to the data layer, and torch-free (the fuzz targets link it without LibTorch): JPEG
// (libjpeg-turbo) and PNG (libpng) decoding to 8-bit RGB as PIL's convert("RGB"), with PIL's
// decompression-bomb limit checked from the header before anything is decoded.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "det/data/image.h"
#include "det/data/transforms.h"

namespace det::data {

/// What an image's header says, read without decoding.
struct ImageInfo {
  bool jpeg = false;  ///< JPEG, else PNG.
  int64_t height = 0, width = 0;
};

/// The size in a JPEG's frame header (SOF) or a PNG's IHDR. nullopt when the bytes are neither
/// or the header holds no size (the decoder then says what is wrong).
std::optional<ImageInfo> peek_image_info(std::string_view bytes);

/// PIL's decompression-bomb check: throws DataError naming `file` when the image has more than
/// twice `max_pixels` pixels; logs a warning (the first few times) when it has more than
/// `max_pixels`. `max_pixels` 0: no limit.
void check_image_pixels(int64_t height, int64_t width, const std::string& file, int64_t max_pixels,
                        bool warn = true);

/// Decodes a JPEG: the window `choose` picks once the header gives the image's size (rows above
/// it skipped, rows below never decoded), or the whole image when `choose` is null. A window
/// reaching outside the image is zero-padded, as `crop` does.
Image decode_jpeg(const std::string& bytes, const std::string& file, int64_t max_pixels,
                  const std::function<Window(int64_t, int64_t)>* choose);

/// Decodes a PNG.
Image decode_png(const std::string& bytes, const std::string& file, int64_t max_pixels);

/// Whether the bytes start with a JPEG's or a PNG's signature.
bool is_jpeg(std::string_view bytes);
bool is_png(std::string_view bytes);

}  // namespace det::data
