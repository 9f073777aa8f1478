#pragma once
/// \file
/// Checkpoint directories: written under a temporary name, every file fsynced, renamed when
/// whole. The metadata format is record::CheckpointMetadata (det/record/checkpoint.h).
///
///   <uuid>/metadata.json   record::CheckpointMetadata: format version, LibTorch version, trial
///                          state, hparams, data position, LR scheduler and callback states,
///                          and the size and CRC-32 of each file
///   <uuid>/state.pt        LibTorch archive: model_<i>, optimizer_<i>, rng_cpu (and rng_cuda)

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include "det/record/checkpoint.h"

namespace det::checkpoint {

/// `dir` made absolute and without a trailing separator (so parent_path() is the checkpoints/
/// folder even for "ckpt/").
std::filesystem::path normalize_dir(const std::filesystem::path& dir);

/// A random UUID (version 4) naming a checkpoint.
std::string new_uuid();

/// Writes a checkpoint into its staging directory `parent/.tmp-<metadata.uuid>` (every file
/// fsynced) and returns that directory; commit() makes it the checkpoint. Fills in the
/// metadata's format version, LibTorch version, models, optimizer count and file digests.
/// Throws det::CheckpointError (leaving no partial directory behind) if anything cannot be
/// written, e.g. a full disk; the previous checkpoints are untouched.
std::filesystem::path write(
    const std::filesystem::path& parent, record::CheckpointMetadata metadata,
    const std::vector<std::shared_ptr<torch::nn::Module>>& models,
    const std::vector<std::shared_ptr<torch::optim::Optimizer>>& optimizers);

/// Renames a staging directory written by write() to `parent/<uuid>` (atomic) and returns it.
/// Throws det::CheckpointError when the rename fails.
std::filesystem::path commit(const std::filesystem::path& staging_dir);

/// write() then commit(): a checkpoint for tools and tests that record nothing.
std::filesystem::path save(const std::filesystem::path& parent, record::CheckpointMetadata metadata,
                           const std::vector<std::shared_ptr<torch::nn::Module>>& models,
                           const std::vector<std::shared_ptr<torch::optim::Optimizer>>& optimizers);

/// Reads and verifies a checkpoint's metadata (record::read_checkpoint_metadata).
inline record::CheckpointMetadata read_metadata(const std::filesystem::path& dir) {
  return record::read_checkpoint_metadata(dir, /*verify_files=*/true);
}

/// Loads the models' parameters and buffers, the optimizers' state and (if `restore_rng`) the
/// RNG state. A missing key, a shape mismatch or a different number of models or optimizers
/// throws CheckpointError naming the key.
void load(const std::filesystem::path& dir,
          const std::vector<std::shared_ptr<torch::nn::Module>>& models,
          const std::vector<std::shared_ptr<torch::optim::Optimizer>>& optimizers,
          bool restore_rng);

}  // namespace det::checkpoint
