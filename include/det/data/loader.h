#pragma once
/// \file
/// The data loader: batches assembled on background threads, delivered in order.

#include <cstdint>
#include <memory>
#include <vector>

#include "det/data/batch.h"
#include "det/data/dataset.h"
#include "det/data/sampler.h"

namespace det::data {

/// Options of a DataLoader, with fluent setters.
struct DataLoaderOptions {
  /// Examples per batch (per rank when sharded), >= 1.
  int64_t batch_size_ = 1;
  bool shuffle_ = false;  ///< A RandomSampler (seeded by seed_) instead of sequential order.
  uint64_t seed_ = 0;     ///< Seeds shuffling and every example's augmentation stream.
  /// Leave out the last, incomplete batch of an epoch.
  bool drop_last_ = false;
  int num_workers_ = 1;      ///< Threads assembling batches; 0 assembles on the caller's thread.
  int prefetch_ = 2;         ///< Batches each worker may have ready ahead of the consumer.
  bool pin_memory_ = false;  ///< Copy batches into page-locked memory (CUDA only) on the workers.
  int num_replicas_ = 1;     ///< Data-parallel ranks sharing the batch stream.
  int rank_ = 0;             ///< This rank.
  int64_t pass_limit_ = 0;   ///< At most this many batches per pass (validation); 0: all.

  /// Sets batch_size_ (>= 1, checked by the DataLoader).
  DataLoaderOptions& batch_size(int64_t v) { return batch_size_ = v, *this; }
  /// Sets shuffle_.
  DataLoaderOptions& shuffle(bool v) { return shuffle_ = v, *this; }
  /// Sets seed_.
  DataLoaderOptions& seed(uint64_t v) { return seed_ = v, *this; }
  /// Sets drop_last_.
  DataLoaderOptions& drop_last(bool v) { return drop_last_ = v, *this; }
  /// Sets num_workers_ (negative counts as 0).
  DataLoaderOptions& num_workers(int v) { return num_workers_ = v, *this; }
  /// Sets prefetch_ (less than 1 counts as 1).
  DataLoaderOptions& prefetch(int v) { return prefetch_ = v, *this; }
  /// Pinned batches make the harness's host-to-device copies asynchronous (non_blocking). Ignored
  /// without CUDA.
  DataLoaderOptions& pin_memory(bool v) { return pin_memory_ = v, *this; }
  /// Determined's DistributedBatchSampler: of the (repeating) stream of batches, rank r keeps
  /// batches r, r + n, r + 2n, ...; each rank's batches hold batch_size examples (per slot).
  DataLoaderOptions& shard(int num_replicas, int rank) {
    return num_replicas_ = num_replicas, rank_ = rank, *this;
  }
  /// One pass (a validation, a range-for) yields at most `n` batches of this rank (0: all). The
  /// training stream is not limited.
  DataLoaderOptions& pass_limit(int64_t n) { return pass_limit_ = n, *this; }
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
  /// A RandomSampler when options shuffle, else a SequentialSampler. Throws DataError on a
  /// batch size below 1, a rank outside [0, replicas) or a negative pass limit.
  DataLoader(std::shared_ptr<Dataset> dataset, DataLoaderOptions options);
  /// With an explicit sampler (its size must equal the dataset's).
  DataLoader(std::shared_ptr<Dataset> dataset, std::shared_ptr<Sampler> sampler,
             DataLoaderOptions options);

  /// Batches in one epoch for this rank: ceil(global batches / replicas), the chief's count,
  /// which Determined uses as every rank's epoch length.
  int64_t batches_per_epoch() const;
  /// Batches of one pass over the data in the whole stream, before sharding.
  int64_t global_batches_per_epoch() const;
  /// The batches this rank gets from one pass (for validation): n/r + (n%r > rank), at most the
  /// pass limit.
  int64_t batches_in_one_pass() const;
  /// Examples per batch (per rank).
  int64_t batch_size() const { return options_.batch_size_; }
  /// The options, as normalized by the constructor.
  const DataLoaderOptions& options() const { return options_; }
  /// The dataset batches are drawn from.
  const Dataset& dataset() const { return *dataset_; }
  /// The same dataset, sampler and options, sharded for `rank` of `num_replicas` (the harness
  /// shards a trial's loaders this way when it runs on several ranks).
  std::shared_ptr<DataLoader> sharded(int num_replicas, int rank) const;
  /// The same loader with one pass cut to at most `n` batches (test mode, a quick validation).
  std::shared_ptr<DataLoader> limited(int64_t n) const;
  /// Dataset indices of this rank's batch `b` (global batch b * replicas + rank).
  std::vector<int64_t> batch_indices(int64_t b) const;

  /// This rank's batches `first`, `first+1`, ... up to `end` (exclusive; -1 = forever,
  /// repeating epochs).
  std::unique_ptr<BatchStream> stream(int64_t first, int64_t end) const;

  /// Sets the epoch that `begin()` iterates (as PyTorch's `sampler.set_epoch`).
  void set_epoch(int64_t epoch) { epoch_ = epoch; }

  /// Range-for over one epoch (the one set with set_epoch).
  class Iterator {
   public:
    Iterator() = default;
    /// Starts at the stream's first batch (blocks until it is ready).
    explicit Iterator(std::shared_ptr<BatchStream> s);
    /// The current batch.
    Batch& operator*() { return current_; }
    /// The current batch.
    Batch* operator->() { return &current_; }
    /// Moves to the next batch; at the end the iterator equals end().
    Iterator& operator++();
    /// Whether the two iterate different streams; an iterator at the end equals end().
    bool operator!=(const Iterator& o) const { return stream_ != o.stream_; }

   private:
    std::shared_ptr<BatchStream> stream_;
    Batch current_;
  };
  /// Starts one pass over the epoch set with set_epoch: batches_in_one_pass() batches.
  Iterator begin() const;
  /// The end of any pass.
  Iterator end() const { return Iterator(); }

 private:
  std::shared_ptr<Dataset> dataset_;
  std::shared_ptr<Sampler> sampler_;
  DataLoaderOptions options_;
  int64_t epoch_ = 0;
};

}  // namespace det::data
