#include "det/experiment/run_dir.h"

#include <chrono>
#include <ctime>

#include "det/record/run_dir.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/strings.h"

namespace det::experiment {
namespace fs = std::filesystem;

namespace {
std::string sanitize(const std::string& name) {
  std::string out;
  for (char c : name)
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return out.empty() ? "experiment" : out;
}
}  // namespace

fs::path create_run_dir(const fs::path& root, const std::string& name) {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::localtime(&t));
  std::error_code ec;
  fs::create_directories(root, ec);
  if (ec)
    throw Error("cannot create the checkpoint storage directory " + root.string() + ": " +
                ec.message());
  std::string base = sanitize(name) + "-" + stamp;
  for (int i = 0; i < 1000; ++i) {
    fs::path dir = fs::absolute(root) / (i == 0 ? base : base + "-" + std::to_string(i));
    if (fs::create_directory(dir, ec)) return dir;
    if (ec) throw Error("cannot create run directory " + dir.string() + ": " + ec.message());
  }
  throw Error("cannot create a unique run directory under " + root.string());
}

fs::path latest_run_dir(const fs::path& root) {
  fs::path best;
  fs::file_time_type best_time;
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return {};
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const fs::path f = record::RunDir(e.path()).summary();
    if (!fs::exists(f, ec)) continue;
    auto t = fs::last_write_time(f, ec);
    if (best.empty() || t > best_time) {
      best = e.path();
      best_time = t;
    }
  }
  return best;
}

}  // namespace det::experiment
