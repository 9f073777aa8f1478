#pragma once
/// \file
/// CIFAR-10 and CIFAR-100 in their binary formats (plain or .gz).

#include <filesystem>
#include <string>
#include <vector>

#include <torch/arg.h>

#include "det/data/image_dataset.h"

namespace det::data {

/// CIFAR options (LibTorch's style: `CifarOptions().root(dir).train(false)`).
struct CifarOptions {
  /// Looked up as root/cifar10 (cifar100), root/cifar-10-batches-bin, root.
  TORCH_ARG(std::filesystem::path, root);
  /// 10 or 100.
  TORCH_ARG(int, classes) = 10;
  /// data_batch_1..5 (train.bin) or test_batch (test.bin).
  TORCH_ARG(bool, train) = true;
  /// CIFAR-100: the 20 superclasses instead of the 100 classes.
  TORCH_ARG(bool, coarse_labels) = false;
  /// Fetch the official archive when missing and the network allows.
  TORCH_ARG(bool, download) = true;
};

/// The images (32x32x3, HWC in memory) and labels of CIFAR-10 or CIFAR-100.
class CifarDataset : public ImageSource {
 public:
  /// Throws DataError naming the file and record if a file is missing, truncated or malformed.
  explicit CifarDataset(const CifarOptions& options);
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Image image(int64_t index) const override;
  int64_t label(int64_t index) const override { return labels_[static_cast<size_t>(index)]; }
  /// Every image's label, in file order (0..classes-1, or 0..19 coarse).
  const std::vector<uint8_t>& labels() const { return labels_; }

  /// Parses the records of one binary file (for tests and tools).
  static void parse(const std::string& bytes, const std::string& file, int classes, bool coarse,
                    std::vector<uint8_t>& pixels_hwc, std::vector<uint8_t>& labels);

 private:
  std::vector<uint8_t> pixels_;  // N x 32 x 32 x 3
  std::vector<uint8_t> labels_;
};

}  // namespace det::data
