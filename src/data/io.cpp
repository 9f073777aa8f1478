#include "io.h"

#include <zlib.h>

#include <cerrno>
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

}  // namespace det::data
