#include "det/data/cifar.h"

#include <cstring>

#include "io.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "det/util/strings.h"

#include <spdlog/spdlog.h>

namespace det::data {
namespace fs = std::filesystem;

namespace {
constexpr int64_t kSide = 32, kPixels = 32 * 32 * 3;

std::vector<std::string> file_names(const CifarOptions& o) {
  if (o.classes == 100) return {o.train ? "train.bin" : "test.bin"};
  if (!o.train) return {"test_batch.bin"};
  return {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"};
}

fs::path find(const CifarOptions& o, const std::string& name) {
  std::vector<fs::path> dirs = o.classes == 100
                                   ? std::vector<fs::path>{o.root / "cifar100", o.root / "cifar-100-binary", o.root}
                                   : std::vector<fs::path>{o.root / "cifar10", o.root / "cifar-10-batches-bin", o.root};
  for (const auto& d : dirs)
    for (const auto& f : {d / name, d / (name + ".gz")})
      if (fs::exists(f)) return f;
  return {};
}

bool download(const CifarOptions& o) {
  std::string archive = o.classes == 100 ? "cifar-100-binary.tar.gz" : "cifar-10-binary.tar.gz";
  std::string url = "https://www.cs.toronto.edu/~kriz/" + archive;
  fs::path dest = o.root / archive;
  util::logger()->info("CIFAR-{}: fetching {} ...", o.classes, url);
  if (!fetch_url(url, dest, 900)) return false;
  bool ok = std::system(("tar -xzf '" + dest.string() + "' -C '" + o.root.string() + "' >/dev/null 2>&1").c_str()) == 0;
  std::error_code ec;
  fs::remove(dest, ec);
  return ok;
}
}  // namespace

void CifarDataset::parse(const std::string& bytes, const std::string& file, int classes, bool coarse,
                         std::vector<uint8_t>& pixels, std::vector<uint8_t>& labels) {
  const int64_t label_bytes = classes == 100 ? 2 : 1;
  const int64_t record = label_bytes + kPixels;
  const auto size = static_cast<int64_t>(bytes.size());
  if (size == 0) throw DataError(file + ": empty file");
  if (size % record != 0)
    throw DataError(file + ": truncated: record " + std::to_string(size / record) + " has " + std::to_string(size % record) +
                    " of " + std::to_string(record) + " bytes (the file should hold whole " + std::to_string(record) +
                    "-byte records); delete it and fetch it again");
  const int64_t n = size / record, max_label = coarse ? 19 : classes - 1;
  size_t base = pixels.size();
  pixels.resize(base + static_cast<size_t>(n * kPixels));
  const auto* src = reinterpret_cast<const uint8_t*>(bytes.data());
  for (int64_t r = 0; r < n; ++r) {
    const uint8_t* rec = src + r * record;
    uint8_t lab = classes == 100 ? rec[coarse ? 0 : 1] : rec[0];
    if (lab > max_label)
      throw DataError(file + ": record " + std::to_string(r) + " has label " + std::to_string(lab) + ", expected 0-" +
                      std::to_string(max_label) + " (is this a CIFAR-" + std::to_string(classes) + " file?)");
    labels.push_back(lab);
    // Planes R, G, B (each 32x32 row-major) -> HWC.
    const uint8_t* planes = rec + label_bytes;
    uint8_t* dst = pixels.data() + base + static_cast<size_t>(r * kPixels);
    for (int64_t p = 0; p < kSide * kSide; ++p)
      for (int64_t c = 0; c < 3; ++c) dst[p * 3 + c] = planes[c * kSide * kSide + p];
  }
}

CifarDataset::CifarDataset(const CifarOptions& o) {
  if (o.classes != 10 && o.classes != 100)
    throw DataError("CIFAR: classes must be 10 or 100, got " + std::to_string(o.classes));
  auto names = file_names(o);
  if (find(o, names[0]).empty() && o.download) download(o);
  for (const auto& name : names) {
    fs::path f = find(o, name);
    if (f.empty())
      throw DataError("CIFAR-" + std::to_string(o.classes) + " file " + name + "[.gz] not found under " +
                      fs::absolute(o.root).string() + " and it could not be downloaded: place " + util::join(file_names({o.root, o.classes, true}), ", ") +
                      (o.classes == 100 ? ", test.bin" : ", test_batch.bin") + " (plain or .gz) in " +
                      fs::absolute(o.root / (o.classes == 100 ? "cifar100" : "cifar10")).string() +
                      " (or set DET_DATA_DIR / data.root)");
    parse(read_maybe_gz(f), f.string(), o.classes, o.coarse_labels, pixels_, labels_);
  }
}

Image CifarDataset::image(int64_t index) const {
  Image img = Image::uninitialized(kSide, kSide, 3);
  std::memcpy(img.pixels.data(), pixels_.data() + index * kPixels, kPixels);
  return img;
}

}  // namespace det::data
