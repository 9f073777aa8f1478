#include "det/data/loader.h"
#include "det/data/image_dataset.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "det/util/error.h"

namespace det::data {
namespace {

std::shared_ptr<Dataset> range_dataset(int64_t n) {
  auto x = torch::arange(n, torch::kFloat32).unsqueeze(1);
  return std::make_shared<TensorDataset>(x, torch::arange(n, torch::kLong));
}

std::vector<int64_t> collect(const DataLoader& l, int64_t first, int64_t end) {
  std::vector<int64_t> out;
  auto s = l.stream(first, end);
  while (!s->done()) {
    auto b = s->next();
    for (int64_t i = 0; i < b.size(); ++i) out.push_back(b.target[i].item<int64_t>());
    out.push_back(-1);  // batch separator
  }
  return out;
}

TEST(DataLoader, SequentialBatchesAndPartialLastBatch) {
  DataLoader l(range_dataset(10), DataLoaderOptions().batch_size(4));
  EXPECT_EQ(l.batches_per_epoch(), 3);
  EXPECT_EQ(collect(l, 0, 3), (std::vector<int64_t>{0, 1, 2, 3, -1, 4, 5, 6, 7, -1, 8, 9, -1}));
  DataLoader d(range_dataset(10), DataLoaderOptions().batch_size(4).drop_last(true));
  EXPECT_EQ(d.batches_per_epoch(), 2);
}

TEST(DataLoader, SameBatchesWhateverTheWorkerCount) {
  auto ds = range_dataset(103);
  std::vector<int64_t> ref;
  for (int workers : {0, 1, 2, 5}) {
    DataLoader l(
        ds,
        DataLoaderOptions().batch_size(8).shuffle(true).seed(3).num_workers(workers).prefetch(3));
    auto got = collect(l, 0, 3 * l.batches_per_epoch());
    if (ref.empty()) ref = got;
    EXPECT_EQ(got, ref) << workers << " workers";
  }
}

TEST(DataLoader, ShuffleIsAPermutationThatChangesEachEpochAndResumesMidEpoch) {
  DataLoader l(range_dataset(50), DataLoaderOptions().batch_size(5).shuffle(true).seed(11));
  auto all = collect(l, 0, 20);  // two epochs of 10 batches
  std::vector<int64_t> e0, e1;
  for (size_t i = 0, batch = 0; i < all.size(); ++i) {
    if (all[i] < 0) {
      ++batch;
      continue;
    }
    (batch < 10 ? e0 : e1).push_back(all[i]);
  }
  EXPECT_NE(e0, e1);
  std::sort(e0.begin(), e0.end());
  for (int64_t i = 0; i < 50; ++i) EXPECT_EQ(e0[i], i);
  // Starting at batch 13 gives exactly the tail of the uninterrupted stream.
  auto tail = collect(l, 13, 20);
  std::vector<int64_t> expected(all.begin() + 13 * 6, all.end());
  EXPECT_EQ(tail, expected);
  // set_epoch selects the epoch a range-for iterates.
  l.set_epoch(1);
  std::vector<int64_t> iter;
  for (auto& b : l)
    for (int64_t i = 0; i < b.size(); ++i) iter.push_back(b.target[i].item<int64_t>());
  std::vector<int64_t> e1_order;
  for (size_t i = 10 * 6; i < all.size(); ++i)
    if (all[i] >= 0) e1_order.push_back(all[i]);
  EXPECT_EQ(iter, e1_order);
}

TEST(DataLoader, ShardingDealsBatchesRoundRobinAsDetermined) {
  // 10 batches of 4 per pass over 40 examples, 4 ranks: rank r keeps global batches r, r+4, ...
  auto ds = range_dataset(40);
  std::vector<int64_t> seen;
  std::vector<int64_t> passes;
  for (int r = 0; r < 4; ++r) {
    DataLoader l(ds, DataLoaderOptions().batch_size(4).shuffle(true).seed(5).shard(4, r));
    EXPECT_EQ(l.batches_per_epoch(), 3);  // the chief's count, ceil(10 / 4)
    passes.push_back(l.batches_in_one_pass());
    DataLoader whole(ds, DataLoaderOptions().batch_size(4).shuffle(true).seed(5));
    for (int64_t k = 0; k < 6; ++k)
      EXPECT_EQ(l.batch_indices(k), whole.batch_indices(k * 4 + r)) << r << " " << k;
    for (int64_t k = 0; k < l.batches_in_one_pass(); ++k)
      for (auto i : l.batch_indices(k)) seen.push_back(i);
  }
  EXPECT_EQ(passes, (std::vector<int64_t>{3, 3, 2, 2}));
  std::sort(seen.begin(), seen.end());
  for (int64_t i = 0; i < 40; ++i)
    EXPECT_EQ(seen[static_cast<size_t>(i)], i);  // every example once
  EXPECT_THROW(DataLoader(ds, DataLoaderOptions().shard(2, 2)), DataError);
}

TEST(DataLoader, WorkerExceptionsReachTheConsumer) {
  struct Failing : Dataset {
    int64_t size() const override { return 8; }
    Batch get_batch(const BatchRequest& r) const override {
      const auto& idx = r.indices;
      if (idx[0] >= 4) throw DataError("record 4 is corrupt");
      return {torch::zeros({static_cast<int64_t>(idx.size()), 1}),
              torch::zeros({static_cast<int64_t>(idx.size())})};
    }
  };
  DataLoader l(std::make_shared<Failing>(), DataLoaderOptions().batch_size(2).num_workers(2));
  auto s = l.stream(0, 4);
  s->next();
  s->next();
  EXPECT_THROW(s->next(), DataError);
}

}  // namespace
}  // namespace det::data

