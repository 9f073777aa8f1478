#pragma once
// Internal to the data layer.
#include <filesystem>
#include <string>

namespace det::data {

/// Reads a whole file, gunzipping it if it is gzip. Throws DataError naming the file if it
/// cannot be read or its gzip stream is corrupt or cut short.
std::string read_maybe_gz(const std::filesystem::path& path);

/// Downloads `url` to `dest` (through `dest.part`, renamed when complete) with curl or wget,
/// within `max_seconds`. Returns false, leaving nothing behind, when offline or on any failure.
bool fetch_url(const std::string& url, const std::filesystem::path& dest, int max_seconds);

}  // namespace det::data
