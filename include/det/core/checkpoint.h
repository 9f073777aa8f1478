#pragma once
/// \file Checkpoint directories: written under a temporary name and renamed when whole.
///
///   <uuid>/metadata.json   format version, LibTorch version, trial state, hparams, data
///                          position, LR scheduler states, and the size and CRC-32 of each file
///   <uuid>/state.pt        LibTorch archive: model_<i>, optimizer_<i>, rng_cpu (and rng_cuda)

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

namespace det::checkpoint {

/// The format version written into metadata.json; readers refuse newer ones.
constexpr int kFormatVersion = 1;

/// `dir` made absolute and without a trailing separator (so parent_path() is the checkpoints/
/// folder even for "ckpt/").
std::filesystem::path normalize_dir(const std::filesystem::path& dir);

/// A random UUID (version 4) naming a checkpoint.
std::string new_uuid();

/// Writes a checkpoint into `parent/uuid` atomically and returns that path. `metadata` is stored
/// in metadata.json with the format fields added. Throws det::CheckpointError (leaving no partial
/// directory behind) if anything cannot be written, e.g. a full disk.
std::filesystem::path save(const std::filesystem::path& parent, const std::string& uuid,
                           const std::vector<std::shared_ptr<torch::nn::Module>>& models,
                           const std::vector<std::shared_ptr<torch::optim::Optimizer>>& optimizers,
                           nlohmann::json metadata);

/// Reads and checks metadata.json and the state file's size and checksum. Throws
/// CheckpointError naming the directory and the problem (missing, truncated, corrupt, newer).
nlohmann::json read_metadata(const std::filesystem::path& dir);

/// Loads the models' parameters and buffers, the optimizers' state and (if `restore_rng`) the
/// RNG state. A missing key, a shape mismatch or a different number of models or optimizers
/// throws CheckpointError naming the key.
void load(const std::filesystem::path& dir, const std::vector<std::shared_ptr<torch::nn::Module>>& models,
          const std::vector<std::shared_ptr<torch::optim::Optimizer>>& optimizers, bool restore_rng);

}  // namespace det::checkpoint
