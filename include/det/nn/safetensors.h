#pragma once
/// \file
/// The safetensors format (Hugging Face): an 8-byte little-endian header length, a JSON
/// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then
/// the raw little-endian tensor bytes. Read and written without the safetensors package.

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/types.h>

namespace det::nn {

/// Named tensors in file order (sorted by name as the Python writer sorts them), plus metadata.
struct TensorFile {
  std::map<std::string, torch::Tensor> tensors;  ///< CPU tensors by name, in the file's dtype.
  /// The header's "__metadata__" strings; empty without.
  std::map<std::string, std::string> metadata;
};

/// Reads a .safetensors file (dtypes F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL) into
/// CPU tensors, through bounded reads: the header (at most 100 MB, and no longer than the file)
/// is read and checked before any tensor memory is taken. Throws DataError naming the file and
/// the tensor on a malformed header (not starting with '{', padded with anything but spaces,
/// invalid JSON, a name given twice), an unknown dtype, a shape whose size overflows, offsets
/// that do not tile the data area exactly (a gap, an overlap, bytes after the last tensor), a
/// BOOL byte other than 0/1, or a truncated file.
TensorFile read_safetensors(const std::filesystem::path& path);
/// Parses safetensors bytes with the same checks; `where` names the source in errors.
TensorFile parse_safetensors(const std::string& bytes, const std::string& where);
/// Writes tensors (moved to CPU, made contiguous) as a .safetensors file, atomically (temporary
/// file renamed). Keys are written in sorted order, data packed in that order.
void write_safetensors(const std::filesystem::path& path,
                       const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});
/// The bytes write_safetensors would write.
std::string serialize_safetensors(const std::map<std::string, torch::Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});

/// A module's parameters and buffers by their dotted names (what torch's state_dict() holds).
std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module);

/// The safetensors name of a dtype ("F32", "I32", ...; LibTorch's name for one it lacks).
std::string safetensors_dtype_name(torch::ScalarType type);

/// Copies `tensors` into `module`'s parameters and buffers of the same name. Every parameter and
/// buffer must be present with the same shape and dtype unless listed in `allow_missing`;
/// tensors with no counterpart are an error unless `ignore_unexpected`; a tensor of another
/// dtype (I32 for an F32 parameter) is an error unless `convert_dtypes`. Errors are DataErrors
/// naming the key, both shapes or dtypes, and `where`. Returns the names that were loaded.
std::vector<std::string> load_state_dict(torch::nn::Module& module,
                                         const std::map<std::string, torch::Tensor>& tensors,
                                         const std::string& where,
                                         const std::vector<std::string>& allow_missing = {},
                                         bool ignore_unexpected = false,
                                         bool convert_dtypes = false);

}  // namespace det::nn
