// The floor of harness overhead: the MNIST CNN of configs/mnist/const.yaml trained by a plain
// hand-written LibTorch loop (same model, batch 64, Adadelta, data in memory, same threads).
// Prints steady-state batches/s over batches [warmup, warmup+timed).
//   bench_mnist_loop DATA_DIR [timed=300] [warmup=50] [--no-malloc-tuning]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "det/data/mnist.h"
#include "det/optim/adadelta.h"
#include "det/util/allocator.h"
#include "det/util/threads.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DATA_DIR [timed] [warmup] [--no-malloc-tuning]\n", argv[0]);
    return 2;
  }
  bool tune = !(argc > 4 && std::strcmp(argv[4], "--no-malloc-tuning") == 0);
  if (tune) det::util::tune_allocator();
  // det-run's worker defaults (the threads are not what is compared): BLAS held to one thread,
  // intra-op threads on every usable CPU.
  det::util::default_blas_threads();
  if (int threads = det::util::default_intra_op_threads(1); threads > 0)
    torch::set_num_threads(threads);
  int64_t timed = argc > 2 ? std::atoll(argv[2]) : 300,
          warmup = argc > 3 ? std::atoll(argv[3]) : 50;
  det::data::MnistOptions o;
  o.root(argv[1]);
  o.download(false);
  det::data::MnistDataset ds(o);
  const torch::Tensor images = ds.images();  // float32, in memory: batches are views
  torch::manual_seed(0);
  torch::nn::Sequential model(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 32, 3)),
                              torch::nn::ReLU(), torch::nn::Conv2d(32, 64, 3), torch::nn::ReLU(),
                              torch::nn::MaxPool2d(2), torch::nn::Dropout2d(0.25),
                              torch::nn::Flatten(), torch::nn::Linear(9216, 128), torch::nn::ReLU(),
                              torch::nn::Dropout(0.5), torch::nn::Linear(128, 10),
                              torch::nn::LogSoftmax(1));
  det::optim::Adadelta opt(model->parameters(), det::optim::AdadeltaOptions(1.0));
  model->train();
  const int64_t bs = 64;
  auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < warmup + timed; ++i) {
    if (i == warmup) start = std::chrono::steady_clock::now();
    int64_t first = (i * bs) % (ds.size() - bs);
    auto x = images.narrow(0, first, bs), y = ds.labels().narrow(0, first, bs);
    auto loss = torch::nll_loss(model->forward(x), y);
    loss.backward();
    opt.step();
    opt.zero_grad();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"impl\": \"libtorch_loop%s\", \"batches_per_second\": %.4f, \"threads\": %d}\n",
              tune ? "" : "_no_malloc_tuning", static_cast<double>(timed) / s,
              torch::get_num_threads());
  return 0;
}
