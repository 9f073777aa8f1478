#include "det/data/image_folder.h"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>

#include <spdlog/spdlog.h>

#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/log.h"
#include "image_codec.h"

namespace det::data {
namespace fs = std::filesystem;

namespace {

// Why an image cannot be used, from what start-up can afford to check: the size in its header
// against the pixel limit (never decoding an oversized image), and a full decode for JPEG,
// whose body is the only reliable check. "" when it is fine.
std::string undecodable_reason(const fs::path& p, int64_t max_pixels) {
  std::string bytes;
  try {
    bytes = util::read_file(p);
  } catch (const std::exception& e) {
    return e.what();
  }
  if (!is_jpeg(bytes) && !is_png(bytes)) return "not a JPEG or PNG image (unknown signature)";
  try {
    if (auto info = peek_image_info(bytes))
      check_image_pixels(info->height, info->width, p.string(), max_pixels, false);
    if (is_jpeg(bytes))
      decode_jpeg(bytes, p.string(), max_pixels, nullptr);
    else if (bytes.size() < 24)
      return "truncated PNG header";
  } catch (const std::exception& e) {
    // The message names the file; the warning names it already.
    std::string why = e.what(), prefix = p.string() + ": ";
    return why.rfind(prefix, 0) == 0 ? why.substr(prefix.size()) : why;
  }
  return "";
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
  std::transform(e.begin(), e.end(), e.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e;
}

}  // namespace

ImageFolder::ImageFolder(const ImageFolderOptions& o) : max_image_pixels_(o.max_image_pixels()) {
  if (!fs::is_directory(o.root()))
    throw DataError(o.root().string() +
                    ": no such directory (an ImageFolder root holds one sub-directory per class)");
  for (const auto& e : fs::directory_iterator(o.root()))
    if (e.is_directory()) classes_.push_back(e.path().filename().string());
  std::sort(classes_.begin(), classes_.end());
  if (classes_.empty())
    throw DataError(o.root().string() +
                    ": no class sub-directories (expected root/<class>/<image>)");
  std::map<std::string, int64_t> ignored;  // extension -> count
  for (size_t c = 0; c < classes_.size(); ++c) {
    std::vector<fs::path> found;
    for (const auto& e : fs::recursive_directory_iterator(
             o.root() / classes_[c], fs::directory_options::follow_directory_symlink)) {
      if (!e.is_regular_file()) continue;
      std::string ext = lower_ext(e.path());
      if (ext == ".jpg" || ext == ".jpeg" || ext == ".png")
        found.push_back(e.path());
      else
        ++ignored[ext.empty() ? "(none)" : ext];
    }
    std::sort(found.begin(), found.end());
    for (auto& f : found) {
      if (o.skip_undecodable()) {
        if (std::string why = undecodable_reason(f, o.max_image_pixels()); !why.empty()) {
          ++skipped_;
          util::logger()->warn("ImageFolder: skipping {}: {}", f.string(), why);
          continue;
        }
      }
      files_.push_back(std::move(f));
      labels_.push_back(static_cast<int64_t>(c));
    }
  }
  for (const auto& [ext, n] : ignored)
    util::logger()->warn(
        "ImageFolder {}: {} file(s) with extension {} are not JPEG/PNG and were not indexed",
        o.root().string(), n, ext);
  if (skipped_)
    util::logger()->warn("ImageFolder {}: skipped {} undecodable image(s)", o.root().string(),
                         skipped_);
  if (files_.empty() && skipped_ > 0)
    throw DataError(o.root().string() + ": all " + std::to_string(skipped_) +
                    " images were skipped as undecodable (the warnings above say why for each)");
  if (files_.empty())
    throw DataError(o.root().string() +
                    ": no .jpg, .jpeg or .png image under its class directories");
  util::logger()->info("ImageFolder {}: {} images in {} classes", o.root().string(), files_.size(),
                       classes_.size());
}

Image ImageFolder::image_window(int64_t index, const WindowChooser& choose) const {
  const auto& p = files_[static_cast<size_t>(index)];
  std::string bytes = read_bytes(p);
  if (is_jpeg(bytes)) return decode_jpeg(bytes, p.string(), max_image_pixels_, &choose);
  return ImageSource::image_window_of(decode_image(bytes, p.string(), max_image_pixels_), choose);
}

Image ImageFolder::image(int64_t index) const {
  const auto& p = files_[static_cast<size_t>(index)];
  return decode_image(read_bytes(p), p.string(), max_image_pixels_);
}

}  // namespace det::data
