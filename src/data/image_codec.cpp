#include "image_codec.h"

// clang-format off
#include <cstdio>   // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>
#include <jerror.h>
#include <png.h>
// clang-format on

#include <algorithm>
#include <atomic>
#include <csetjmp>
#include <cstring>
#include <vector>

#include <spdlog/spdlog.h>

#include "det/util/error.h"
#include "det/util/log.h"
#include "io.h"

namespace det::data {

namespace {

// libjpeg-turbo's limit for its own tools (TJPARAM_SCANLIMIT): a progressive JPEG of thousands
// of tiny scans takes minutes to decode; real ones have about ten.
constexpr int kMaxJpegScans = 500;

uint32_t be16(std::string_view b, size_t i) {
  return uint32_t(static_cast<uint8_t>(b[i])) << 8 | uint32_t(static_cast<uint8_t>(b[i + 1]));
}
uint32_t be32(std::string_view b, size_t i) { return be16(b, i) << 16 | be16(b, i + 2); }

bool is_sof(unsigned m) {
  return (m >= 0xC0 && m <= 0xC3) || (m >= 0xC5 && m <= 0xC7) || (m >= 0xC9 && m <= 0xCB) ||
         (m >= 0xCD && m <= 0xCF);
}

// The frame header of a JPEG, found by walking its marker segments as libjpeg does (bytes
// between segments are skipped, as libjpeg skips them with a warning).
std::optional<ImageInfo> jpeg_info(std::string_view b) {
  size_t i = 2;
  while (i + 4 <= b.size()) {
    if (static_cast<uint8_t>(b[i]) != 0xFF) {
      ++i;
      continue;
    }
    const unsigned m = static_cast<uint8_t>(b[i + 1]);
    if (m == 0xFF || m == 0x00) {
      ++i;
      continue;
    }
    i += 2;
    if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue;  // no length
    if (m == 0xD9 || m == 0xDA) return std::nullopt;  // end of image, or a scan before a frame
    const size_t len = be16(b, i);
    if (len < 2) return std::nullopt;
    if (is_sof(m)) {
      if (i + 7 > b.size()) return std::nullopt;
      return ImageInfo{true, be16(b, i + 3), be16(b, i + 5)};
    }
    i += len;
  }
  return std::nullopt;
}

// A window of a decoded image, zero where it reaches outside (what `crop` in transforms.cpp
// does; repeated here so that this file needs nothing of the transforms).
Image pad_crop(const Image& src, const Window& w) {
  Image out(w.height, w.width, src.channels, 0);
  const int64_t c = src.channels;
  for (int64_t y = 0; y < w.height; ++y) {
    const int64_t sy = w.top + y;
    if (sy < 0 || sy >= src.height) continue;
    const int64_t x0 = std::max<int64_t>(0, -w.left),
                  x1 = std::min<int64_t>(w.width, src.width - w.left);
    if (x1 > x0)
      std::memcpy(out.row(y) + x0 * c, src.row(sy) + (w.left + x0) * c,
                  static_cast<size_t>((x1 - x0) * c));
  }
  return out;
}

// libjpeg's error handling is a longjmp; only C calls run between setjmp and the jump, and every
// C++ object of decode_jpeg is constructed before the setjmp.
struct JpegErrors {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
};

struct JpegProgress {
  jpeg_progress_mgr mgr;
  JpegErrors* errors;
};

extern "C" void jpeg_on_error(j_common_ptr cinfo) {
  auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, e->message);
  std::longjmp(e->jump, 1);
}

extern "C" void jpeg_on_message(j_common_ptr cinfo, int level) {
  // Warnings are tolerated as PIL tolerates them, except a file cut short (PIL: "image file is
  // truncated"), whose missing rows libjpeg would fill with gray.
  auto* e = reinterpret_cast<JpegErrors*>(cinfo->err);
  if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) e->truncated = true;
}

extern "C" void jpeg_on_progress(j_common_ptr cinfo) {
  auto* p = reinterpret_cast<JpegProgress*>(cinfo->progress);
  if (cinfo->is_decompressor &&
      reinterpret_cast<j_decompress_ptr>(cinfo)->input_scan_number > kMaxJpegScans) {
    std::snprintf(p->errors->message, sizeof p->errors->message,
                  "more than %d progressive scans (a decoding-time bomb)", kMaxJpegScans);
    std::longjmp(p->errors->jump, 1);
  }
}

