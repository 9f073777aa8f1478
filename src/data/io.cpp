#include "io.h"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <climits>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/process.h"

namespace det::data {
namespace fs = std::filesystem;

namespace {

constexpr size_t kChunk = 64 * 1024;
// Deflate codes a 258-byte match in as little as 2 bits: no stream inflates by more than 1032:1.
constexpr uint64_t kMaxDeflateRatio = 1032;

std::string quoted_short(const char* s) {
  std::string out;
  for (const char* p = s; *p && out.size() < 40; ++p)
    out += (static_cast<unsigned char>(*p) >= 0x20 && *p != 0x7f) ? *p : '?';
  return "'" + out + (std::strlen(s) > 40 ? "...'" : "'");
}

}  // namespace

uint64_t limit_from_env(const char* name, uint64_t fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  uint64_t out = 0;
  const char* end = v + std::strlen(v);
  auto [p, ec] = std::from_chars(v, end, out);
  if (ec != std::errc() || p != end)
    throw DataError(std::string(name) + "=" + quoted_short(v) +
                    ": expected a whole number (digits only); fix or unset the variable");
  return out;
}

uint64_t max_data_file_bytes() {
  return limit_from_env("DET_MAX_DATA_FILE_BYTES", uint64_t{2} << 30);
}

bool checked_mul(int64_t a, int64_t b, int64_t& out) {
  int64_t r = 0;
  if (__builtin_mul_overflow(a, b, &r)) return false;
  out = r;
  return true;
}

struct InputFile::Inflater {
  z_stream zs{};
  Inflater() {
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw std::bad_alloc();
  }
  ~Inflater() { inflateEnd(&zs); }
};

InputFile::InputFile(const fs::path& path)
    : name_(path.string()),
      file_(std::make_unique<util::ReadFile>(path, &util::throw_as<DataError>,
                                             "point the data root at the dataset's files")) {
  stored_size_ = file_->size();
  buffer_.resize(kChunk);
  unsigned char tail[4];
  if (stored_size_ >= 18 &&
      ::pread(file_->fd(), tail, 4, static_cast<off_t>(stored_size_ - 4)) == 4)
    trailer_size_ = uint32_t(tail[0]) | uint32_t(tail[1]) << 8 | uint32_t(tail[2]) << 16 |
                    uint32_t(tail[3]) << 24;
  refill();
  gzip_ = avail_size_ >= 2 && avail_[0] == 0x1f && avail_[1] == 0x8b;
  if (gzip_) inflater_ = std::make_unique<Inflater>();
}

InputFile::InputFile(std::string_view bytes, std::string name)
    : name_(std::move(name)), memory_(bytes), memory_all_(bytes), stored_size_(bytes.size()) {
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() >= 18) {
    const unsigned char* tail = b + bytes.size() - 4;
    trailer_size_ = uint32_t(tail[0]) | uint32_t(tail[1]) << 8 | uint32_t(tail[2]) << 16 |
                    uint32_t(tail[3]) << 24;
  }
  refill();
  gzip_ = avail_size_ >= 2 && avail_[0] == 0x1f && avail_[1] == 0x8b;
  if (gzip_) inflater_ = std::make_unique<Inflater>();
}

InputFile::~InputFile() = default;

void InputFile::rewind() {
  if (file_) {
    if (::lseek(file_->fd(), 0, SEEK_SET) != 0)
      throw DataError(name_ + ": cannot read it again (" + std::strerror(errno) + ")");
  } else {
    memory_ = memory_all_;
  }
  avail_ = nullptr;
  avail_size_ = 0;
  stored_read_ = 0;
  position_ = 0;
  stream_end_ = false;
  claimed_total_ = 0;
  claim_.clear();
  refill();
  if (gzip_) inflater_ = std::make_unique<Inflater>();
}

std::optional<uint64_t> InputFile::known_size() const {
  if (!gzip_) return stored_size_;
  // Less than 2^32 / 1032 bytes stored cannot inflate to 4 GiB: the trailer holds the length.
  if (trailer_size_ && stored_size_ < (uint64_t{1} << 32) / kMaxDeflateRatio) return *trailer_size_;
  return std::nullopt;
}

