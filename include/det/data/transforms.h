#pragma once
/// \file
/// Per-example image transforms with torchvision's semantics, composable from C++ and
/// from the config's `data` section.

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "det/config/args.h"
#include "det/data/image.h"

namespace det::data {

/// The (top, left, height, width) window of `image`; pixels outside the image are 0, so a
/// window that overhangs the image is torchvision's zero padding followed by a crop.
Image crop(const Image& image, int64_t top, int64_t left, int64_t height, int64_t width);

/// An in-place transform of one image.
class ImageTransform {
 public:
  virtual ~ImageTransform() = default;
  /// Transforms `image` in place (its size and channels may change); random draws come from `rng`.
  virtual void apply(Image& image, SampleRng& rng) const = 0;
  /// The name the config gives the transform ("random_crop", ...); identifies a pipeline's steps.
  virtual std::string name() const = 0;
};

/// A rectangle of an image.
struct Window {
  /// @{
  /// Row and column of the top-left corner (may be negative: the window overhangs the
  /// image), and the size in pixels.
  int64_t top = 0, left = 0, height = 0, width = 0;
  /// @}
};

/// A transform that first cuts a window out of the image (RandomResizedCrop). As the first
/// transform of a pipeline it lets the image source decode only that window.
class WindowTransform : public ImageTransform {
 public:
  /// Draws the window for an image of this size (the transform's first random draws).
  virtual Window choose_window(int64_t height, int64_t width, SampleRng& rng) const = 0;
  /// The rest of the transform, on the window's pixels.
  virtual void apply_to_window(Image& window, SampleRng& rng) const = 0;
  void apply(Image& image, SampleRng& rng) const override {
    const Window w = choose_window(image.height, image.width, rng);
    Image cut = crop(image, w.top, w.left, w.height, w.width);
    apply_to_window(cut, rng);
    image = std::move(cut);
  }
};

/// torchvision.transforms.RandomCrop(size, padding, fill=0): zero-pad every side by `padding`,
/// then crop `size` x `size` at a uniformly random offset.
class RandomCrop : public ImageTransform {
 public:
  /// A `size` x `size` crop after zero padding by `padding`; apply() throws DataError when the
  /// padded image is smaller than the crop.
  RandomCrop(int64_t size, int64_t padding = 0) : size_(size), padding_(padding) {}
  void apply(Image& image, SampleRng& rng) const override;
  std::string name() const override { return "random_crop"; }

 private:
  int64_t size_, padding_;
};

/// torchvision.transforms.CenterCrop(size): the offset is round((dim - size) / 2).
class CenterCrop : public ImageTransform {
 public:
  /// A `size` x `size` crop; an image smaller than that is zero-padded around it.
  explicit CenterCrop(int64_t size) : size_(size) {}
  void apply(Image& image, SampleRng& rng) const override;
  std::string name() const override { return "center_crop"; }

 private:
  int64_t size_;
};

/// torchvision.transforms.RandomHorizontalFlip(p).
class RandomHorizontalFlip : public ImageTransform {
 public:
  /// Mirrors left-right with probability `p`.
  explicit RandomHorizontalFlip(double p = 0.5) : p_(p) {}
  void apply(Image& image, SampleRng& rng) const override;
  std::string name() const override { return "random_horizontal_flip"; }

 private:
  double p_;
};

/// torchvision.transforms.RandomVerticalFlip(p).
class RandomVerticalFlip : public ImageTransform {
 public:
  /// Mirrors top-bottom with probability `p`.
  explicit RandomVerticalFlip(double p = 0.5) : p_(p) {}
  void apply(Image& image, SampleRng& rng) const override;
  std::string name() const override { return "random_vertical_flip"; }

 private:
  double p_;
};

/// A transform of one example after ToTensor + Normalize (CHW float32), e.g. RandomErasing.
class TensorTransform {
 public:
  virtual ~TensorTransform() = default;
  /// Transforms one example's `channels` x `height` x `width` values in place.
  virtual void apply(float* chw, int64_t channels, int64_t height, int64_t width,
                     SampleRng& rng) const = 0;
  /// The name the config gives the transform ("random_erasing"); identifies a pipeline's steps.
  virtual std::string name() const = 0;
};

class Pipeline;

/// Adds the transform a config entry describes to `pipeline`; `args` is the entry's mapping of
/// arguments, named (e.g. "data.transforms.train[1].random_crop") in its ConfigErrors.
using TransformFactory = std::function<void(Pipeline& pipeline, const config::Args& args)>;

/// Every transform the config can name, by name (the built-in ones and those of augment.cpp).
const std::map<std::string, TransformFactory>& transform_factories();

/// Image transforms followed by ToTensor (x / 255, CHW) and Normalize ((x - mean) / std),
/// fused into one pass that writes the example's slice of the batch tensor.
class Pipeline {
 public:
  /// ToTensor only (no Normalize) until normalize() is called.
  Pipeline();
  /// `transforms` in order, then ToTensor and Normalize with `mean`/`std` (see normalize()).
  Pipeline(std::vector<std::shared_ptr<ImageTransform>> transforms, std::vector<float> mean,
           std::vector<float> std);

  /// Adds an image transform (fluent).
  Pipeline& add(std::shared_ptr<ImageTransform> t) {
    transforms_.push_back(std::move(t));
    return *this;
  }
  /// Adds a transform of the normalized tensor, run after ToTensor + Normalize in the order added
  /// (timm places RandomErasing there), wherever it appears in a config's list.
  Pipeline& add(std::shared_ptr<TensorTransform> t) {
    tensor_transforms_.push_back(std::move(t));
    return *this;
  }
  /// Sets Normalize's mean and std (one value per channel; empty = ToTensor only).
  Pipeline& normalize(std::vector<float> mean, std::vector<float> std);

  /// Applies the image transforms in order, from the `first`-th.
  void transform(Image& image, SampleRng& rng, size_t first = 0) const;
  /// ToTensor + Normalize of `image` into `out` (CHW float, image.channels * H * W values).
  void to_tensor(const Image& image, float* out) const;
  /// Applies the tensor transforms, in order, to one example's normalized values.
  void transform_tensor(float* chw, int64_t channels, int64_t height, int64_t width,
                        SampleRng& rng) const {
    for (const auto& t : tensor_transforms_) t->apply(chw, channels, height, width, rng);
  }
  /// The image transforms, in order.
  const std::vector<std::shared_ptr<ImageTransform>>& transforms() const { return transforms_; }
  /// The tensor transforms, in order.
  const std::vector<std::shared_ptr<TensorTransform>>& tensor_transforms() const {
    return tensor_transforms_;
  }

  /// Builds a pipeline from the config, e.g.
  ///   [{random_crop: {size: 32, padding: 4}}, {random_horizontal_flip: {p: 0.5}},
  ///    {normalize: {mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}}]
  /// given as a view with its key path (`context.data().child("transforms")["train"]`, or
  /// `{json, "data.transforms.train"}`); mistakes are ConfigErrors naming the file position and
  /// entry ("exp.yaml:9:21: data.transforms.train[1].random_crop.size: ..."). Null: no transforms.
  static Pipeline from_json(const config::Args& spec);

 private:
  std::vector<std::shared_ptr<ImageTransform>> transforms_;
  std::vector<std::shared_ptr<TensorTransform>> tensor_transforms_;
  std::vector<float> mean_, std_;
  std::vector<std::array<float, 256>> luts_;  // ToTensor + Normalize per channel, see normalize()
};

}  // namespace det::data
