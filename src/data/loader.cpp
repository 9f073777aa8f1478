#include "det/data/loader.h"

#include <torch/cuda.h>

#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "det/util/error.h"
#include "det/util/strings.h"

namespace det::data {

torch::Tensor& Batch::operator[](const std::string& name) {
  return const_cast<torch::Tensor&>(static_cast<const Batch&>(*this)[name]);
}

const torch::Tensor& Batch::operator[](const std::string& name) const {
  if (name == "data" && data.defined()) return data;
  if (name == "target" && target.defined()) return target;
  auto it = extra.find(name);
  if (it != extra.end() && it->second.defined()) return it->second;
  auto known = names();
  throw DataError("the batch has no tensor '" + name + "'" + util::did_you_mean(name, known) +
                  " (it has: " + (known.empty() ? std::string("none") : util::join(known, ", ")) +
                  "); add one with Batch::set(name, tensor)");
}

Batch& Batch::set(const std::string& name, torch::Tensor tensor) {
  if (name == "data")
    data = std::move(tensor);
  else if (name == "target")
    target = std::move(tensor);
  else
    extra[name] = std::move(tensor);
  return *this;
}

bool Batch::contains(const std::string& name) const {
  if (name == "data") return data.defined();
  if (name == "target") return target.defined();
  auto it = extra.find(name);
  return it != extra.end() && it->second.defined();
}

std::vector<std::string> Batch::names() const {
  std::vector<std::string> out;
  for_each([&](const std::string& n, const torch::Tensor&) { out.push_back(n); });
  return out;
}

int64_t Batch::size() const {
  if (data.defined()) return data.dim() > 0 ? data.size(0) : 0;
  int64_t n = 0;
  bool found = false;
  for_each([&](const std::string&, const torch::Tensor& t) {
    if (!found) n = t.dim() > 0 ? t.size(0) : 0, found = true;
  });
  return n;
}

Batch Batch::to(const torch::Device& device, bool non_blocking) const {
  bool there = true;
  for_each(
      [&](const std::string&, const torch::Tensor& t) { there = there && t.device() == device; });
  if (there) return *this;
  Batch b = *this;
  b.for_each([&](const std::string&, torch::Tensor& t) { t = t.to(device, non_blocking); });
  return b;
}

Batch Batch::pin_memory() const {
  Batch b = *this;
  b.for_each([](const std::string&, torch::Tensor& t) { t = t.pin_memory(); });
  return b;
}

TensorDataset::TensorDataset(torch::Tensor data, torch::Tensor target) {
  tensors_["data"] = std::move(data);
  tensors_["target"] = std::move(target);
  check();
}

TensorDataset::TensorDataset(std::map<std::string, torch::Tensor> tensors)
    : tensors_(std::move(tensors)) {
  check();
}

void TensorDataset::check() {
  if (tensors_.empty()) throw DataError("TensorDataset: no tensors given");
  size_ = -1;
  for (const auto& [name, t] : tensors_) {
    if (!t.defined() || t.dim() == 0)
      throw DataError("TensorDataset: tensor '" + name + "' has no first (example) dimension");
    if (size_ >= 0 && t.size(0) != size_)
      throw DataError("TensorDataset: tensor '" + name + "' has " + std::to_string(t.size(0)) +
                      " rows but '" + tensors_.begin()->first + "' has " + std::to_string(size_));
    size_ = t.size(0);
  }
}

uint64_t BatchRequest::sample_seed(size_t i) const {
  // splitmix64 over the three inputs.
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  return mix(mix(mix(seed) ^ static_cast<uint64_t>(epoch)) ^ static_cast<uint64_t>(indices[i]));
}

Batch TensorDataset::get_batch(const BatchRequest& request) const {
  const auto& indices = request.indices;
  auto idx = torch::from_blob(const_cast<int64_t*>(indices.data()),
                              {static_cast<int64_t>(indices.size())}, torch::kLong);
  Batch b;
  for (const auto& [name, t] : tensors_) b.set(name, t.index_select(0, idx));
  return b;
}

std::vector<int64_t> SequentialSampler::indices(int64_t /*epoch*/) const {
  std::vector<int64_t> v(static_cast<size_t>(n_));
  for (int64_t i = 0; i < n_; ++i) v[static_cast<size_t>(i)] = i;
  return v;
}

std::vector<int64_t> RandomSampler::indices(int64_t epoch) const {
  std::vector<int64_t> v(static_cast<size_t>(n_));
  for (int64_t i = 0; i < n_; ++i) v[static_cast<size_t>(i)] = i;
  // One generator per (seed, epoch): splitmix the pair so neighbouring epochs are unrelated.
  uint64_t z = seed_ + 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(epoch + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  std::mt19937_64 rng(z);
  for (int64_t i = n_ - 1; i > 0; --i) {
    std::uniform_int_distribution<int64_t> d(0, i);
    std::swap(v[static_cast<size_t>(i)], v[static_cast<size_t>(d(rng))]);
  }
  return v;
}

DataLoader::DataLoader(std::shared_ptr<Dataset> dataset, DataLoaderOptions options)
    : DataLoader(dataset,
                 options.shuffle() ? std::shared_ptr<Sampler>(std::make_shared<RandomSampler>(
                                         dataset->size(), options.seed()))
                                   : std::shared_ptr<Sampler>(
                                         std::make_shared<SequentialSampler>(dataset->size())),
                 options) {}

DataLoader::DataLoader(std::shared_ptr<Dataset> dataset, std::shared_ptr<Sampler> sampler,
                       DataLoaderOptions options)
    : dataset_(std::move(dataset)), sampler_(std::move(sampler)), options_(options) {
  if (options_.batch_size() < 1)
    throw DataError("DataLoader: batch_size must be >= 1, got " +
                    std::to_string(options_.batch_size()));
  if (sampler_->size() != dataset_->size())
    throw DataError("DataLoader: the sampler has " + std::to_string(sampler_->size()) +
                    " indices but the dataset has " + std::to_string(dataset_->size()) +
                    " examples");
  if (options_.num_workers() < 0) options_.num_workers(0);
  if (options_.num_replicas() < 1 || options_.rank() < 0 ||
      options_.rank() >= options_.num_replicas())
    throw DataError("DataLoader: rank " + std::to_string(options_.rank()) + " is not in [0, " +
                    std::to_string(options_.num_replicas()) + ")");
  if (options_.prefetch() < 1) options_.prefetch(1);
  if (options_.pass_limit() < 0)
    throw DataError("DataLoader: pass_limit must be >= 0, got " +
                    std::to_string(options_.pass_limit()));
}

std::shared_ptr<DataLoader> DataLoader::sharded(int num_replicas, int rank) const {
  DataLoaderOptions o = options_;
  o.shard(num_replicas, rank);
  auto l = std::make_shared<DataLoader>(dataset_, sampler_, o);
  l->epoch_ = epoch_;
  return l;
}

std::shared_ptr<DataLoader> DataLoader::limited(int64_t n) const {
  DataLoaderOptions o = options_;
  o.pass_limit(options_.pass_limit() > 0 ? std::min(options_.pass_limit(), n) : n);
  auto l = std::make_shared<DataLoader>(dataset_, sampler_, o);
  l->epoch_ = epoch_;
  return l;
}

int64_t DataLoader::global_batches_per_epoch() const {
  int64_t n = sampler_->size(), b = options_.batch_size();
  return options_.drop_last() ? n / b : (n + b - 1) / b;
}

int64_t DataLoader::batches_per_epoch() const {
  const int64_t g = global_batches_per_epoch(), n = options_.num_replicas();
  return (g + n - 1) / n;
}

int64_t DataLoader::batches_in_one_pass() const {
  const int64_t g = global_batches_per_epoch(), n = options_.num_replicas();
  const int64_t mine = g / n + (g % n > options_.rank() ? 1 : 0);
  return options_.pass_limit() > 0 ? std::min(mine, options_.pass_limit()) : mine;
}

namespace {

// Index orders of recent epochs, shared by the workers of one stream.
class EpochCache {
 public:
  explicit EpochCache(const Sampler& s) : sampler_(s) {}
  std::shared_ptr<const std::vector<int64_t>> get(int64_t epoch) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(epoch);
    if (it != cache_.end()) return it->second;
    auto v = std::make_shared<const std::vector<int64_t>>(sampler_.indices(epoch));
    cache_[epoch] = v;
    while (cache_.size() > 2) cache_.erase(cache_.begin());
    return v;
  }

 private:
  const Sampler& sampler_;
  std::mutex mu_;
  std::map<int64_t, std::shared_ptr<const std::vector<int64_t>>> cache_;
};

std::vector<int64_t> slice_batch(const std::vector<int64_t>& order, int64_t in_epoch,
                                 int64_t batch_size) {
  auto begin = static_cast<size_t>(in_epoch * batch_size);
  auto end = std::min(order.size(), begin + static_cast<size_t>(batch_size));
  return {order.begin() + static_cast<long>(begin), order.begin() + static_cast<long>(end)};
}

class ThreadedStream : public BatchStream {
 public:
  ThreadedStream(const DataLoader& loader, std::shared_ptr<const Sampler> sampler, int64_t first,
                 int64_t end)
      : loader_(loader),
        sampler_(std::move(sampler)),
        cache_(*sampler_),
        next_claim_(first),
        next_out_(first),
        end_(end) {
    per_epoch_ = loader.global_batches_per_epoch();
    replicas_ = loader.options().num_replicas();
    pin_ = loader.options().pin_memory() && torch::cuda::is_available();
    rank_ = loader.options().rank();
    if (per_epoch_ <= 0)
      throw DataError("DataLoader: the dataset yields no batch (size " +
                      std::to_string(loader.dataset().size()) + ", batch size " +
                      std::to_string(loader.batch_size()) + ", drop_last)");
    int workers = loader.options().num_workers();
    capacity_ = std::max(1, workers) * loader.options().prefetch();
    for (int i = 0; i < workers; ++i) threads_.emplace_back([this] { work(); });
  }

  ~ThreadedStream() override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stopping_ = true;
    }
    space_.notify_all();
    for (auto& t : threads_) t.join();
  }

