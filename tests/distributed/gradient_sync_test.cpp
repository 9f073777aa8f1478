#include "det/distributed/gradient_sync.h"

#include <gtest/gtest.h>

#include "det/distributed/distributed_context.h"

namespace det {
namespace {

// One process: the synchronizer's buckets follow reverse parameter order and the size cap.
TEST(GradientSync, BucketsInReverseOrderUnderTheCap) {
  auto a = torch::zeros({1000}, torch::requires_grad()),
       b = torch::zeros({1000}, torch::requires_grad()),
       c = torch::zeros({10}, torch::requires_grad());
  distributed::GradientSynchronizer one(distributed::make_local_context(), {a, b, c},
                                        distributed::GradientSyncOptions().bucket_bytes(1 << 20));
  EXPECT_EQ(one.num_buckets(), 1u);
  distributed::GradientSynchronizer many(distributed::make_local_context(), {a, b, c},
                                         distributed::GradientSyncOptions().bucket_bytes(4000));
  EXPECT_EQ(many.num_buckets(), 2u);  // {c, b} reach 4040 bytes, then {a}
  many.prepare(true);
  (a.sum() + 2 * b.sum() + 3 * c.sum()).backward();
  EXPECT_TRUE(many.pending());
  many.finish();
  EXPECT_FALSE(many.pending());
  auto s = many.stats();
  EXPECT_EQ(s.buckets_in_backward, 2);
  EXPECT_EQ(s.reductions, 1);
  EXPECT_EQ(b.grad()[0].item<float>(), 2.0f);
}

}  // namespace
}  // namespace det
