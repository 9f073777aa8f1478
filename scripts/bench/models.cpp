// Training and inference throughput (images/s) of det's ShiftViT and ViT on synthetic batches,
// for scripts/bench/models.sh and scripts/gpu/check.sh (the same models in Python:
// models_pytorch.py).
//   bench_models MODEL BATCH ITERS WARMUP [DEVICE=cpu] [PRECISION=fp32]
//   MODEL: shiftvit_mnist | shiftvit_cifar10 | vit_scratch_cifar10 | vit_b16 (224x224, 1000
//   classes); DEVICE: cpu | cuda; PRECISION: fp32 | bf16 | fp16 (det::Autocast, with a
//   GradScaler for fp16)
#include <chrono>
#include <cstdio>
#include <string>

#include <torch/cuda.h>
#include <torch/torch.h>

#include "det/core/amp.h"

#include "det/nn/shiftvit.h"
#include "det/nn/vit.h"
#include "det/optim/adamw.h"
#include "det/util/allocator.h"
#include "det/util/threads.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: bench_models MODEL BATCH ITERS WARMUP\n");
    return 2;
  }
  const torch::Device device(argc > 5 ? std::string(argv[5]) : std::string("cpu"));
  const std::string precision_name = argc > 6 ? argv[6] : "fp32";
  // The bench's own word for full precision; the rest are the config's names.
  const det::Precision precision =
      precision_name == "fp32" ? det::Precision::kFloat32 : det::parse_precision(precision_name);
  det::check_precision_supported(precision, device);
  auto sync = [&] {
    if (device.is_cuda()) torch::cuda::synchronize();
  };
  const std::string name = argv[1];
  const int64_t batch = std::stoll(argv[2]), iters = std::stoll(argv[3]),
                warmup = std::stoll(argv[4]);
  det::util::tune_allocator();
  // det-run's worker defaults: BLAS held to one thread, intra-op threads on every usable CPU.
  det::util::default_blas_threads();
  if (int threads = det::util::default_intra_op_threads(1); threads > 0)
    torch::set_num_threads(threads);
  torch::manual_seed(0);
  std::shared_ptr<torch::nn::Module> model;
  std::function<torch::Tensor(const torch::Tensor&)> forward;
  int64_t size = 32, chans = 3, classes = 10;
  if (name.rfind("shiftvit", 0) == 0) {
    det::nn::ShiftViTOptions o;
    o.patch_size(2).num_classes(10).drop_rate(0).drop_path_rate(0);
    if (name == "shiftvit_mnist") {
      size = 28, chans = 1;
      o.n_div(8).img_size(size).in_chans(chans);
    } else {
      o.img_size(32);
    }
    det::nn::ShiftViT m(o);
    model = m.ptr();
    forward = [m](const torch::Tensor& x) mutable { return m->forward(x); };
  } else if (name == "vit_b16") {
    auto o = det::nn::ViTOptions::variant("b", 16);
    size = 224, classes = 1000;
    o.img_size(size).num_classes(classes);
    det::nn::ViT m(o);
    model = m.ptr();
    forward = [m](const torch::Tensor& x) mutable { return m->forward(x); };
  } else {
    auto o = det::nn::ViTOptions::variant("ti", 4);
    o.img_size(32).num_classes(10).depth(6);
    det::nn::ViT m(o);
    model = m.ptr();
    forward = [m](const torch::Tensor& x) mutable { return m->forward(x); };
  }
  model->to(device);
  auto opt = det::optim::make_adamw(*model, torch::optim::AdamWOptions(1e-3).weight_decay(0.05));
  auto x = torch::randn({batch, chans, size, size}).to(device);
  auto y = torch::randint(0, classes, {batch}, torch::kLong).to(device);
  det::GradScalerOptions so;
  so.enabled = precision == det::Precision::kFloat16;
  det::GradScaler scaler(so);
  using clock = std::chrono::steady_clock;
  model->train();
  clock::time_point t0;
  for (int64_t i = 0; i < warmup + iters; ++i) {
    if (i == warmup) {
      sync();
      t0 = clock::now();
    }
    torch::Tensor loss;
    {
      det::Autocast autocast(device, precision);
      loss = torch::cross_entropy_loss(forward(x), y);
    }
    opt->zero_grad();
    scaler.scale(loss).backward();
    scaler.step(*opt);
    scaler.update();
  }
  sync();
  double train =
      static_cast<double>(batch * iters) / std::chrono::duration<double>(clock::now() - t0).count();
  model->eval();
  torch::NoGradGuard no_grad;
  det::Autocast autocast(device, precision);
  for (int64_t i = 0; i < warmup + iters; ++i) {
    if (i == warmup) {
      sync();
      t0 = clock::now();
    }
    forward(x);
  }
  sync();
  double infer =
      static_cast<double>(batch * iters) / std::chrono::duration<double>(clock::now() - t0).count();
  std::printf(
      "{\"impl\": \"det\", \"model\": \"%s\", \"batch\": %lld, \"device\": \"%s\", "
      "\"precision\": \"%s\", \"train_images_per_second\": %.2f, "
      "\"infer_images_per_second\": %.2f, \"threads\": %d}\n",
      name.c_str(), static_cast<long long>(batch), device.str().c_str(), precision_name.c_str(),
      train, infer, torch::get_num_threads());
  return 0;
}