namespace det::data {
namespace {

// Synthetic images whose pixels encode their index.
struct Squares : ImageSource {
  int64_t size() const override { return 40; }
  Image image(int64_t index) const override {
    Image img(8, 8, 3);
    for (size_t i = 0; i < img.pixels.size(); ++i)
      img.pixels[i] = static_cast<uint8_t>(index * 3 + i);
    return img;
  }
  int64_t label(int64_t index) const override { return index % 10; }
};

TEST(DataLoader, RandomAugmentationsAreTheSameWhateverTheWorkerCount) {
  Pipeline p;
  p.add(std::make_shared<RandomCrop>(8, 2)).add(std::make_shared<RandomHorizontalFlip>(0.5));
  auto ds = std::make_shared<ImageDataset>(std::make_shared<Squares>(), p);
  std::vector<torch::Tensor> ref;
  for (int workers : {0, 1, 3}) {
    DataLoader l(ds, DataLoaderOptions().batch_size(6).shuffle(true).seed(9).num_workers(workers));
    auto s = l.stream(0, 2 * l.batches_per_epoch());
    std::vector<torch::Tensor> got;
    while (!s->done()) got.push_back(s->next().data);
    if (ref.empty()) {
      ref = got;
      continue;
    }
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_TRUE(torch::equal(got[i], ref[i])) << workers << " workers, batch " << i;
  }
  // The same image is augmented differently in another epoch.
  DataLoader l(ds, DataLoaderOptions().batch_size(40).seed(9));
  auto s = l.stream(0, 2);
  EXPECT_FALSE(torch::equal(s->next().data, s->next().data));
}

}  // namespace
}  // namespace det::data

namespace det::data {
namespace {

TEST(Loader, APassLimitCutsOnePassButNotTheTrainingStream) {
  auto ds = std::make_shared<TensorDataset>(torch::arange(40, torch::kFloat).reshape({40, 1}),
                                            torch::zeros({40}));
  DataLoader full(ds, DataLoaderOptions().batch_size(4));
  auto cut = full.limited(3);
  EXPECT_EQ(full.batches_in_one_pass(), 10);
  EXPECT_EQ(cut->batches_in_one_pass(), 3);
  int64_t n = 0;
  for (auto& b : *cut) {
    EXPECT_EQ(b.data[0].item<float>(), static_cast<float>(4 * n));  // the first batches, in order
    ++n;
  }
  EXPECT_EQ(n, 3);
  EXPECT_EQ(cut->batches_per_epoch(), 10) << "training epochs keep their length";
  EXPECT_EQ(cut->limited(5)->batches_in_one_pass(), 3) << "limits only tighten";
  EXPECT_EQ(cut->sharded(2, 1)->batches_in_one_pass(), 3);
}

}  // namespace
}  // namespace det::data
