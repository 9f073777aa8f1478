// Images per second of det's CIFAR-10 training pipeline: RandomCrop(32, padding=4),
// RandomHorizontalFlip, ToTensor + Normalize, batch 128, shuffled, N worker threads.
//   bench_cifar_loader DATA_DIR [workers=2] [batches=200] [warmup=20]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "det/data/cifar.h"
#include "det/data/loader.h"
#include "det/util/allocator.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s DATA_DIR [workers] [batches] [warmup]\n", argv[0]);
    return 2;
  }
  det::util::tune_allocator();
  int workers = argc > 2 ? std::atoi(argv[2]) : 2;
  int64_t batches = argc > 3 ? std::atoll(argv[3]) : 200, warmup = argc > 4 ? std::atoll(argv[4]) : 20;
  det::data::CifarOptions o;
  o.root = argv[1];
  o.download = false;
  auto source = std::make_shared<det::data::CifarDataset>(o);
  det::data::Pipeline p;
  p.add(std::make_shared<det::data::RandomCrop>(32, 4))
      .add(std::make_shared<det::data::RandomHorizontalFlip>(0.5))
      .normalize({0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f});
  det::data::DataLoader loader(std::make_shared<det::data::ImageDataset>(source, p),
                               det::data::DataLoaderOptions().batch_size(128).shuffle(true).seed(0).num_workers(workers));
  auto stream = loader.stream(0, warmup + batches);
  auto start = std::chrono::steady_clock::now();
  int64_t images = 0;
  double checksum = 0;
  for (int64_t i = 0; i < warmup + batches; ++i) {
    if (i == warmup) start = std::chrono::steady_clock::now();
    auto b = stream->next();
    if (i >= warmup) images += b.size();
    checksum += b.data[0][0][0][0].item<float>();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("{\"impl\": \"det\", \"workers\": %d, \"images_per_second\": %.1f, \"checksum\": %.3f}\n", workers, images / s, checksum);
  return 0;
}
