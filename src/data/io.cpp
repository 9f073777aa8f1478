#include "io.h"

#include <sys/wait.h>
#include <zlib.h>

#include <csignal>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "det/util/error.h"
#include "det/util/process.h"

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
    ok = status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0 && fs::exists(part, ec) && fs::file_size(part, ec) > 0;
    if (ok) break;
    // 127: the tool is not installed; any other failure: the other tool will not do better.
    if (status && WIFEXITED(*status) && WEXITSTATUS(*status) != 127) break;
  }
  if (ok) fs::rename(part, dest, ec);
  fs::remove(part, ec);
  return ok && !ec;
}

}  // namespace det::data
