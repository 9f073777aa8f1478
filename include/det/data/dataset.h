#pragma once
/// \file
/// Map-style datasets: a size and a way to assemble a batch from indices.

#include <cstdint>
#include <vector>

#include "det/data/batch.h"

namespace det::data {

/// What a loader asks a dataset for: the examples of one batch, and the epoch and seed that
/// random augmentations draw from.
struct BatchRequest {
  std::vector<int64_t> indices;  ///< Dataset indices, in batch order.
  int64_t epoch = 0;             ///< The epoch the batch belongs to, from 0.
  uint64_t seed = 0;             ///< The loader's seed.
  /// The seed of example `i`'s random stream: a pure function of (seed, epoch, indices[i]), so
  /// augmentations do not depend on the number of workers or on how batches are formed.
  uint64_t sample_seed(size_t i) const;
};

/// A map-style dataset. `get_batch` must be thread-safe: the loader calls it from worker threads.
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of examples.
  virtual int64_t size() const = 0;
  /// The examples of `request.indices`, stacked into one batch, in that order.
  virtual Batch get_batch(const BatchRequest& request) const = 0;
};

/// A dataset over in-memory tensors with the same first dimension: inputs and targets, or any
/// named tensors (batches carry the same names).
class TensorDataset : public Dataset {
 public:
  /// Batches of `data` and `target`. Throws det::DataError if the first dimensions differ.
  TensorDataset(torch::Tensor data, torch::Tensor target);
  /// Batches of named tensors ("data", "target" or any other name). Throws det::DataError if
  /// none is given or the first dimensions differ.
  explicit TensorDataset(std::map<std::string, torch::Tensor> tensors);
  int64_t size() const override { return size_; }
  Batch get_batch(const BatchRequest& request) const override;

 private:
  void check();
  std::map<std::string, torch::Tensor> tensors_;
  int64_t size_ = 0;
};

}  // namespace det::data
