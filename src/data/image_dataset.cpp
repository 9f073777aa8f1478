#include "det/data/image_dataset.h"

#include <cstdlib>
#include <map>
#include <mutex>

#include "det/util/error.h"

namespace det::data {

namespace {

// Recycles batch buffers: a fresh multi-megabyte tensor per batch is an mmap, thousands of page
// faults and an munmap, and the faults of several worker threads contend on the process's
// memory map. A tensor made here returns its buffer to the pool when the consumer drops it.
class BufferPool {
 public:
  static BufferPool& instance() {
    static auto* pool = new BufferPool();  // never destroyed: tensors may outlive static teardown
    return *pool;
  }
  torch::Tensor empty_float(const std::vector<int64_t>& sizes) {
    size_t bytes = sizeof(float);
    for (auto s : sizes) bytes *= static_cast<size_t>(s);
    bytes = (bytes + 63) / 64 * 64;
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        p = it->second.back();
        it->second.pop_back();
      }
    }
    if (!p) p = std::aligned_alloc(64, bytes);
    if (!p) throw std::bad_alloc();
    return torch::from_blob(
        p, sizes, [this, bytes](void* q) { release(q, bytes); }, torch::kFloat32);
  }

 private:
  void release(void* p, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    auto& list = free_[bytes];
    if (list.size() < kMaxPerSize) {
      list.push_back(p);
    } else {
      std::free(p);
    }
  }
  static constexpr size_t kMaxPerSize = 16;
  std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;
};

}  // namespace

Batch ImageDataset::get_batch(const BatchRequest& request) const {
  const auto n = static_cast<int64_t>(request.indices.size());
  torch::Tensor data, target = torch::empty({n}, torch::kLong);
  auto* labels = target.data_ptr<int64_t>();
  int64_t c = 0, h = 0, w = 0;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t index = request.indices[static_cast<size_t>(i)];
    SampleRng rng(request.sample_seed(static_cast<size_t>(i)));
    Image img;
    if (first_window_) {
      // Let the source decode only the window the first transform cuts (same pixels as a crop of
      // the whole image, same random draws in the same order).
      img = source_->image_window(
          index, [&](int64_t ih, int64_t iw) { return first_window_->choose_window(ih, iw, rng); });
      first_window_->apply_to_window(img, rng);
      pipeline_.transform(img, rng, 1);
    } else {
      img = source_->image(index);
      pipeline_.transform(img, rng);
    }
    if (i == 0) {
      c = img.channels, h = img.height, w = img.width;
      data = BufferPool::instance().empty_float({n, c, h, w});
    } else if (img.channels != c || img.height != h || img.width != w) {
      throw DataError("example " + std::to_string(index) + " is " + std::to_string(img.height) +
                      "x" + std::to_string(img.width) + "x" + std::to_string(img.channels) +
                      " after the transforms, but example " + std::to_string(request.indices[0]) +
                      " is " + std::to_string(h) + "x" + std::to_string(w) + "x" +
                      std::to_string(c) +
                      ": add a crop or resize so that every example has the same size");
    }
    float* example = data.data_ptr<float>() + i * c * h * w;
    pipeline_.to_tensor(img, example);
    pipeline_.transform_tensor(example, c, h, w, rng);
    labels[i] = source_->label(index);
  }
  Batch batch{data, target, {}};
  // The batch's own stream: derived from its first example's, so it is the same for any number
  // of workers.
  if (mixup_) mixup_->apply(batch, request.sample_seed(0) ^ 0x6d69787570ULL);
  return batch;
}

}  // namespace det::data
