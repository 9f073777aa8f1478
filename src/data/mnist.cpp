#include "det/data/mnist.h"

#include <zlib.h>

#include <cstdlib>
#include <cstring>

#include "det/util/error.h"
#include "io.h"
#include "det/util/log.h"
#include "det/util/strings.h"

#include <spdlog/spdlog.h>

namespace det::data {
namespace fs = std::filesystem;

namespace {

uint32_t be32(const std::string& s, size_t off) {
  auto b = reinterpret_cast<const unsigned char*>(s.data()) + off;
  return (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | uint32_t(b[3]);
}

void check_size(const fs::path& path, const std::string& bytes, size_t expected, const std::string& what) {
  if (bytes.size() < expected)
    throw DataError(path.string() + ": truncated: the header announces " + what + " (" + std::to_string(expected) +
                    " bytes) but the file holds " + std::to_string(bytes.size()) + " bytes");
  if (bytes.size() > expected)
    throw DataError(path.string() + ": " + std::to_string(bytes.size() - expected) +
                    " unexpected bytes after the " + what + " the header announces");
}

}  // namespace

torch::Tensor read_idx_images(const fs::path& path) {
  std::string bytes = read_maybe_gz(path);
  if (bytes.size() < 16) throw DataError(path.string() + ": truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the 16-byte IDX header");
  uint32_t magic = be32(bytes, 0);
  if (magic != 2051)
    throw DataError(path.string() + ": not an IDX image file: magic number " + std::to_string(magic) + ", expected 2051" +
                    (magic == 2049 ? " (this is a label file)" : ""));
  int64_t n = be32(bytes, 4), rows = be32(bytes, 8), cols = be32(bytes, 12);
  check_size(path, bytes, 16 + static_cast<size_t>(n * rows * cols),
             std::to_string(n) + " images of " + std::to_string(rows) + "x" + std::to_string(cols));
  auto t = torch::empty({n, rows, cols}, torch::kUInt8);
  std::memcpy(t.data_ptr(), bytes.data() + 16, static_cast<size_t>(n * rows * cols));
  return t;
}

torch::Tensor read_idx_labels(const fs::path& path) {
  std::string bytes = read_maybe_gz(path);
  if (bytes.size() < 8) throw DataError(path.string() + ": truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte IDX header");
  uint32_t magic = be32(bytes, 0);
  if (magic != 2049)
    throw DataError(path.string() + ": not an IDX label file: magic number " + std::to_string(magic) + ", expected 2049" +
                    (magic == 2051 ? " (this is an image file)" : ""));
  int64_t n = be32(bytes, 4);
  check_size(path, bytes, 8 + static_cast<size_t>(n), std::to_string(n) + " labels");
  auto t = torch::empty({n}, torch::kUInt8);
  std::memcpy(t.data_ptr(), bytes.data() + 8, static_cast<size_t>(n));
  return t.to(torch::kLong);
}

fs::path data_root(const config::Args& data) {
  if (data.has("root")) return data.get<std::string>("root");
  if (const char* env = std::getenv("DET_DATA_DIR"); env && *env) return env;
  return "data";
}

namespace {

const char* kMirrors[] = {"https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"};

// Finds `name` (or name.gz) in the usual layouts under root.
fs::path find_file(const fs::path& root, const std::string& name) {
  for (const auto& dir : {root / "mnist", root / "MNIST" / "raw", root}) {
    for (const auto& candidate : {dir / name, dir / (name + ".gz")})
      if (fs::exists(candidate)) return candidate;
  }
  return {};
}

// Tries the public mirrors; returns the downloaded path or "" when offline.
fs::path download(const fs::path& root, const std::string& name) {
  fs::path target = root / "mnist" / (name + ".gz");
  for (const char* mirror : kMirrors) {
    std::string url = std::string(mirror) + name + ".gz";
    util::logger()->info("MNIST: fetching {} ...", url);
    if (fetch_url(url, target, 300)) return target;
  }
  return {};
}

fs::path locate(const MnistOptions& o, const std::string& name) {
  fs::path p = find_file(o.root, name);
  if (!p.empty()) return p;
  if (o.download) p = download(o.root, name);
  if (!p.empty()) return p;
  throw DataError("MNIST file " + name + "[.gz] not found under " + fs::absolute(o.root).string() +
                  " and it could not be downloaded: place train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                  "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in " + fs::absolute(o.root / "mnist").string() +
                  " (or set DET_DATA_DIR / data.root to the directory holding mnist/)");
}

}  // namespace

MnistDataset::MnistDataset(const MnistOptions& o) {
  std::string prefix = o.train ? "train" : "t10k";
  fs::path images_path = locate(o, prefix + "-images-idx3-ubyte");
  fs::path labels_path = locate(o, prefix + "-labels-idx1-ubyte");
  auto images = read_idx_images(images_path);
  labels_ = read_idx_labels(labels_path);
  if (images.size(0) != labels_.size(0))
    throw DataError(images_path.string() + " holds " + std::to_string(images.size(0)) + " images but " +
                    labels_path.string() + " holds " + std::to_string(labels_.size(0)) + " labels");
  auto max_label = labels_.max().item<int64_t>();
  if (max_label > 9) throw DataError(labels_path.string() + ": label " + std::to_string(max_label) + " is out of range 0-9");
  // torchvision: ToTensor (x / 255 as float32), then Normalize ((x - mean) / std), in float32.
  images_ = images.unsqueeze(1).to(torch::kFloat32).div_(255.0f);
  if (o.normalize) images_.sub_(static_cast<float>(o.mean)).div_(static_cast<float>(o.std));
}

Batch MnistDataset::get_batch(const BatchRequest& request) const {
  const auto& indices = request.indices;
  auto idx = torch::from_blob(const_cast<int64_t*>(indices.data()), {static_cast<int64_t>(indices.size())}, torch::kLong);
  return {images_.index_select(0, idx), labels_.index_select(0, idx)};
}

}  // namespace det::data
