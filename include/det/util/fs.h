#pragma once
/// \file
/// File helpers: atomic writes, whole-file reads, checksums.

#include <cstdint>
#include <filesystem>
#include <string>

namespace det::util {

/// Writes `content` to `path` atomically: a temporary file in the same directory, fsync, rename.
/// A reader never sees a half-written file. Throws det::Error naming the path on failure
/// (e.g. a full disk), leaving any previous file intact.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

/// Appends one line (a newline is added) to `path`, creating it if needed, and flushes.
void append_line(const std::filesystem::path& path, const std::string& line);
/// Appends `bytes` to `path` in one write, creating it (and its directory) if needed.
void append_bytes(const std::filesystem::path& path, const std::string& bytes);

/// Reads a whole file. Throws det::Error naming the path if it cannot be read.
std::string read_file(const std::filesystem::path& path);

/// CRC-32 (zlib's polynomial) of a file's bytes; throws det::Error if it cannot be read.
uint32_t file_crc32(const std::filesystem::path& path);

/// fsyncs a directory so that a rename inside it is durable.
void fsync_dir(const std::filesystem::path& dir);

}  // namespace det::util
