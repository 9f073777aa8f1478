#pragma once
// Internal to the nn layer, and torch-free (the fuzz targets link it without LibTorch): the
// checks of a safetensors file's layout, done before any tensor memory is taken.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace det::nn {

/// The safetensors reference implementation's bound on the JSON header (MAX_HEADER_SIZE).
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

/// One tensor of a safetensors header.
struct SafetensorsEntry {
  std::string name;
  std::string dtype;        ///< "F32", "I64", ...
  size_t element_size = 0;  ///< Bytes per element of dtype.
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  ///< Offsets into the data area.
};

/// A safetensors file's header, checked against the file's size.
struct SafetensorsIndex {
  uint64_t header_bytes = 0;              ///< The JSON header's length (after the 8-byte prefix).
  uint64_t data_bytes = 0;                ///< The data area's length: the rest of the file.
  std::vector<SafetensorsEntry> tensors;  ///< In the header's (sorted) order.
  std::map<std::string, std::string> metadata;
};

/// The element size of a safetensors dtype (F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL),
/// 0 for any other.
size_t safetensors_element_size(std::string_view dtype);

/// The header length the 8-byte little-endian prefix announces, checked against the bound and
/// against a file of `file_bytes` bytes. Throws DataError naming `where`.
uint64_t safetensors_header_length(const unsigned char prefix[8], uint64_t file_bytes,
                                   const std::string& where);

/// Parses and checks the JSON header of a file of `file_bytes` bytes: it starts with '{' and
/// is padded only with spaces; every entry has a known dtype, a shape of non-negative
/// dimensions whose byte size neither overflows nor differs from its data_offsets; the offsets
/// tile the data area exactly (no gap, no overlap, no byte after the last tensor);
/// `__metadata__` maps strings to strings. Throws DataError naming `where` and the tensor.
SafetensorsIndex parse_safetensors_header(std::string_view header, uint64_t file_bytes,
                                          const std::string& where);

/// A name or other text from a file, quoted for an error message and cut short when long.
std::string quote_for_error(std::string_view text);

}  // namespace det::nn
