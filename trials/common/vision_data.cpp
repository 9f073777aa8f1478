#include "vision_data.h"

#include <cstring>

#include <torch/torch.h>

#include "det/data/cifar.h"
#include "det/data/image_folder.h"
#include "det/data/mnist.h"
#include "det/util/error.h"

namespace det::trials {

MnistImages::MnistImages(const std::filesystem::path& root, bool train) {
  data::MnistDataset ds(data::MnistOptions().root(root).train(train));
  images_ = ds.pixels().squeeze(1).contiguous();  // the file's bytes
  labels_ = ds.labels();
}

data::Image MnistImages::image(int64_t index) const {
  data::Image img = data::Image::uninitialized(28, 28, 1);
  std::memcpy(img.pixels.data(), images_[index].data_ptr<uint8_t>(), 28 * 28);
  return img;
}

VisionData::VisionData(const TrialContext& context) : context_(context), data_(context.data()) {
  const std::vector<std::string> names = {"mnist", "cifar10", "imagenet", "image_folder"};
  if (!data_.has("dataset_name"))
    data_["dataset_name"].fail(
        "missing; set it to mnist, cifar10 or imagenet (an ImageFolder tree)");
  const std::string name = data_.get_enum("dataset_name", names);
  if (name == "mnist") {
    meta_ = {"mnist", 28, 1, 10, {0.1307f}, {0.3081f}};
  } else if (name == "cifar10") {
    meta_ = {"cifar10", 32, 3, 10, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
  } else {
    meta_ = {"imagenet", 224, 3, 1000, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    if (data_.has("num_classes")) {
      meta_.num_classes = data_.get<int64_t>("num_classes", config::Range{1, 1e7});
    } else {
      auto src = source(true);
      meta_.num_classes =
          static_cast<int64_t>(static_cast<data::ImageFolder&>(*src).classes().size());
    }
  }
  meta_.img_size = data_.get<int64_t>("img_size", meta_.img_size, config::Range{1, 8192});
}

std::filesystem::path VisionData::folder(const char* key) const {
  if (!data_.has(key))
    data_[key].fail(
        "missing; give the ImageFolder directory (root/<class>/<image>) for dataset_name " +
        meta_.name);
  std::filesystem::path p = data_.get<std::string>(key);
  return p.is_absolute() ? p : data::data_root(data_) / p;
}

std::shared_ptr<data::ImageSource> VisionData::source(bool train) {
  if (train && train_source_) return train_source_;
  std::shared_ptr<data::ImageSource> src;
  if (meta_.name == "mnist") {
    src = std::make_shared<MnistImages>(data::data_root(data_), train);
  } else if (meta_.name == "cifar10") {
    src = std::make_shared<data::CifarDataset>(
        data::CifarOptions().root(data::data_root(data_)).train(train));
  } else {
    auto o = data::ImageFolderOptions()
                 .root(folder(train ? "train_dir" : "validation_dir"))
                 .skip_undecodable(data_.get<bool>("skip_undecodable", false));
    // PIL's MAX_IMAGE_PIXELS (docs/data.md); 0 turns the limit off.
    o.max_image_pixels(
        data_.get<int64_t>("max_image_pixels", o.max_image_pixels(), config::Range{0, 1e15}));
    src = std::make_shared<data::ImageFolder>(o);
  }
  if (train) train_source_ = src;
  return src;
}

std::shared_ptr<data::DataLoader> VisionData::loader(bool train, data::Pipeline pipeline) {
  // The options first: a config mistake is reported before any data file is read.
  auto opts =
      loader_options(context_, context_.per_slot_batch_size(), 2).shuffle(train).drop_last(train);
  auto dataset = std::make_shared<data::ImageDataset>(source(train), std::move(pipeline));
  return std::make_shared<data::DataLoader>(dataset, opts);
}

void VisionData::check(const TrialContext& context) {
  const config::Args data = context.data();
  if (!data.has("dataset_name"))
    data["dataset_name"].fail(
        "missing; set it to mnist, cifar10 or imagenet (an ImageFolder tree)");
  const std::string name =
      data.get_enum("dataset_name", {"mnist", "cifar10", "imagenet", "image_folder"});
  if (data.has("num_classes")) data.get<int64_t>("num_classes", config::Range{1, 1e7});
  data.get<int64_t>("img_size", 224, config::Range{1, 8192});
  num_workers(data, 2);
  if (name == "imagenet" || name == "image_folder") {
    data.get<bool>("skip_undecodable", false);
    data.get<int64_t>("max_image_pixels", 0, config::Range{0, 1e15});
  }
}

}  // namespace det::trials
