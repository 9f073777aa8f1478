#pragma once
// Internal to the data layer, and torch-free: the fuzz targets (tests/fuzz/) link it without
// LibTorch.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace det::util {
class ReadFile;
}

namespace det::data {

/// The most bytes a dataset file (IDX, CIFAR) may hold once decompressed: $DET_MAX_DATA_FILE_BYTES
/// when set, else 2 GiB. A header that claims more is refused before anything is allocated.
uint64_t max_data_file_bytes();

/// A non-negative limit read from environment variable `name` (digits only), else `fallback`.
/// Throws DataError naming the variable when it is set to anything else.
uint64_t limit_from_env(const char* name, uint64_t fallback);

/// `a * b` into `out`; false (and `out` untouched) when the product does not fit in int64.
bool checked_mul(int64_t a, int64_t b, int64_t& out);

/// A data file read through bounded reads, plain or gzip-compressed (detected by its first two
/// bytes). A reader takes the header, checks the sizes it claims with `check_claimed_size`
/// before allocating anything, reads exactly those bytes, then calls `expect_end`. A gzip file
/// is inflated as it is read, never further than the reader asks.
class InputFile {
 public:
  /// Opens a file. Throws DataError naming it when it cannot be opened.
  explicit InputFile(const std::filesystem::path& path);
  /// Bytes held in memory (tests, fuzzing); `name` stands for the file in errors. The bytes
  /// must outlive this object.
  InputFile(std::string_view bytes, std::string name);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  /// The file's name, for errors.
  const std::string& name() const { return name_; }
  /// Whether the data is gzip-compressed.
  bool gzip() const { return gzip_; }
  /// The size of the data as stored (compressed size for gzip).
  uint64_t stored_size() const { return stored_size_; }
  /// The size the data will have, when it is known before reading it: a plain file's size, or
  /// for gzip the length its trailer records when the file is too small to inflate to 4 GiB or
  /// more (the trailer holds the length modulo 2^32). Only a hint for gzip: the real length is
  /// checked against the trailer when the stream ends.
  std::optional<uint64_t> known_size() const;
  /// Decompressed bytes read so far.
  uint64_t position() const { return position_; }

  /// Reads up to `n` bytes; fewer only at the end of the data. Throws DataError on a corrupt or
  /// truncated gzip stream.
  size_t read(void* dst, size_t n);
  /// Reads exactly `n` bytes, else throws DataError ("truncated", naming the file and the
  /// claim made by `check_claimed_size`, or else `what`).
  void read_exact(void* dst, size_t n, const std::string& what);
  /// Checks, before anything is allocated, that the data can hold exactly `total` bytes
  /// (header included) and that `total` is at most `limit`: a plain file must be exactly that
  /// long; a gzip file must be large enough to inflate to it (deflate inflates at most 1032:1)
  /// and its trailer must record that length (modulo 2^32). `what` words the claim, e.g.
  /// "60000 images of 28x28". Throws DataError naming the file.
  void check_claimed_size(uint64_t total, uint64_t limit, const std::string& what);
  /// Throws DataError unless the data ends here: no further byte, and for gzip a complete
  /// stream (its CRC and length checked) with nothing stored after it. Inflates at most one
  /// small buffer to find out.
  void expect_end();
  /// Starts reading again from the first byte, as if just opened (a gzip stream is inflated
  /// again): for a reader that must count what a stream holds before it takes the memory.
  void rewind();

 private:
  bool refill();
  size_t read_stored(void* dst, size_t n);
  size_t read_plain(void* dst, size_t n);
  size_t read_gzip(void* dst, size_t n);
  uint64_t stored_left() const;
  [[noreturn]] void truncated(uint64_t wanted) const;

  std::string name_;
  std::unique_ptr<util::ReadFile> file_;
  std::string_view memory_;  // the bytes not yet handed to the reader (memory source)
  std::string_view memory_all_;
  std::vector<unsigned char> buffer_;
  const unsigned char* avail_ = nullptr;  // unread stored bytes already in memory
  size_t avail_size_ = 0;
  uint64_t stored_size_ = 0, stored_read_ = 0;  // stored bytes taken from the source
  uint64_t position_ = 0;
  bool gzip_ = false, stream_end_ = false;
  std::optional<uint32_t> trailer_size_;  // gzip ISIZE
  struct Inflater;
  std::unique_ptr<Inflater> inflater_;
  uint64_t claimed_total_ = 0;
  std::string claim_;
};

/// Downloads `url` to `dest` (through `dest.part`, renamed when complete) with curl or wget,
/// within `max_seconds`. Returns false, leaving nothing behind, when offline or on any failure.
bool fetch_url(const std::string& url, const std::filesystem::path& dest, int max_seconds);

}  // namespace det::data
