#include "det/data/mnist.h"

#include <cstdlib>
#include <cstring>

#include "det/util/error.h"
#include "det/util/log.h"
#include "det/util/strings.h"
#include "formats.h"
#include "io.h"

#include <spdlog/spdlog.h>

namespace det::data {
namespace fs = std::filesystem;

torch::Tensor read_idx_images(const fs::path& path) {
  InputFile in(path);
  const IdxHeader h = read_idx_header(in, 3, max_data_file_bytes());
  // Checked against the file and the limit above: only now is memory taken.
  auto t = torch::empty(h.dims, torch::kUInt8);
  read_idx_body(in, h, t.data_ptr());
  return t;
}

torch::Tensor read_idx_labels(const fs::path& path) {
  InputFile in(path);
  const IdxHeader h = read_idx_header(in, 1, max_data_file_bytes());
  auto t = torch::empty(h.dims, torch::kUInt8);
  read_idx_body(in, h, t.data_ptr());
  return t.to(torch::kLong);
}

fs::path data_root(const config::Args& data) {
  if (data.has("root")) return data.get<std::string>("root");
  if (const char* env = std::getenv("DET_DATA_DIR"); env && *env) return env;
  return "data";
}

namespace {

const char* kMirrors[] = {"https://ossci-datasets.s3.amazonaws.com/mnist/",
                          "http://yann.lecun.com/exdb/mnist/"};

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
  fs::path p = find_file(o.root(), name);
  if (!p.empty()) return p;
  if (o.download()) p = download(o.root(), name);
  if (!p.empty()) return p;
  throw DataError("MNIST file " + name + "[.gz] not found under " +
                  fs::absolute(o.root()).string() +
                  " and it could not be downloaded: place train-images-idx3-ubyte.gz, "
                  "train-labels-idx1-ubyte.gz, "
                  "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz in " +
                  fs::absolute(o.root() / "mnist").string() +
                  " (or set DET_DATA_DIR / data.root to the directory holding mnist/)");
}

}  // namespace

MnistDataset::MnistDataset(const MnistOptions& o) {
  std::string prefix = o.train() ? "train" : "t10k";
  fs::path images_path = locate(o, prefix + "-images-idx3-ubyte");
  fs::path labels_path = locate(o, prefix + "-labels-idx1-ubyte");
  // The labels first (small), then the images' header: a count that disagrees is refused
  // before the images' memory is taken.
  labels_ = read_idx_labels(labels_path);
  InputFile in(images_path);
  const IdxHeader h = read_idx_header(in, 3, max_data_file_bytes());
  if (h.dims[0] != labels_.size(0))
    throw DataError(images_path.string() + " holds " + std::to_string(h.dims[0]) + " images but " +
                    labels_path.string() + " holds " + std::to_string(labels_.size(0)) +
                    " labels; the two files must come from the same split");
  if (h.dims[0] == 0)
    throw DataError(images_path.string() + ": holds no images; fetch the dataset again");
  auto images = torch::empty(h.dims, torch::kUInt8);
  read_idx_body(in, h, images.data_ptr());
  auto bad = (labels_ > 9).nonzero();
  if (bad.size(0) > 0) {
    const int64_t r = bad[0][0].item<int64_t>();
    throw DataError(labels_path.string() + ": label " + std::to_string(labels_[r].item<int64_t>()) +
                    " of record " + std::to_string(r) +
                    " is out of range 0-9; the file is corrupt or not MNIST");
  }
  // Kept as bytes (a quarter of float32's memory); each batch is made float as torchvision's
  // ToTensor + Normalize make each image (see to_float).
  pixels_ = images.unsqueeze(1);
  normalize_ = o.normalize();
  mean_ = static_cast<float>(o.mean());
  std_ = static_cast<float>(o.stddev());
}

torch::Tensor MnistDataset::to_float(const torch::Tensor& pixels) const {
  // torchvision: ToTensor (x / 255 as float32), then Normalize ((x - mean) / std), in float32.
  auto x = pixels.to(torch::kFloat32).div_(255.0f);
  if (normalize_) x.sub_(mean_).div_(std_);
  return x;
}

torch::Tensor MnistDataset::images() const { return to_float(pixels_); }

Batch MnistDataset::get_batch(const BatchRequest& request) const {
  const auto& indices = request.indices;
  auto idx = torch::from_blob(const_cast<int64_t*>(indices.data()),
                              {static_cast<int64_t>(indices.size())}, torch::kLong);
  Batch b;
  b.data = to_float(pixels_.index_select(0, idx));
  b.target = labels_.index_select(0, idx);
  return b;
}

}  // namespace det::data
