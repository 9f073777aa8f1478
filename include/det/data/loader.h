#pragma once
/// \file The data loader: batches assembled on background threads, delivered in order.

#include <cstdint>
#include <memory>
#include <vector>

#include "det/data/batch.h"
#include "det/data/dataset.h"
#include "det/data/sampler.h"

namespace det::data {

/// Options of a DataLoader, with fluent setters.
struct DataLoaderOptions {
  int64_t batch_size_ = 1;
  bool shuffle_ = false;
  uint64_t seed_ = 0;
  bool drop_last_ = false;
  int num_workers_ = 1;  ///< Threads assembling batches; 0 assembles on the caller's thread.
  int prefetch_ = 2;     ///< Batches each worker may have ready ahead of the consumer.

  DataLoaderOptions& batch_size(int64_t v) { return batch_size_ = v, *this; }
  DataLoaderOptions& shuffle(bool v) { return shuffle_ = v, *this; }
  DataLoaderOptions& seed(uint64_t v) { return seed_ = v, *this; }
  DataLoaderOptions& drop_last(bool v) { return drop_last_ = v, *this; }
  DataLoaderOptions& num_workers(int v) { return num_workers_ = v, *this; }
  DataLoaderOptions& prefetch(int v) { return prefetch_ = v, *this; }
};

/// A sequence of batches produced ahead of time by worker threads; see DataLoader::stream.
class BatchStream {
 public:
  virtual ~BatchStream() = default;
  /// True when every batch of the stream has been returned.
  virtual bool done() const = 0;
  /// The next batch, in order; rethrows a worker's exception. Blocks until it is ready.
  virtual Batch next() = 0;
};

/// Loads batches of a dataset in sampler order. Batches are numbered globally across epochs:
/// batch `g` belongs to epoch `g / batches_per_epoch()`, which fixes its indices, so a stream can
/// start anywhere (exact resume) and its content does not depend on the number of workers.
class DataLoader {
 public:
  DataLoader(std::shared_ptr<Dataset> dataset, DataLoaderOptions options);
  /// With an explicit sampler (its size must equal the dataset's).
  DataLoader(std::shared_ptr<Dataset> dataset, std::shared_ptr<Sampler> sampler, DataLoaderOptions options);

  /// Batches in one epoch (a partial last batch counts unless drop_last).
  int64_t batches_per_epoch() const;
  int64_t batch_size() const { return options_.batch_size_; }
  const DataLoaderOptions& options() const { return options_; }
  const Dataset& dataset() const { return *dataset_; }
  /// Dataset indices of global batch `g`.
  std::vector<int64_t> batch_indices(int64_t g) const;

  /// Batches `first`, `first+1`, ... up to `end` (exclusive; -1 = forever, repeating epochs).
  std::unique_ptr<BatchStream> stream(int64_t first, int64_t end) const;

  /// Sets the epoch that `begin()` iterates (as PyTorch's `sampler.set_epoch`).
  void set_epoch(int64_t epoch) { epoch_ = epoch; }

  /// Range-for over one epoch (the one set with set_epoch).
  class Iterator {
   public:
    Iterator() = default;
    explicit Iterator(std::shared_ptr<BatchStream> s);
    Batch& operator*() { return current_; }
    Batch* operator->() { return &current_; }
    Iterator& operator++();
    bool operator!=(const Iterator& o) const { return stream_ != o.stream_; }

   private:
    std::shared_ptr<BatchStream> stream_;
    Batch current_;
  };
  Iterator begin() const;
  Iterator end() const { return Iterator(); }

 private:
  std::shared_ptr<Dataset> dataset_;
  std::shared_ptr<Sampler> sampler_;
  DataLoaderOptions options_;
  int64_t epoch_ = 0;
};

}  // namespace det::data
