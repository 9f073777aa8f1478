#pragma once
/// \file
/// A batch of examples: named tensors whose first dimension is the batch. `data` (the
/// inputs) and `target` (the labels) are the two every trial has; a model with a second input,
/// a mask or extra targets adds more names.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/types.h>

namespace det::data {

/// One batch. `Batch{x, y}` gives data x and target y; `batch.set("mask", m)` adds a tensor and
/// `batch["mask"]` reads it (a name the batch does not hold is an error, never a new tensor).
struct Batch {
  torch::Tensor data;    ///< The inputs, named "data".
  torch::Tensor target;  ///< The labels or regression targets, named "target".
  /// More named tensors ("input_ids", "attention_mask", ...), each with the batch first.
  std::map<std::string, torch::Tensor> extra;

  /// The defined tensor named `name` ("data", "target" or an extra one); throws det::DataError
  /// naming the key and the names the batch holds when there is none (add tensors with set()).
  torch::Tensor& operator[](const std::string& name);
  /// The defined tensor named `name`; throws det::DataError as the non-const operator[].
  const torch::Tensor& operator[](const std::string& name) const;
  /// The same as `(*this)[name]` (std::map's spelling).
  const torch::Tensor& at(const std::string& name) const { return (*this)[name]; }
  /// Adds the tensor named `name`, or replaces it ("data" and "target" set those members).
  Batch& set(const std::string& name, torch::Tensor tensor);
  /// Whether a defined tensor is named `name`.
  bool contains(const std::string& name) const;
  /// The names of the defined tensors: data, target, then the extra ones in order.
  std::vector<std::string> names() const;
  /// Number of examples: the first dimension of `data`, else of the first defined tensor.
  int64_t size() const;
  /// Calls f(name, tensor) for every defined tensor, in names() order.
  template <typename F>
  void for_each(F&& f) {
    if (data.defined()) f(std::string("data"), data);
    if (target.defined()) f(std::string("target"), target);
    for (auto& [name, t] : extra)
      if (t.defined()) f(name, t);
  }
  /// Calls f(name, tensor) for every defined tensor, in names() order.
  template <typename F>
  void for_each(F&& f) const {
    const_cast<Batch*>(this)->for_each([&](const std::string& n, torch::Tensor& t) {
      f(n, static_cast<const torch::Tensor&>(t));
    });
  }
  /// Every tensor moved to `device` (non-blocking from pinned memory).
  Batch to(const torch::Device& device, bool non_blocking = false) const;
  /// Every tensor copied into page-locked memory (CUDA builds; for asynchronous copies).
  Batch pin_memory() const;
};

}  // namespace det::data
