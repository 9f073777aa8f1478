#pragma once
/// \file
/// ImageFolder: `root/<class>/<image>` trees (ImageNet's train/ and val/ layouts), JPEG
/// (libjpeg-turbo) and PNG (libpng), decoded to 8-bit RGB as torchvision's ImageFolder does
/// (decode_image in det/data/image.h).

#include <filesystem>
#include <string>
#include <vector>

#include <torch/arg.h>

#include "det/data/image_dataset.h"

namespace det::data {

/// ImageFolder options (LibTorch's style: `ImageFolderOptions().root(dir)`).
struct ImageFolderOptions {
  /// Holds one sub-directory per class.
  TORCH_ARG(std::filesystem::path, root);
  /// Check every file's header at start-up and leave out, with a count and a logged list, the
  /// ones that cannot be decoded. When false (the default) such a file is an error when read.
  TORCH_ARG(bool, skip_undecodable) = false;
  /// PIL's `Image.MAX_IMAGE_PIXELS`: images with more pixels are decoded with a warning, those
  /// with more than twice as many are refused from their header, never decoded (skipped, with a
  /// warning naming them, under skip_undecodable). 0: no limit. Default: $DET_MAX_IMAGE_PIXELS,
  /// else kPilMaxImagePixels (89,478,485).
  TORCH_ARG(int64_t, max_image_pixels) = default_max_image_pixels();
};

/// Images under root/<class>/ (recursively), classes sorted by name and numbered from 0, files
/// sorted by path, as torchvision.datasets.ImageFolder. Files with extensions other than
/// .jpg/.jpeg/.png are not images to this reader; they are counted and logged, never silently
/// dropped.
class ImageFolder : public ImageSource {
 public:
  /// Throws DataError if the root is missing or holds no class directory or no image.
  explicit ImageFolder(const ImageFolderOptions& options);
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Image image(int64_t index) const override;
  /// A JPEG's window is decoded alone: rows outside it are skipped or never decoded.
  Image image_window(int64_t index, const WindowChooser& choose) const override;
  int64_t label(int64_t index) const override { return labels_[static_cast<size_t>(index)]; }
  /// The class names (sub-directory names), sorted; label i is classes()[i].
  const std::vector<std::string>& classes() const { return classes_; }
  /// The file of image `index`.
  const std::filesystem::path& path(int64_t index) const {
    return files_[static_cast<size_t>(index)];
  }
  /// Files left out by skip_undecodable.
  int64_t skipped() const { return skipped_; }

 private:
  std::vector<std::string> classes_;
  std::vector<std::filesystem::path> files_;
  std::vector<int64_t> labels_;
  int64_t skipped_ = 0;
  int64_t max_image_pixels_ = kPilMaxImagePixels;
};

}  // namespace det::data
