#include "io.h"

#include <zlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "det/util/error.h"

namespace det::data {
namespace fs = std::filesystem;

// Reads a whole file, gunzipping if it is gzip (zlib reads plain files through unchanged).
std::string read_maybe_gz(const fs::path& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw DataError(path.string() + ": cannot open (" + std::strerror(errno) + ")");
  gzbuffer(f, 1 << 20);
  std::string out;
  std::vector<char> buf(1 << 20);
  for (;;) {
    int n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()));
    if (n < 0) {
      int err = 0;
      std::string msg = gzerror(f, &err);
      gzclose(f);
      throw DataError(path.string() + ": corrupt gzip stream (" + msg + "); delete it and fetch it again");
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<size_t>(n));
  }
  // gzread returns 0 at a truncated gzip member's end; gzclose_r reports it as Z_BUF_ERROR.
  int rc = gzclose_r(f);
  if (rc == Z_BUF_ERROR)
    throw DataError(path.string() + ": the gzip file is truncated (unexpected end of stream); delete it and fetch it again");
  return out;
}

bool fetch_url(const std::string& url, const fs::path& dest, int max_seconds) {
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  if (ec) return false;
  fs::path part = dest;
  part += ".part";
  const std::string t = std::to_string(max_seconds);
  std::string cmd = "((command -v curl >/dev/null && curl -fsSL --connect-timeout 10 --max-time " + t + " -o '" +
                    part.string() + "' '" + url + "') || (command -v wget >/dev/null && wget -q -T 10 -O '" + part.string() +
                    "' '" + url + "')) >/dev/null 2>&1";
  bool ok = std::system(cmd.c_str()) == 0 && fs::exists(part) && fs::file_size(part) > 0;
  if (ok) fs::rename(part, dest, ec);
  fs::remove(part, ec);
  return ok && !ec;
}

}  // namespace det::data