std::atomic<int> warnings_left{5};

}  // namespace

bool is_jpeg(std::string_view b) {
  return b.size() >= 3 && uint8_t(b[0]) == 0xFF && uint8_t(b[1]) == 0xD8 && uint8_t(b[2]) == 0xFF;
}
bool is_png(std::string_view b) {
  return b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0;
}

int64_t default_max_image_pixels() {
  return static_cast<int64_t>(std::min<uint64_t>(
      limit_from_env("DET_MAX_IMAGE_PIXELS", kPilMaxImagePixels), uint64_t{1} << 62));
}

std::optional<ImageInfo> peek_image_info(std::string_view bytes) {
  if (is_jpeg(bytes)) return jpeg_info(bytes);
  if (is_png(bytes) && bytes.size() >= 24 && bytes.substr(12, 4) == "IHDR")
    return ImageInfo{false, be32(bytes, 20), be32(bytes, 16)};
  return std::nullopt;
}

void check_image_pixels(int64_t height, int64_t width, const std::string& file, int64_t max_pixels,
                        bool warn) {
  if (max_pixels <= 0) return;
  // Each side is below 2^32 (the headers hold 16- or 32-bit sizes): the product fits.
  const auto pixels = static_cast<uint64_t>(height) * static_cast<uint64_t>(width);
  const auto limit = static_cast<uint64_t>(max_pixels);
  const std::string size = std::to_string(width) + "x" + std::to_string(height) + " (" +
                           std::to_string(pixels) + " pixels)";
  if (pixels > 2 * limit)
    throw DataError(file + ": image of " + size + " exceeds the limit of " +
                    std::to_string(2 * limit) +
                    " pixels (twice max_image_pixels, as PIL's decompression-bomb check); it was "
                    "not decoded. Shrink the image, or raise DET_MAX_IMAGE_PIXELS (0: no limit) "
                    "if it is genuine");
  if (pixels > limit && warn && warnings_left.fetch_sub(1) > 0)
    util::logger()->warn(
        "{}: image of {} is over max_image_pixels ({}), a possible decompression bomb (PIL "
        "warns likewise); it is decoded, twice the limit would be refused",
        file, size, limit);
}

namespace {

bool inside(const Window& w, int64_t height, int64_t width) {
  return w.top >= 0 && w.left >= 0 && w.height >= 0 && w.width >= 0 && w.top + w.height <= height &&
         w.left + w.width <= width;
}

}  // namespace

