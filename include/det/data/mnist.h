#pragma once
/// \file
/// MNIST in its IDX format (plain or .gz), as torchvision reads it.

#include <filesystem>
#include <string>

#include "det/config/args.h"
#include "det/data/dataset.h"

namespace det::data {

/// Reads an IDX image file (magic 2051) into a uint8 tensor [N, rows, cols].
/// Throws DataError naming the file on a wrong magic number or a truncated body.
torch::Tensor read_idx_images(const std::filesystem::path& path);

/// Reads an IDX label file (magic 2049) into an int64 tensor [N].
torch::Tensor read_idx_labels(const std::filesystem::path& path);

/// The directory holding datasets: `data.root` of the config (`context.data_args()`) if set,
/// else $DET_DATA_DIR, else "./data". A root that is not a string is a ConfigError.
std::filesystem::path data_root(const config::Args& data);

/// MNIST options.
struct MnistOptions {
  std::filesystem::path root;  ///< Looked up as root/mnist, root/MNIST/raw, then root itself.
  bool train = true;           ///< The 60000 training images, else the 10000 test images.
  bool normalize = true;       ///< ToTensor then Normalize((0.1307,), (0.3081,)), as the example.
  /// @{
  /// Normalize's mean and std (used when `normalize`).
  double mean = 0.1307, std = 0.3081;
  /// @}
  bool download = true;  ///< Fetch missing files from the public mirrors if the network allows.
};

/// MNIST as float images [N, 1, 28, 28] in [0, 1] (then normalized) and int64 labels.
class MnistDataset : public Dataset {
 public:
  /// Throws DataError if the files are missing (saying which files to put where), truncated or
  /// malformed.
  explicit MnistDataset(const MnistOptions& options);
  int64_t size() const override { return images_.size(0); }
  Batch get_batch(const BatchRequest& request) const override;
  /// All images, [N, 1, 28, 28] float32 (normalized when options.normalize).
  const torch::Tensor& images() const { return images_; }
  /// All labels, [N] int64 in 0..9.
  const torch::Tensor& labels() const { return labels_; }

 private:
  torch::Tensor images_, labels_;
};

}  // namespace det::data
