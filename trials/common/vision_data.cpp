#include "vision_data.h"

#include <cstring>

#include <torch/torch.h>

#include "det/data/cifar.h"
#include "det/data/image_folder.h"
#include "det/data/mnist.h"
#include "det/util/error.h"

namespace det::trials {

MnistImages::MnistImages(const std::filesystem::path& root, bool train) {
  data::MnistOptions o;
  o.root = root;
  o.train = train;
  o.normalize = false;
  data::MnistDataset ds(o);  // [N,1,28,28] float x/255: exact to invert
  images_ = ds.images().squeeze(1).mul(255.0f).round_().to(torch::kUInt8).contiguous();
  labels_ = ds.labels();
}

data::Image MnistImages::image(int64_t index) const {
  data::Image img = data::Image::uninitialized(28, 28, 1);
  std::memcpy(img.pixels.data(), images_[index].data_ptr<uint8_t>(), 28 * 28);
  return img;
}

VisionData::VisionData(const TrialContext& context) : context_(context), data_(context.data_config()) {
  std::string name = data_.value("dataset_name", std::string());
  if (name == "mnist") {
    meta_ = {"mnist", 28, 1, 10, {0.1307f}, {0.3081f}};
  } else if (name == "cifar10") {
    meta_ = {"cifar10", 32, 3, 10, {0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
  } else if (name == "imagenet" || name == "image_folder") {
    meta_ = {"imagenet", 224, 3, 1000, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    if (data_.contains("num_classes")) {
      meta_.num_classes = data_["num_classes"].get<int64_t>();
    } else {
      auto src = source(true);
      meta_.num_classes = static_cast<int64_t>(static_cast<data::ImageFolder&>(*src).classes().size());
    }
  } else {
    throw ConfigError("data.dataset_name: " + (name.empty() ? std::string("missing") : "'" + name + "' is not known") +
                      "; set it to mnist, cifar10 or imagenet (an ImageFolder tree)");
  }
  if (data_.contains("img_size")) meta_.img_size = data_["img_size"].get<int64_t>();
}

std::filesystem::path VisionData::folder(const char* key) const {
  if (!data_.contains(key))
    throw ConfigError(std::string("data.") + key + ": missing; give the ImageFolder directory (root/<class>/<image>) for dataset_name " + meta_.name);
  std::filesystem::path p = data_[key].get<std::string>();
  return p.is_absolute() ? p : data::data_root(data_) / p;
}

std::shared_ptr<data::ImageSource> VisionData::source(bool train) {
  if (train && train_source_) return train_source_;
  std::shared_ptr<data::ImageSource> src;
  if (meta_.name == "mnist") {
    src = std::make_shared<MnistImages>(data::data_root(data_), train);
  } else if (meta_.name == "cifar10") {
    data::CifarOptions o;
    o.root = data::data_root(data_);
    o.train = train;
    src = std::make_shared<data::CifarDataset>(o);
  } else {
    data::ImageFolderOptions o;
    o.root = folder(train ? "train_dir" : "validation_dir");
    o.skip_undecodable = data_.value("skip_undecodable", false);
    src = std::make_shared<data::ImageFolder>(o);
  }
  if (train) train_source_ = src;
  return src;
}

std::shared_ptr<data::DataLoader> VisionData::loader(bool train, data::Pipeline pipeline) {
  auto dataset = std::make_shared<data::ImageDataset>(source(train), std::move(pipeline));
  auto opts = data::DataLoaderOptions()
                  .batch_size(context_.per_slot_batch_size())
                  .shuffle(train)
                  .drop_last(train)
                  .seed(context_.trial_seed())
                  .pin_memory(context_.device().is_cuda())
                  .num_workers(data_.value("num_workers", 2));
  return std::make_shared<data::DataLoader>(dataset, opts);
}

}  // namespace det::trials
