#pragma once
// Internal to the data layer.
#include <filesystem>
#include <string>

namespace det::data {

/// Reads a whole file, gunzipping it if it is gzip. Throws DataError naming the file if it
/// cannot be read or its gzip stream is corrupt or cut short.
std::string read_maybe_gz(const std::filesystem::path& path);

}  // namespace det::data
