#pragma once
// Internal to the core layer: the device settings of a trial (cuDNN, TF32, memory format) and
// the CUDA memory figures of its training reports.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

#include "det/config/experiment_config.h"
#include "det/data/batch.h"

namespace det::detail {

/// Applies optimizations.cudnn_benchmark and tf32 (process-wide switches of LibTorch); returns
/// one line per setting that has no effect on `device` (the CPU), for a notice.
std::vector<std::string> apply_backend_options(const config::OptimizationsConfig& o,
                                               const torch::Device& device);

/// Converts the 4-D parameters and buffers of `models` to channels-last memory format in place
/// (optimizers keep referring to the same tensors).
void to_channels_last(const std::vector<std::shared_ptr<torch::nn::Module>>& models);

/// The batch with its 4-D floating-point tensors in channels-last memory format.
data::Batch to_channels_last(data::Batch batch);

/// The peak bytes allocated on a CUDA `device` since the last reset; nullopt on the CPU or in a
/// build without CUDA.
std::optional<int64_t> peak_device_memory(const torch::Device& device);

/// Starts a new peak for peak_device_memory.
void reset_peak_device_memory(const torch::Device& device);

}  // namespace det::detail