bool InputFile::refill() {
  if (!file_) {
    if (memory_.empty()) return false;
    avail_ = reinterpret_cast<const unsigned char*>(memory_.data());
    avail_size_ = memory_.size();
    stored_read_ += memory_.size();
    memory_ = {};
    return true;
  }
  const size_t n = read_stored(buffer_.data(), buffer_.size());
  if (n == 0) return false;
  avail_ = buffer_.data();
  avail_size_ = n;
  return true;
}

size_t InputFile::read_stored(void* dst, size_t n) {
  // Never past the size the file had when opened: a file that grows while read is read as it was.
  if (stored_read_ >= stored_size_) return 0;
  const auto want = static_cast<size_t>(std::min<uint64_t>(n, stored_size_ - stored_read_));
  if (want == 0) return 0;
  for (;;) {
    const ssize_t r = ::read(file_->fd(), dst, want);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw DataError(name_ + ": read error (" + std::strerror(errno) + ")");
    stored_read_ += static_cast<uint64_t>(r);
    return static_cast<size_t>(r);
  }
}

uint64_t InputFile::stored_left() const {
  const uint64_t unread = stored_size_ > stored_read_ ? stored_size_ - stored_read_ : 0;
  return unread + avail_size_;
}

size_t InputFile::read(void* dst, size_t n) {
  return gzip_ ? read_gzip(dst, n) : read_plain(dst, n);
}

size_t InputFile::read_plain(void* dst, size_t n) {
  auto* out = static_cast<unsigned char*>(dst);
  size_t got = 0;
  while (got < n) {
    if (avail_size_ == 0) {
      if (file_ && n - got >= buffer_.size()) {
        // A large read goes straight into the caller's memory, no copy through the buffer.
        const size_t r = read_stored(out + got, n - got);
        if (r == 0) break;
        got += r;
        continue;
      }
      if (!refill()) break;
    }
    const size_t k = std::min(avail_size_, n - got);
    std::memcpy(out + got, avail_, k);
    avail_ += k;
    avail_size_ -= k;
    got += k;
  }
  position_ += got;
  return got;
}

size_t InputFile::read_gzip(void* dst, size_t n) {
  z_stream& zs = inflater_->zs;
  auto* out = static_cast<unsigned char*>(dst);
  size_t got = 0;
  while (got < n && !stream_end_) {
    const bool more = avail_size_ > 0 || refill();
    zs.next_in = const_cast<Bytef*>(avail_);
    zs.avail_in = static_cast<uInt>(std::min<size_t>(avail_size_, UINT_MAX));
    zs.next_out = out + got;
    zs.avail_out = static_cast<uInt>(std::min<size_t>(n - got, size_t{1} << 30));
    const uInt in_before = zs.avail_in, out_before = zs.avail_out;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const size_t consumed = in_before - zs.avail_in, produced = out_before - zs.avail_out;
    avail_ += consumed;
    avail_size_ -= consumed;
    got += produced;
    if (rc == Z_STREAM_END) {
      stream_end_ = true;
    } else if (rc == Z_BUF_ERROR || (rc == Z_OK && !more && produced == 0)) {
      if (!more)
        throw DataError(
            name_ +
            ": the gzip file is truncated (its compressed stream ends early); delete it "
            "and fetch it again");
    } else if (rc == Z_MEM_ERROR) {
      throw std::bad_alloc();
    } else if (rc != Z_OK) {
      throw DataError(name_ + ": corrupt gzip stream (" + (zs.msg ? zs.msg : "error") +
                      "); delete it and fetch it again");
    }
  }
  position_ += got;
  return got;
}

void InputFile::truncated(uint64_t wanted) const {
  if (!claim_.empty())
    throw DataError(name_ + ": truncated: the header announces " + claim_ + " (" +
                    std::to_string(claimed_total_) + " bytes) but the data ends after " +
                    std::to_string(position_) + " bytes; delete it and fetch it again");
  throw DataError(name_ + ": truncated: the data ends after " + std::to_string(position_) +
                  " bytes, " + std::to_string(wanted) +
                  " bytes short; delete it and fetch it again");
}