Image decode_jpeg(const std::string& bytes, const std::string& file, int64_t max_pixels,
                  const std::function<Window(int64_t, int64_t)>* choose) {
  jpeg_decompress_struct cinfo;
  JpegErrors errors;
  JpegProgress progress;
  Image img;
  Window w{};
  std::vector<uint8_t> scratch;
  std::string limit_error;
  volatile bool whole_then_crop = false;  // set after the setjmp
  cinfo.err = jpeg_std_error(&errors.mgr);
  errors.mgr.error_exit = jpeg_on_error;
  errors.mgr.emit_message = jpeg_on_message;
  errors.truncated = false;
  progress.mgr.progress_monitor = jpeg_on_progress;
  progress.errors = &errors;
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw DataError(file + ": cannot decode JPEG: " + errors.message);
  }
  jpeg_create_decompress(&cinfo);
  cinfo.progress = &progress.mgr;
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    throw DataError(file + ": CMYK JPEGs are not supported; convert the image to RGB");
  }
  // The header is read, nothing is decoded yet: refuse a bomb before any image memory is taken.
  try {
    check_image_pixels(cinfo.image_height, cinfo.image_width, file, max_pixels);
  } catch (const DataError& e) {
    limit_error = e.what();
  }
  if (!limit_error.empty()) {
    jpeg_destroy_decompress(&cinfo);
    throw DataError(limit_error);
  }
  // Bound what libjpeg itself may allocate (a progressive image's coefficients: 2 bytes a sample
  // of each of up to 10 components): twice the limit's pixels at 8 bytes each, 64 MiB at least.
  if (max_pixels > 0)
    cinfo.mem->max_memory_to_use = static_cast<long>(
        std::max<int64_t>(int64_t{64} << 20, 16 * std::min<int64_t>(max_pixels, int64_t{1} << 40)));
  cinfo.out_color_space = JCS_RGB;
  jpeg_calc_output_dimensions(&cinfo);
  const auto height = static_cast<int64_t>(cinfo.output_height),
             width = static_cast<int64_t>(cinfo.output_width);
  const Window chosen = choose ? (*choose)(height, width) : Window{0, 0, height, width};
  // A window reaching outside the image (zero padding): decode it all, then cut.
  whole_then_crop = !inside(chosen, height, width);
  w = whole_then_crop ? Window{0, 0, height, width} : chosen;
  jpeg_start_decompress(&cinfo);
  img = Image::uninitialized(w.height, w.width, 3);
  const bool full_rows = w.left == 0 && w.width == width;
  if (!full_rows) scratch.resize(static_cast<size_t>(width * 3));
  if (w.top > 0) jpeg_skip_scanlines(&cinfo, static_cast<JDIMENSION>(w.top));
  // A truncated file stops the decode at once: its missing rows would only be gray fill.
  while (static_cast<int64_t>(cinfo.output_scanline) < w.top + w.height && !errors.truncated) {
    const int64_t y = static_cast<int64_t>(cinfo.output_scanline) - w.top;
    JSAMPROW row = full_rows ? img.row(y) : scratch.data();
    jpeg_read_scanlines(&cinfo, &row, 1);
    if (!full_rows)
      std::memcpy(img.row(y), scratch.data() + w.left * 3, static_cast<size_t>(w.width * 3));
  }
  if (static_cast<int64_t>(cinfo.output_scanline) == height && !errors.truncated)
    jpeg_finish_decompress(&cinfo);
  else
    jpeg_abort_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (errors.truncated)
    throw DataError(file + ": cannot decode JPEG: premature end of data (the file is truncated)");
  if (whole_then_crop) return pad_crop(img, chosen);
  return img;
}

Image decode_png(const std::string& bytes, const std::string& file, int64_t max_pixels) {
  // The size in IHDR first: a 40-byte file claiming 30000x30000 is refused here, by name,
  // before libpng reads further.
  if (auto info = peek_image_info(bytes))
    check_image_pixels(info->height, info->width, file, max_pixels, false);
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  // libpng bounds what chunks may ask for (8 MB per ancillary chunk, 1000 of them, palettes
  // of at most 256 entries); IDAT is inflated row by row into the buffer below.
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()))
    throw DataError(file + ": cannot decode PNG: " + png.message);
  try {
    check_image_pixels(png.height, png.width, file, max_pixels);
  } catch (...) {
    png_image_free(&png);
    throw;
  }
  // PIL's convert("RGB") drops alpha without compositing; libpng would composite onto black, so
  // read RGBA and drop the alpha channel. Gray is replicated and palettes expanded.
  const bool alpha = (png.format & PNG_FORMAT_FLAG_ALPHA) != 0;
  png.format = alpha ? PNG_FORMAT_RGBA : PNG_FORMAT_RGB;
  Image img = Image::uninitialized(png.height, png.width, alpha ? 4 : 3);
  if (!png_image_finish_read(&png, nullptr, img.pixels.data(), 0, nullptr)) {
    std::string msg = png.message;
    png_image_free(&png);
    throw DataError(file + ": cannot decode PNG: " + msg);
  }
  if (alpha) {
    // RGBA -> RGB in place (each pixel moves left), so no second image-sized buffer is taken.
    uint8_t* p = img.pixels.data();
    for (int64_t i = 0, n = img.height * img.width; i < n; ++i)
      std::memmove(p + i * 3, p + i * 4, 3);
    img.pixels.resize(static_cast<size_t>(img.height * img.width * 3));
    img.channels = 3;
  }
  return img;
}

Image decode_image(const std::string& bytes, const std::string& file, int64_t max_pixels) {
  if (is_jpeg(bytes)) return decode_jpeg(bytes, file, max_pixels, nullptr);
  if (is_png(bytes)) return decode_png(bytes, file, max_pixels);
  if (bytes.empty()) throw DataError(file + ": empty file");
  throw DataError(file + ": not a JPEG or PNG image (unknown signature)");
}

}  // namespace det::data
