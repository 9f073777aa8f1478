#include "det/data/image_folder.h"

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include <csetjmp>
#include <cstdio>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>

#include <spdlog/spdlog.h>

#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/log.h"

namespace det::data {
namespace fs = std::filesystem;

namespace {

bool is_jpeg(const std::string& b) { return b.size() >= 3 && uint8_t(b[0]) == 0xFF && uint8_t(b[1]) == 0xD8 && uint8_t(b[2]) == 0xFF; }
bool is_png(const std::string& b) { return b.size() >= 8 && std::memcmp(b.data(), "\x89PNG\r\n\x1a\n", 8) == 0; }

// libjpeg's error handling is a longjmp; only C calls run between setjmp and the jump, and every
// C++ object of decode_jpeg_window is constructed before the setjmp.
struct JpegErrors {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
  bool truncated;
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

// The window `choose` picks (given the image's size) of a JPEG, RGB, with libjpeg's defaults
// (accurate integer DCT, fancy upsampling), as PIL decodes. Rows above the window are skipped
// without inverse DCT and colour conversion, rows below it are never decoded, and the window's
// columns are copied out of each decoded row. No `choose`: the whole image.
Image decode_jpeg_window(const std::string& bytes, const std::string& file, const WindowChooser* choose) {
  jpeg_decompress_struct cinfo;
  JpegErrors errors;
  Image img;
  Window w{};
  std::vector<uint8_t> scratch;
  cinfo.err = jpeg_std_error(&errors.mgr);
  errors.mgr.error_exit = jpeg_on_error;
  errors.mgr.emit_message = jpeg_on_message;
  errors.truncated = false;
  if (setjmp(errors.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw DataError(file + ": cannot decode JPEG: " + errors.message);
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    throw DataError(file + ": CMYK JPEGs are not supported; convert the image to RGB");
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_calc_output_dimensions(&cinfo);
  const auto height = static_cast<int64_t>(cinfo.output_height), width = static_cast<int64_t>(cinfo.output_width);
  w = choose ? (*choose)(height, width) : Window{0, 0, height, width};
  if (w.top < 0 || w.left < 0 || w.height < 0 || w.width < 0 || w.top + w.height > height || w.left + w.width > width) {
    jpeg_destroy_decompress(&cinfo);
    // A window reaching outside the image (zero padding): decode it all and crop.
    return crop(decode_jpeg_window(bytes, file, nullptr), w.top, w.left, w.height, w.width);
  }
  jpeg_start_decompress(&cinfo);
  img = Image::uninitialized(w.height, w.width, 3);
  const bool full_rows = w.left == 0 && w.width == width;
  if (!full_rows) scratch.resize(static_cast<size_t>(width * 3));
  if (w.top > 0) jpeg_skip_scanlines(&cinfo, static_cast<JDIMENSION>(w.top));
  while (static_cast<int64_t>(cinfo.output_scanline) < w.top + w.height) {
    const int64_t y = static_cast<int64_t>(cinfo.output_scanline) - w.top;
    JSAMPROW row = full_rows ? img.row(y) : scratch.data();
    jpeg_read_scanlines(&cinfo, &row, 1);
    if (!full_rows) std::memcpy(img.row(y), scratch.data() + w.left * 3, static_cast<size_t>(w.width * 3));
  }
  if (static_cast<int64_t>(cinfo.output_scanline) == height)
    jpeg_finish_decompress(&cinfo);
  else
    jpeg_abort_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  if (errors.truncated) throw DataError(file + ": cannot decode JPEG: premature end of data (the file is truncated)");
  return img;
}

Image decode_jpeg(const std::string& bytes, const std::string& file) { return decode_jpeg_window(bytes, file, nullptr); }

Image decode_png(const std::string& bytes, const std::string& file) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()))
    throw DataError(file + ": cannot decode PNG: " + png.message);
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
    Image rgb = Image::uninitialized(img.height, img.width, 3);
    for (int64_t p = 0, n = img.height * img.width; p < n; ++p)
      std::memcpy(rgb.pixels.data() + p * 3, img.pixels.data() + p * 4, 3);
    return rgb;
  }
  return img;
}

bool header_ok(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::string head(64 * 1024, '\0');
  in.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(in.gcount()));
  if (is_png(head)) return head.size() >= 24;
  if (!is_jpeg(head)) return false;
  try {
    // A full decode is the only reliable check for JPEG bodies.
    decode_jpeg(util::read_file(p), p.string());
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

std::string read_bytes(const fs::path& p) {
  try {
    return util::read_file(p);
  } catch (const Error& e) {
    throw DataError(e.what());
  }
}

std::string lower_ext(const fs::path& p) {
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

}  // namespace

Image decode_image(const std::string& bytes, const std::string& file) {
  if (is_jpeg(bytes)) return decode_jpeg(bytes, file);
  if (is_png(bytes)) return decode_png(bytes, file);
  if (bytes.empty()) throw DataError(file + ": empty file");
  throw DataError(file + ": not a JPEG or PNG image (unknown signature)");
}

ImageFolder::ImageFolder(const ImageFolderOptions& o) {
  if (!fs::is_directory(o.root))
    throw DataError(o.root.string() + ": no such directory (an ImageFolder root holds one sub-directory per class)");
  for (const auto& e : fs::directory_iterator(o.root))
    if (e.is_directory()) classes_.push_back(e.path().filename().string());
  std::sort(classes_.begin(), classes_.end());
  if (classes_.empty()) throw DataError(o.root.string() + ": no class sub-directories (expected root/<class>/<image>)");
  std::map<std::string, int64_t> ignored;  // extension -> count
  for (size_t c = 0; c < classes_.size(); ++c) {
    std::vector<fs::path> found;
    for (const auto& e : fs::recursive_directory_iterator(o.root / classes_[c], fs::directory_options::follow_directory_symlink)) {
      if (!e.is_regular_file()) continue;
      std::string ext = lower_ext(e.path());
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png")
        found.push_back(e.path());
      else
        ++ignored[ext.empty() ? "(none)" : ext];
    }
    std::sort(found.begin(), found.end());
    for (auto& f : found) {
      if (o.skip_undecodable && !header_ok(f)) {
        ++skipped_;
        util::logger()->warn("ImageFolder: skipping undecodable {}", f.string());
        continue;
      }
      files_.push_back(std::move(f));
      labels_.push_back(static_cast<int64_t>(c));
    }
  }
  for (const auto& [ext, n] : ignored)
    util::logger()->warn("ImageFolder {}: {} file(s) with extension {} are not JPEG/PNG and were not indexed", o.root.string(), n, ext);
  if (skipped_) util::logger()->warn("ImageFolder {}: skipped {} undecodable image(s)", o.root.string(), skipped_);
  if (files_.empty()) throw DataError(o.root.string() + ": no .jpg, .jpeg or .png image under its class directories");
  util::logger()->info("ImageFolder {}: {} images in {} classes", o.root.string(), files_.size(), classes_.size());
}

Image ImageFolder::image_window(int64_t index, const WindowChooser& choose) const {
  const auto& p = files_[static_cast<size_t>(index)];
  std::string bytes = read_bytes(p);
  if (is_jpeg(bytes)) return decode_jpeg_window(bytes, p.string(), &choose);
  return ImageSource::image_window_of(decode_image(bytes, p.string()), choose);
}

Image ImageFolder::image(int64_t index) const {
  const auto& p = files_[static_cast<size_t>(index)];
  return decode_image(read_bytes(p), p.string());
}

}  // namespace det::data