void InputFile::read_exact(void* dst, size_t n, const std::string& what) {
  const size_t got = read(dst, n);
  if (got == n) return;
  if (claim_.empty())
    throw DataError(name_ + ": truncated: the data ends after " + std::to_string(position_) +
                    " bytes, inside " + what + "; delete it and fetch it again");
  truncated(n - got);
}

void InputFile::check_claimed_size(uint64_t total, uint64_t limit, const std::string& what) {
  claim_ = what;
  claimed_total_ = total;
  const std::string claim =
      "the header announces " + what + " (" + std::to_string(total) + " bytes)";
  if (total > limit)
    throw DataError(name_ + ": " + claim + ", more than the limit of " + std::to_string(limit) +
                    " bytes for a data file; the file is corrupt or not what it claims to be "
                    "(DET_MAX_DATA_FILE_BYTES raises the limit)");
  if (!gzip_) {
    if (stored_size_ < total)
      throw DataError(name_ + ": truncated: " + claim + " but the file holds " +
                      std::to_string(stored_size_) + " bytes; delete it and fetch it again");
    if (stored_size_ > total)
      throw DataError(name_ + ": " + std::to_string(stored_size_ - total) +
                      " unexpected bytes after the " + what +
                      " the header announces; the file is corrupt or not what it claims to be");
    return;
  }
  if (total / kMaxDeflateRatio > stored_size_)
    throw DataError(name_ + ": " + claim + " but a gzip file of " + std::to_string(stored_size_) +
                    " bytes cannot inflate to more than " +
                    std::to_string(stored_size_ * kMaxDeflateRatio) +
                    "; the file is truncated or corrupt, delete it and fetch it again");
  if (trailer_size_ && *trailer_size_ != static_cast<uint32_t>(total))
    throw DataError(name_ + ": " + claim + " but the gzip trailer records " +
                    std::to_string(*trailer_size_) +
                    " bytes (modulo 2^32); the file is truncated or corrupt, delete it and fetch "
                    "it again");
}

void InputFile::expect_end() {
  const std::string claim =
      claim_.empty() ? "data" : claim_ + " (" + std::to_string(claimed_total_) + " bytes)";
  if (!gzip_) {
    if (stored_left() > 0)
      throw DataError(name_ + ": " + std::to_string(stored_left()) +
                      " unexpected bytes after the " + claim +
                      " the header announces; the file is corrupt or not what it claims to be");
    return;
  }
  if (!stream_end_) {
    unsigned char scratch[4096];
    const uint64_t before = position_;
    if (read_gzip(scratch, sizeof scratch) > 0)
      throw DataError(name_ + ": the gzip stream inflates to more than the " + claim +
                      " the header announces (at least " + std::to_string(position_ - before) +
                      " more bytes); the file is corrupt or not what it claims to be");
  }
  if (stored_left() > 0)
    throw DataError(name_ + ": " + std::to_string(stored_left()) +
                    " bytes after the end of the gzip stream (a second gzip member or junk); "
                    "recompress the file as one gzip stream");
}

bool fetch_url(const std::string& url, const fs::path& dest, int max_seconds) {
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return false;
  fs::path part = dest;
  part += ".part";
  // An argument vector, never a shell: the URL and the path reach curl or wget as they are.
  const std::string t = std::to_string(max_seconds);
  const std::vector<std::vector<std::string>> tools = {
      {"curl", "-fsSL", "--connect-timeout", "10", "--max-time", t, "-o", part.string(), "--", url},
      {"wget", "-q", "-T", "10", "-O", part.string(), "--", url}};
  bool ok = false;
  for (const auto& argv : tools) {
    util::SpawnOptions o;
    o.argv = argv;
    o.null_stdio = true;
    o.new_process_group = false;
    o.parent_death_signal = SIGKILL;
    std::optional<int> status;
    try {
      status = util::run(o, std::chrono::seconds(max_seconds + 15));
    } catch (const Error&) {
      continue;
    }
    ok = status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0 && fs::exists(part, ec) &&
         fs::file_size(part, ec) > 0;
    if (ok) break;
    // 127: the tool is not installed; any other failure: the other tool will not do better.
    if (status && WIFEXITED(*status) && WEXITSTATUS(*status) != 127) break;
  }
  if (ok) fs::rename(part, dest, ec);
  fs::remove(part, ec);
  return ok && !ec;
}

}  // namespace det::data
