#pragma once
/// \file A batch of examples: inputs and targets.

#include <cstdint>

#include <torch/types.h>

namespace det::data {

/// One batch: `data` (inputs, first dimension = batch) and `target` (labels or regression targets).
struct Batch {
  torch::Tensor data;
  torch::Tensor target;
  /// Number of examples (the first dimension of `data`).
  int64_t size() const { return data.defined() && data.dim() > 0 ? data.size(0) : 0; }
  /// Both tensors moved to `device` (non-blocking from pinned memory).
  Batch to(const torch::Device& device, bool non_blocking = false) const;
};

}  // namespace det::data
