#pragma once
/// \file
/// Datasets of labelled images passed through a transform pipeline, example by example.

#include <functional>
#include <memory>

#include "det/data/dataset.h"
#include "det/data/image.h"
#include "det/data/mixup.h"
#include "det/data/transforms.h"

namespace det::data {

/// Picks a window of an image given the image's height and width.
using WindowChooser = std::function<Window(int64_t height, int64_t width)>;

/// Labelled images (CIFAR, ImageFolder). Must be thread-safe.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  /// Number of images.
  virtual int64_t size() const = 0;
  /// The decoded image `index` (HWC, 8-bit).
  virtual Image image(int64_t index) const = 0;
  /// The window of image `index` that `choose` picks once it knows the image's size (pixels
  /// outside the image are 0). A source that can decode part of an image faster overrides this;
  /// the result must equal cropping the whole image.
  virtual Image image_window(int64_t index, const WindowChooser& choose) const {
    return image_window_of(image(index), choose);
  }
  /// The class of image `index`, from 0.
  virtual int64_t label(int64_t index) const = 0;

 protected:
  /// The window of a decoded image.
  static Image image_window_of(const Image& image, const WindowChooser& choose) {
    Window w = choose(image.height, image.width);
    return crop(image, w.top, w.left, w.height, w.width);
  }
};

/// Applies `pipeline` to each example with its own random stream (BatchRequest::sample_seed) and
/// writes it straight into the batch tensor [B, C, H, W] (float32); targets are int64 labels, or
/// [B, classes] soft labels when a batch-level `mixup` is given.
class ImageDataset : public Dataset {
 public:
  /// Examples of `source` through `pipeline`; with `mixup`, batches are mixed and targets soft.
  ImageDataset(std::shared_ptr<ImageSource> source, Pipeline pipeline,
               std::shared_ptr<Mixup> mixup = nullptr)
      : source_(std::move(source)), pipeline_(std::move(pipeline)), mixup_(std::move(mixup)) {
    if (!pipeline_.transforms().empty())
      first_window_ = dynamic_cast<const WindowTransform*>(pipeline_.transforms().front().get());
  }
  int64_t size() const override { return source_->size(); }
  Batch get_batch(const BatchRequest& request) const override;
  /// The images and labels behind the dataset.
  const ImageSource& source() const { return *source_; }

 private:
  std::shared_ptr<ImageSource> source_;
  Pipeline pipeline_;
  std::shared_ptr<Mixup> mixup_;
  const WindowTransform* first_window_ =
      nullptr;  // the pipeline's first transform, if it cuts a window
};

}  // namespace det::data