  bool done() const override { return end_ >= 0 && next_out_ >= end_; }

  Batch next() override {
    if (done()) throw DataError("DataLoader: read past the end of the stream");
    if (threads_.empty()) return make(next_out_++);
    std::unique_lock<std::mutex> lock(mu_);
    ready_cv_.wait(lock, [&] { return ready_.count(next_out_) > 0; });
    auto node = ready_.extract(next_out_);
    ++next_out_;
    lock.unlock();
    space_.notify_all();
    if (node.mapped().error) std::rethrow_exception(node.mapped().error);
    return std::move(node.mapped().batch);
  }

 private:
  struct Slot {
    Batch batch;
    std::exception_ptr error;
  };

  Batch make(int64_t local) {
    const int64_t g = local * replicas_ + rank_;  // this rank's share of the global stream
    int64_t epoch = g / per_epoch_, in_epoch = g % per_epoch_;
    auto order = cache_.get(epoch);
    BatchRequest request{slice_batch(*order, in_epoch, loader_.batch_size()), epoch,
                         loader_.options().seed()};
    Batch b = loader_.dataset().get_batch(request);
    if (pin_) b = b.pin_memory();
    return b;
  }

  void work() {
    for (;;) {
      int64_t g;
      {
        std::unique_lock<std::mutex> lock(mu_);
        space_.wait(lock, [&] {
          return stopping_ ||
                 ((end_ < 0 || next_claim_ < end_) && next_claim_ < next_out_ + capacity_);
        });
        if (stopping_) return;
        g = next_claim_++;
      }
      Slot slot;
      try {
        slot.batch = make(g);
      } catch (...) {
        slot.error = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        ready_.emplace(g, std::move(slot));
      }
      ready_cv_.notify_all();
    }
  }

