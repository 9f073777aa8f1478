#pragma once
// Data sets of the vision-transformer trials (ShiftViT, ViT): the ShiftViT example's
// `data.dataset_name` (mnist, cifar10, imagenet / image_folder) with its metadata (image size,
// channels, mean, std), images through timm's create_transform or a given pipeline.
//
// data section keys: dataset_name; root (else $DET_DATA_DIR); for ImageFolder train_dir and
// validation_dir (absolute, or relative to root), num_classes (else the train_dir classes are
// counted) and skip_undecodable; num_workers; pin_memory, persistent_workers and download_dir
// are accepted for the example's configs and not needed here.

#include <memory>
#include <string>
#include <vector>

#include "det/config/args.h"
#include "det/core/context.h"
#include "det/data/image_dataset.h"
#include "det/data/loader.h"
#include "wiring.h"

namespace det::trials {

/// What a model needs to know about its data set (the example's DATASET_METADATA).
struct VisionMetadata {
  std::string name;  // "mnist", "cifar10" or "imagenet"
  int64_t img_size = 224, in_chans = 3, num_classes = 1000;
  std::vector<float> mean, std;
};

/// MNIST as 8-bit one-channel images (what torchvision's MNIST hands to PIL transforms).
class MnistImages : public data::ImageSource {
 public:
  MnistImages(const std::filesystem::path& root, bool train);
  int64_t size() const override { return images_.size(0); }
  data::Image image(int64_t index) const override;
  int64_t label(int64_t index) const override { return labels_.data_ptr<int64_t>()[index]; }

 private:
  torch::Tensor images_, labels_;  // uint8 [N, 28, 28], int64 [N]
};

/// The data set of `data` (a trial's data config) with its metadata; ConfigError naming
/// data.dataset_name when it is missing or unknown.
class VisionData {
 public:
  explicit VisionData(const TrialContext& context);
  /// The settings the constructor and loader() read, checked without reading data
  /// (a trial's `check_config`).
  static void check(const TrialContext& context);
  const VisionMetadata& metadata() const { return meta_; }
  /// The images of the training or validation split.
  std::shared_ptr<data::ImageSource> source(bool train);
  /// A loader over `source(train)` through `pipeline`: shuffled and dropping the last partial
  /// batch when training (the example's DataLoader(shuffle=train, drop_last=train)).
  std::shared_ptr<data::DataLoader> loader(bool train, data::Pipeline pipeline);

 private:
  std::filesystem::path folder(const char* key) const;
  const TrialContext& context_;
  config::Args data_;
  VisionMetadata meta_;
  std::shared_ptr<data::ImageSource> train_source_;
};

}  // namespace det::trials
