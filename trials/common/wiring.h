#pragma once
// The loader and scheduler wiring the bundled trials share: the loader options every trial starts
// from (its per-slot batch, its seed, pinned memory on CUDA, data.num_workers threads), the
// data.transforms section of a split, and timm's cosine schedule stepped once per epoch.

#include <cstdint>

#include <torch/optim/optimizer.h>

#include "det/config/args.h"
#include "det/core/context.h"
#include "det/data/loader.h"

namespace det::trials {

/// The bounds of `data.num_workers`: loader threads, each holding batches in flight.
inline const config::Range kNumWorkersRange{0, 256};

/// `data.num_workers` of every trial here (0..256: each worker is a thread), or `fallback`.
int num_workers(const config::Args& data, int fallback);

/// The loader settings every trial here reads (`data.num_workers`, `data.shuffle`), checked
/// without reading data: the trials' `check_config` (TrialConfigCheck) calls it.
void check_loader_settings(const config::Args& data);

/// The options every loader here starts from: `batch_size` examples, the trial's seed, pinned
/// memory when the device is CUDA, `data.num_workers` threads (else `default_workers`). Read
/// before any data file, so that a config mistake is reported first.
data::DataLoaderOptions loader_options(const TrialContext& context, int64_t batch_size,
                                       int default_workers);

/// `data.transforms.train` or `data.transforms.validation` (a null view when not given).
config::Args transforms_section(const TrialContext& context, bool train);

/// timm's cosine schedule from a `scheduler` section (det::optim::CosineOptions::from_json) over
/// `optimizer`, wrapped to step once per epoch (the timm examples step it when an epoch ends).
void wrap_timm_cosine(TrialContext& context, torch::optim::Optimizer& optimizer,
                      const config::Args& section);

}  // namespace det::trials
