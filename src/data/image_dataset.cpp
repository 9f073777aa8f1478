#include "det/data/image_dataset.h"

#include "det/data/augment.h"
#include "det/util/error.h"

namespace det::data {

Batch ImageDataset::get_batch(const BatchRequest& request) const {
  const auto n = static_cast<int64_t>(request.indices.size());
  torch::Tensor data, target = torch::empty({n}, torch::kLong);
  auto* labels = target.data_ptr<int64_t>();
  int64_t c = 0, h = 0, w = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t index = request.indices[static_cast<size_t>(i)];
    Image img = source_->image(index);
    SampleRng rng(request.sample_seed(static_cast<size_t>(i)));
    pipeline_.transform(img, rng);
    if (i == 0) {
      c = img.channels, h = img.height, w = img.width;
      data = torch::empty({n, c, h, w}, torch::kFloat32);
    } else if (img.channels != c || img.height != h || img.width != w) {
      throw DataError("example " + std::to_string(index) + " is " + std::to_string(img.height) + "x" +
                      std::to_string(img.width) + "x" + std::to_string(img.channels) + " after the transforms, but example " +
                      std::to_string(request.indices[0]) + " is " + std::to_string(h) + "x" + std::to_string(w) + "x" +
                      std::to_string(c) + ": add a crop or resize so that every example has the same size");
    }
    float* example = data.data_ptr<float>() + i * c * h * w;
    pipeline_.to_tensor(img, example);
    // Transforms of the normalized tensor (RandomErasing) come last, as in timm.
    augment::apply_tensor_transforms(pipeline_, example, c, h, w, rng);
    labels[i] = source_->label(index);
  }
  return {data, target};
}

}  // namespace det::data
