#pragma once
/// \file Map-style datasets: a size and a way to assemble a batch from indices.

#include <cstdint>
#include <vector>

#include "det/data/batch.h"

namespace det::data {

/// A map-style dataset. `get_batch` must be thread-safe: the loader calls it from worker threads.
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// Number of examples.
  virtual int64_t size() const = 0;
  /// The examples at `indices`, stacked into one batch, in that order.
  virtual Batch get_batch(const std::vector<int64_t>& indices) const = 0;
};

/// A dataset over two in-memory tensors (inputs and targets with the same first dimension).
class TensorDataset : public Dataset {
 public:
  /// Throws det::DataError if the first dimensions differ.
  TensorDataset(torch::Tensor data, torch::Tensor target);
  int64_t size() const override { return data_.size(0); }
  Batch get_batch(const std::vector<int64_t>& indices) const override;

 private:
  torch::Tensor data_, target_;
};

}  // namespace det::data
