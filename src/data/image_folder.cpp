#include "det/data/image_folder.h"

#include <png.h>
#include <turbojpeg.h>

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

struct TjHandle {
  tjhandle h = tjInitDecompress();
  ~TjHandle() {
    if (h) tjDestroy(h);
  }
  // A handle is not reliably reusable after a failed decode: start afresh.
  [[noreturn]] void fail(const std::string& message) {
    tjDestroy(h);
    h = tjInitDecompress();
    throw DataError(message);
  }
};

Image decode_jpeg(const std::string& bytes, const std::string& file) {
  thread_local TjHandle tj;  // one decompressor per loader thread
  int w = 0, h = 0, subsamp = 0, colorspace = 0;
  auto* buf = reinterpret_cast<const unsigned char*>(bytes.data());
  auto size = static_cast<unsigned long>(bytes.size());
  if (tjDecompressHeader3(tj.h, buf, size, &w, &h, &subsamp, &colorspace) != 0)
    tj.fail(file + ": cannot decode JPEG header: " + tjGetErrorStr2(tj.h));
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK)
    throw DataError(file + ": CMYK JPEGs are not supported; convert the image to RGB");
  Image img(h, w, 3);
  // Accurate integer DCT and fancy upsampling: libjpeg's defaults, as PIL decodes.
  if (tjDecompress2(tj.h, buf, size, img.pixels.data(), w, 0, h, TJPF_RGB, TJFLAG_ACCURATEDCT) != 0) {
    std::string msg = tjGetErrorStr2(tj.h);
    // Warnings are tolerated as PIL tolerates them, except a cut-short file (PIL: "image file is
    // truncated"), whose missing rows would otherwise be filled with gray.
    if (tjGetErrorCode(tj.h) == TJERR_FATAL || msg.find("Premature end") != std::string::npos)
      tj.fail(file + ": cannot decode JPEG: " + msg + (msg.find("Premature end") != std::string::npos ? " (the file is truncated)" : ""));
  }
  return img;
}

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
  Image img(png.height, png.width, alpha ? 4 : 3);
  if (!png_image_finish_read(&png, nullptr, img.pixels.data(), 0, nullptr)) {
    std::string msg = png.message;
    png_image_free(&png);
    throw DataError(file + ": cannot decode PNG: " + msg);
  }
  if (alpha) {
    Image rgb(img.height, img.width, 3);
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

Image ImageFolder::image(int64_t index) const {
  const auto& p = files_[static_cast<size_t>(index)];
  std::string bytes;
  try {
    bytes = util::read_file(p);
  } catch (const Error& e) {
    throw DataError(e.what());
  }
  return decode_image(bytes, p.string());
}

}  // namespace det::data
