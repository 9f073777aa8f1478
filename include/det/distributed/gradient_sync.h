#pragma once
/// \file
/// Data-parallel gradient averaging: bucketed allreduces launched from autograd hooks while
/// backward still runs (the scheme of PyTorch's DistributedDataParallel).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include <torch/types.h>

#include "det/distributed/distributed_context.h"

namespace det::distributed {

/// Options of a GradientSynchronizer.
struct GradientSyncOptions {
  std::size_t bucket_bytes_ =
      25u << 20;  ///< A bucket is launched once this many bytes of gradients are ready.
  bool overlap_ =
      true;  ///< Launch buckets from the hooks; false: all at finish() (for comparison).

  /// Sets bucket_bytes_.
  GradientSyncOptions& bucket_bytes(std::size_t v) { return bucket_bytes_ = v, *this; }
  /// Sets overlap_.
  GradientSyncOptions& overlap(bool v) { return overlap_ = v, *this; }
  /// The defaults, overridden by DET_BUCKET_MB and DET_DIST_OVERLAP=0.
  static GradientSyncOptions from_env();
};

/// Averages the gradients of `params` over the ranks of `context`.
///
/// Parameters are grouped into buckets of about `bucket_bytes` in reverse order (the order
/// backward produces their gradients). A hook on each parameter's gradient accumulator counts it
/// ready; when every gradient of a bucket is ready, and every earlier bucket has been launched
/// (so all ranks issue the collectives in the same order), the bucket is flattened and its
/// allreduce starts while backward goes on. `finish()` launches what is left (parameters that
/// got no gradient count as zero), waits, and writes the averages back into `.grad`.
class GradientSynchronizer {
 public:
  /// Buckets the trainable `params` (duplicates and frozen ones left out) and hooks their gradient
  /// accumulators; throws DistributedError when a parameter is not a leaf tensor.
  GradientSynchronizer(std::shared_ptr<DistributedContext> context,
                       std::vector<torch::Tensor> params,
                       GradientSyncOptions options = GradientSyncOptions::from_env());
  ~GradientSynchronizer();
  GradientSynchronizer(const GradientSynchronizer&) = delete;
  GradientSynchronizer& operator=(const GradientSynchronizer&) = delete;

  /// Called before each batch's backward: `reduce` is true on the batches whose gradients are
  /// applied (the last of every aggregation_frequency batches); on the others the hooks do
  /// nothing and gradients accumulate locally. Waits for a previous batch left unfinished.
  void prepare(bool reduce);
  /// Completes the reduction of this batch: the averaged gradients are in `.grad` afterwards.
  /// Returns at once when there is nothing to reduce (or it already ran for this batch).
  void finish();
  /// True while this batch's reduction has been prepared and not finished.
  bool pending() const;

  /// Counters for logs and benchmarks.
  struct Stats {
    int64_t reductions = 0;           ///< finish() calls that reduced.
    int64_t buckets_in_backward = 0;  ///< Buckets launched from hooks, during backward.
    int64_t buckets_at_finish = 0;    ///< Buckets launched by finish().
    double wait_seconds =
        0;  ///< Time finish() spent launching and waiting (communication not hidden).
  };
  /// The counters so far.
  Stats stats() const;
  /// Buckets the parameters were grouped into (a bucket holds one dtype on one device).
  std::size_t num_buckets() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace det::distributed
