// Images per second of det's input pipelines (the consumer only takes batches):
//   cifar:       CIFAR-10 train, RandomCrop(32, padding=4), RandomHorizontalFlip, Normalize, batch
//   128 imagefolder: JPEG decode, RandomResizedCrop(224), RandomHorizontalFlip, Normalize, batch 64
//   bench_loader cifar|imagefolder ROOT [workers=2] [batches] [warmup]
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>

#include "det/data/cifar.h"
#include "det/data/image_folder.h"
#include "det/data/loader.h"
#include "det/data/resize.h"
#include "det/util/allocator.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s cifar|imagefolder ROOT [workers] [batches] [warmup]\n",
                 argv[0]);
    return 2;
  }
  det::util::tune_allocator();
  const bool cifar = std::strcmp(argv[1], "cifar") == 0;
  int workers = argc > 3 ? std::atoi(argv[3]) : 2;
  int64_t batches = argc > 4 ? std::atoll(argv[4]) : (cifar ? 200 : 30),
          warmup = argc > 5 ? std::atoll(argv[5]) : (cifar ? 20 : 3);
  std::shared_ptr<det::data::ImageSource> source;
  det::data::Pipeline p;
  int64_t batch_size = cifar ? 128 : 64;
  if (cifar) {
    det::data::CifarOptions o;
    o.root(argv[2]);
    o.download(false);
    source = std::make_shared<det::data::CifarDataset>(o);
    p.add(std::make_shared<det::data::RandomCrop>(32, 4))
        .add(std::make_shared<det::data::RandomHorizontalFlip>(0.5))
        .normalize({0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f});
  } else {
    source =
        std::make_shared<det::data::ImageFolder>(det::data::ImageFolderOptions().root(argv[2]));
    p.add(std::make_shared<det::data::RandomResizedCrop>(224))
        .add(std::make_shared<det::data::RandomHorizontalFlip>(0.5))
        .normalize({0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f});
  }
  det::data::DataLoader loader(std::make_shared<det::data::ImageDataset>(source, p),
                               det::data::DataLoaderOptions()
                                   .batch_size(batch_size)
                                   .shuffle(true)
                                   .seed(0)
                                   .num_workers(workers));
  auto stream = loader.stream(0, warmup + batches);
  auto start = std::chrono::steady_clock::now();
  int64_t images = 0;
  for (int64_t i = 0; i < warmup + batches; ++i) {
    if (i == warmup) start = std::chrono::steady_clock::now();
    auto b = stream->next();
    if (i >= warmup) images += b.size();
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf(
      "{\"impl\": \"det\", \"pipeline\": \"%s\", \"workers\": %d, \"images_per_second\": %.1f}\n",
      argv[1], workers, static_cast<double>(images) / s);
  return 0;
}
