#include "det/distributed/gradient_sync.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>

#include <chrono>
#include <cstdlib>
#include <mutex>
#include <string>

#include "det/util/error.h"

namespace det::distributed {

namespace {

long env_long(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  try {
    return std::stol(v);
  } catch (const std::exception&) {
    throw DistributedError(std::string("environment variable ") + name + "='" + v +
                           "' is not an integer");
  }
}

}  // namespace

GradientSyncOptions GradientSyncOptions::from_env() {
  GradientSyncOptions o;
  long mb = env_long("DET_BUCKET_MB", -1);
  if (mb >= 0) o.bucket_bytes_ = static_cast<std::size_t>(mb) << 20;
  o.overlap_ = env_long("DET_DIST_OVERLAP", 1) != 0;
  return o;
}

struct GradientSynchronizer::Impl {
  struct Bucket {
    std::vector<size_t> params;  // indices into Impl::params
    size_t ready = 0;
    torch::Tensor flat;
    std::unique_ptr<Work> work;
  };

  std::shared_ptr<DistributedContext> ctx;
  GradientSyncOptions options;
  std::vector<torch::Tensor> params;
  std::vector<size_t> bucket_of;  // param index -> bucket
  std::vector<char> param_ready;  // this batch
  std::vector<Bucket> buckets;
  std::vector<std::shared_ptr<torch::autograd::Node>>
      accumulators;  // kept alive: hooks live on them
  std::vector<uintptr_t> hook_keys;
  mutable std::mutex mu;
  bool armed = false;
  size_t next_launch = 0;
  Stats stats;

  void launch(Bucket& b) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> grads;
    grads.reserve(b.params.size());
    for (size_t i : b.params) {
      const auto& p = params[i];
      grads.push_back(p.grad().defined() ? p.grad().reshape({-1})
                                         : torch::zeros({p.numel()}, p.options()));
    }
    b.flat = grads.size() == 1 ? grads[0].clone() : torch::cat(grads);
    b.work = ctx->allreduce_async(b.flat, ReduceOp::kAvg);
  }

  // Called from the autograd hook after parameter i's gradient was accumulated.
  void mark_ready(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed || param_ready[i]) return;
    param_ready[i] = 1;
    ++buckets[bucket_of[i]].ready;
    if (!options.overlap_) return;
    while (next_launch < buckets.size() &&
           buckets[next_launch].ready == buckets[next_launch].params.size()) {
      launch(buckets[next_launch++]);
      ++stats.buckets_in_backward;
    }
  }

  void finish() {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed) return;
    auto start = std::chrono::steady_clock::now();
    torch::NoGradGuard no_grad;
    for (; next_launch < buckets.size(); ++next_launch) {
      launch(buckets[next_launch]);
      ++stats.buckets_at_finish;
    }
    armed = false;  // even if a wait throws: the batch is over
    for (auto& b : buckets) {
      auto work = std::move(b.work);
      work->wait();
      int64_t offset = 0;
      for (size_t i : b.params) {
        auto& p = params[i];
        auto slice = b.flat.narrow(0, offset, p.numel()).view(p.sizes());
        offset += p.numel();
        if (p.grad().defined()) {
          p.mutable_grad().copy_(slice);
        } else {
          p.mutable_grad() = slice.clone();
        }
      }
      b.flat = torch::Tensor();
    }
    ++stats.reductions;
    stats.wait_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
};

GradientSynchronizer::GradientSynchronizer(std::shared_ptr<DistributedContext> context,
                                           std::vector<torch::Tensor> params,
                                           GradientSyncOptions options)
    : impl_(std::make_shared<Impl>()) {
  // Runs after AccumulateGrad has added a parameter's gradient into .grad. (A local class: it
  // may name the private Impl.)
  class ReadyHook : public torch::autograd::FunctionPostHook {
   public:
    ReadyHook(std::weak_ptr<Impl> impl, size_t index) : impl_(std::move(impl)), index_(index) {}
    torch::autograd::variable_list operator()(
        const torch::autograd::variable_list& outputs,
        const torch::autograd::variable_list& /*inputs*/) override {
      if (auto impl = impl_.lock()) impl->mark_ready(index_);
      return outputs;
    }

   private:
    std::weak_ptr<Impl> impl_;
    size_t index_;
  };
  impl_->ctx = std::move(context);
  impl_->options = options;
  // Reverse order, without duplicates (a module shared by two wrapped models) or frozen tensors.
  std::vector<torch::Tensor> unique;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    if (!it->requires_grad()) continue;
    bool seen = false;
    for (const auto& u : unique)
      seen = seen || u.unsafeGetTensorImpl() == it->unsafeGetTensorImpl();
    if (!seen) unique.push_back(*it);
  }
  impl_->params = unique;
  size_t bytes = 0;
  for (size_t i = 0; i < unique.size(); ++i) {
    const auto& p = unique[i];
    size_t n = static_cast<size_t>(p.numel()) * p.element_size();
    bool new_bucket = impl_->buckets.empty() || bytes >= options.bucket_bytes_;
    if (!new_bucket) {
      const auto& first = unique[impl_->buckets.back().params.front()];
      new_bucket = first.scalar_type() != p.scalar_type() || first.device() != p.device();
    }
    if (new_bucket) {
      impl_->buckets.emplace_back();
      bytes = 0;
    }
    impl_->buckets.back().params.push_back(i);
    impl_->bucket_of.push_back(impl_->buckets.size() - 1);
    bytes += n;
  }
  impl_->param_ready.assign(unique.size(), 0);
  std::weak_ptr<Impl> weak = impl_;
  for (size_t i = 0; i < unique.size(); ++i) {
    auto acc = torch::autograd::impl::grad_accumulator(unique[i]);
    if (!acc)
      throw DistributedError("gradient sync: parameter " + std::to_string(i) +
                             " is not a leaf tensor");
    impl_->hook_keys.push_back(acc->add_post_hook(std::make_unique<ReadyHook>(weak, i)));
    impl_->accumulators.push_back(std::move(acc));
  }
}

GradientSynchronizer::~GradientSynchronizer() {
  for (size_t i = 0; i < impl_->accumulators.size(); ++i)
    impl_->accumulators[i]->del_post_hook(impl_->hook_keys[i]);
}

void GradientSynchronizer::prepare(bool reduce) {
  impl_->finish();  // a batch that stepped without step_optimizer: complete its collectives
  std::lock_guard<std::mutex> lock(impl_->mu);
  impl_->armed = reduce;
  impl_->next_launch = 0;
  std::fill(impl_->param_ready.begin(), impl_->param_ready.end(), 0);
  for (auto& b : impl_->buckets) b.ready = 0;
}

void GradientSynchronizer::finish() { impl_->finish(); }

bool GradientSynchronizer::pending() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->armed;
}

GradientSynchronizer::Stats GradientSynchronizer::stats() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->stats;
}

std::size_t GradientSynchronizer::num_buckets() const { return impl_->buckets.size(); }

}  // namespace det::distributed
