#pragma once
/// \file
/// The data loader: batches assembled on background threads, delivered in order.

#include <cstdint>
#include <memory>
#include <vector>

#include <torch/arg.h>

#include "det/data/batch.h"
#include "det/data/dataset.h"
#include "det/data/sampler.h"

namespace det::data {

/// Options of a DataLoader, as LibTorch's option structs: `o.batch_size(32)` sets (and chains),
/// `o.batch_size()` reads.
struct DataLoaderOptions {
  /// Examples per batch (per rank when sharded), >= 1 (checked by the DataLoader).
  TORCH_ARG(int64_t, batch_size) = 1;
  /// A RandomSampler (seeded by seed) instead of sequential order.
  TORCH_ARG(bool, shuffle) = false;
  /// Seeds shuffling and every example's augmentation stream.
  TORCH_ARG(uint64_t, seed) = 0;
  /// Leave out the last, incomplete batch of an epoch.
  TORCH_ARG(bool, drop_last) = false;
  /// Threads assembling batches; 0 assembles on the caller's thread (negative counts as 0).
  TORCH_ARG(int, num_workers) = 1;
  /// Batches each worker may have ready ahead of the consumer (less than 1 counts as 1).
  TORCH_ARG(int, prefetch) = 2;
  /// Copy batches into page-locked memory on the workers: the harness's host-to-device copies
  /// become asynchronous (non_blocking). Ignored without CUDA.
  TORCH_ARG(bool, pin_memory) = false;
  /// Data-parallel ranks sharing the batch stream (see shard()).
  TORCH_ARG(int, num_replicas) = 1;
  /// This rank, in [0, num_replicas).
  TORCH_ARG(int, rank) = 0;
  /// One pass (a validation, a range-for) yields at most this many batches of this rank (0:
  /// all). The training stream is not limited.
  TORCH_ARG(int64_t, pass_limit) = 0;

 public:
  /// Determined's DistributedBatchSampler: of the (repeating) stream of batches, rank r keeps
  /// batches r, r + n, r + 2n, ...; each rank's batches hold batch_size examples (per slot).
  /// Sets num_replicas and rank.
  DataLoaderOptions& shard(int num_replicas, int rank) {
    return this->num_replicas(num_replicas).rank(rank);
  }
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
  int64_t batch_size() const { return options_.batch_size(); }
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
