#pragma once
/// \file Datasets of labelled images passed through a transform pipeline, example by example.

#include <memory>

#include "det/data/dataset.h"
#include "det/data/image.h"
#include "det/data/mixup.h"
#include "det/data/transforms.h"

namespace det::data {

/// Labelled images (CIFAR, ImageFolder). Must be thread-safe.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual int64_t size() const = 0;
  /// The decoded image `index` (HWC, 8-bit).
  virtual Image image(int64_t index) const = 0;
  virtual int64_t label(int64_t index) const = 0;
};

/// Applies `pipeline` to each example with its own random stream (BatchRequest::sample_seed) and
/// writes it straight into the batch tensor [B, C, H, W] (float32); targets are int64 labels, or
/// [B, classes] soft labels when a batch-level `mixup` is given.
class ImageDataset : public Dataset {
 public:
  ImageDataset(std::shared_ptr<ImageSource> source, Pipeline pipeline, std::shared_ptr<Mixup> mixup = nullptr)
      : source_(std::move(source)), pipeline_(std::move(pipeline)), mixup_(std::move(mixup)) {}
  int64_t size() const override { return source_->size(); }
  Batch get_batch(const BatchRequest& request) const override;
  const ImageSource& source() const { return *source_; }

 private:
  std::shared_ptr<ImageSource> source_;
  Pipeline pipeline_;
  std::shared_ptr<Mixup> mixup_;
};

}  // namespace det::data
