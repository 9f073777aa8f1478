#pragma once
/// \file
/// MNIST in its IDX format (plain or .gz), as torchvision reads it.

#include <filesystem>
#include <string>

#include <torch/arg.h>

#include "det/config/args.h"
#include "det/data/dataset.h"

namespace det::data {

/// Reads an IDX image file (magic 2051) into a uint8 tensor [N, rows, cols].
/// Throws DataError naming the file on a wrong magic number or a truncated body.
torch::Tensor read_idx_images(const std::filesystem::path& path);

/// Reads an IDX label file (magic 2049) into an int64 tensor [N].
torch::Tensor read_idx_labels(const std::filesystem::path& path);

/// The directory holding datasets: `data.root` of the config (`context.data()`) if set,
/// else $DET_DATA_DIR, else "./data". A root that is not a string is a ConfigError.
std::filesystem::path data_root(const config::Args& data);

/// MNIST options (LibTorch's style: `MnistOptions().root(dir).train(false)`).
struct MnistOptions {
  /// Looked up as root/mnist, root/MNIST/raw, then root itself.
  TORCH_ARG(std::filesystem::path, root);
  /// The 60000 training images, else the 10000 test images.
  TORCH_ARG(bool, train) = true;
  /// ToTensor then Normalize((0.1307,), (0.3081,)), as the example.
  TORCH_ARG(bool, normalize) = true;
  /// Normalize's mean (used when `normalize`).
  TORCH_ARG(double, mean) = 0.1307;
  /// Normalize's standard deviation (used when `normalize`).
  TORCH_ARG(double, stddev) = 0.3081;
  /// Fetch missing files from the public mirrors if the network allows.
  TORCH_ARG(bool, download) = true;
};

/// MNIST as float images [N, 1, 28, 28] in [0, 1] (then normalized) and int64 labels.
class MnistDataset : public Dataset {
 public:
  /// Throws DataError if the files are missing (saying which files to put where), truncated or
  /// malformed.
  explicit MnistDataset(const MnistOptions& options);
  int64_t size() const override { return pixels_.size(0); }
  /// The requested images as float32 [B, 1, 28, 28] (x / 255, then normalized when
  /// options.normalize, exactly as torchvision's ToTensor + Normalize) and their labels.
  Batch get_batch(const BatchRequest& request) const override;
  /// All images as float32, computed on each call (a new tensor: 4 bytes a pixel); batches
  /// come from get_batch.
  torch::Tensor images() const;
  /// All images as stored: [N, 1, 28, 28] uint8, the file's bytes.
  const torch::Tensor& pixels() const { return pixels_; }
  /// All labels, [N] int64 in 0..9.
  const torch::Tensor& labels() const { return labels_; }

 private:
  torch::Tensor to_float(const torch::Tensor& pixels) const;
  torch::Tensor pixels_, labels_;
  bool normalize_ = true;
  float mean_ = 0, std_ = 1;
};

}  // namespace det::data