  const DataLoader& loader_;
  std::shared_ptr<const Sampler> sampler_;
  EpochCache cache_;
  int64_t per_epoch_ = 0, replicas_ = 1, rank_ = 0;
  bool pin_ = false;
  int64_t next_claim_, next_out_, end_;
  int64_t capacity_ = 1;
  bool stopping_ = false;
  std::mutex mu_;
  std::condition_variable space_, ready_cv_;
  std::map<int64_t, Slot> ready_;
  std::vector<std::thread> threads_;
};

}  // namespace

std::vector<int64_t> DataLoader::batch_indices(int64_t b) const {
  const int64_t g = b * options_.num_replicas() + options_.rank();
  int64_t per_epoch = global_batches_per_epoch();
  return slice_batch(sampler_->indices(g / per_epoch), g % per_epoch, options_.batch_size());
}

std::unique_ptr<BatchStream> DataLoader::stream(int64_t first, int64_t end) const {
  return std::make_unique<ThreadedStream>(*this, sampler_, first, end);
}

DataLoader::Iterator::Iterator(std::shared_ptr<BatchStream> s) : stream_(std::move(s)) { ++*this; }

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  if (!stream_) return *this;
  if (stream_->done()) {
    stream_.reset();
    current_ = Batch();
  } else {
    current_ = stream_->next();
  }
  return *this;
}

DataLoader::Iterator DataLoader::begin() const {
  const int64_t first = epoch_ * batches_per_epoch();
  return Iterator(std::shared_ptr<BatchStream>(stream(first, first + batches_in_one_pass())));
}

}  // namespace det::data
