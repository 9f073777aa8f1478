#pragma once
/// \file
/// Samplers: the order of a dataset's indices in each epoch.

#include <cstdint>
#include <memory>
#include <vector>

namespace det::data {

/// Gives the index order of an epoch. `indices(epoch)` is a pure function of the epoch, so a
/// loader can start at any position (resume) and worker threads need no shared sampler state.
class Sampler {
 public:
  virtual ~Sampler() = default;
  /// Number of indices per epoch.
  virtual int64_t size() const = 0;
  /// The order of epoch `epoch`.
  virtual std::vector<int64_t> indices(int64_t epoch) const = 0;
  /// Sets the epoch used by `indices()` without an argument (PyTorch's `set_epoch`).
  void set_epoch(int64_t epoch) { epoch_ = epoch; }
  /// The order of the epoch last given to `set_epoch` (0 by default).
  std::vector<int64_t> indices() const { return indices(epoch_); }

 private:
  int64_t epoch_ = 0;
};

/// 0, 1, ..., n-1 every epoch.
class SequentialSampler : public Sampler {
 public:
  /// Indices 0..n-1.
  explicit SequentialSampler(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  std::vector<int64_t> indices(int64_t epoch) const override;

 private:
  int64_t n_;
};

/// A fresh permutation every epoch, a pure function of (seed, epoch).
class RandomSampler : public Sampler {
 public:
  /// Permutations of 0..n-1 drawn from (seed, epoch).
  RandomSampler(int64_t n, uint64_t seed) : n_(n), seed_(seed) {}
  int64_t size() const override { return n_; }
  std::vector<int64_t> indices(int64_t epoch) const override;

 private:
  int64_t n_;
  uint64_t seed_;
};

}  // namespace det::data
