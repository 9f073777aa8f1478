#include "det/data/cifar.h"

#include <sys/wait.h>

#include <csignal>
#include <cstring>

#include "det/util/error.h"
#include "det/util/log.h"
#include "det/util/process.h"
#include "det/util/strings.h"
#include "formats.h"
#include "io.h"

#include <spdlog/spdlog.h>

namespace det::data {
namespace fs = std::filesystem;

namespace {
constexpr int64_t kSide = 32, kPixels = 32 * 32 * 3;

std::vector<std::string> file_names(const CifarOptions& o) {
  if (o.classes() == 100) return {o.train() ? "train.bin" : "test.bin"};
  if (!o.train()) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
          "data_batch_5.bin"};
}

fs::path find(const CifarOptions& o, const std::string& name) {
  std::vector<fs::path> dirs =
      o.classes() == 100
          ? std::vector<fs::path>{o.root() / "cifar100", o.root() / "cifar-100-binary", o.root()}
          : std::vector<fs::path>{o.root() / "cifar10", o.root() / "cifar-10-batches-bin",
                                  o.root()};
  for (const auto& d : dirs)
    for (const auto& f : {d / name, d / (name + ".gz")})
      if (fs::exists(f)) return f;
  return {};
}

bool download(const CifarOptions& o) {
  std::string archive = o.classes() == 100 ? "cifar-100-binary.tar.gz" : "cifar-10-binary.tar.gz";
  std::string url = "https://www.cs.toronto.edu/~kriz/" + archive;
  fs::path dest = o.root() / archive;
  util::logger()->info("CIFAR-{}: fetching {} ...", o.classes(), url);
  if (!fetch_url(url, dest, 900)) return false;
  // An argument vector, never a shell: the root comes from the config.
  util::SpawnOptions tar;
  tar.argv = {"tar", "-xzf", dest.string(), "-C", o.root().string()};
  tar.null_stdio = true;
  tar.new_process_group = false;
  tar.parent_death_signal = SIGKILL;
  bool ok = false;
  try {
    auto status = util::run(tar, std::chrono::seconds(600));
    ok = status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0;
  } catch (const Error&) {
    ok = false;
  }
  std::error_code ec;
  fs::remove(dest, ec);
  return ok;
}
}  // namespace

void CifarDataset::parse(const std::string& bytes, const std::string& file, int classes,
                         bool coarse, std::vector<uint8_t>& pixels, std::vector<uint8_t>& labels) {
  InputFile in(bytes, file);
  read_cifar_records(in, classes, coarse, max_data_file_bytes(), pixels, labels);
}

CifarDataset::CifarDataset(const CifarOptions& o) {
  if (o.classes() != 10 && o.classes() != 100)
    throw DataError("CIFAR: classes must be 10 or 100, got " + std::to_string(o.classes()));
  auto names = file_names(o);
  if (find(o, names[0]).empty() && o.download()) download(o);
  for (const auto& name : names) {
    fs::path f = find(o, name);
    if (f.empty())
      throw DataError(
          "CIFAR-" + std::to_string(o.classes()) + " file " + name + "[.gz] not found under " +
          fs::absolute(o.root()).string() + " and it could not be downloaded: place " +
          util::join(file_names(CifarOptions(o).train(true)), ", ") +
          (o.classes() == 100 ? ", test.bin" : ", test_batch.bin") + " (plain or .gz) in " +
          fs::absolute(o.root() / (o.classes() == 100 ? "cifar100" : "cifar10")).string() +
          " (or set DET_DATA_DIR / data.root)");
    InputFile in(f);
    read_cifar_records(in, o.classes(), o.coarse_labels(), max_data_file_bytes(), pixels_, labels_);
  }
}

Image CifarDataset::image(int64_t index) const {
  Image img = Image::uninitialized(kSide, kSide, 3);
  std::memcpy(img.pixels.data(), pixels_.data() + index * kPixels, kPixels);
  return img;
}

}  // namespace det::data
