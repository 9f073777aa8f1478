#include "det/util/rng.h"

#include <gtest/gtest.h>

namespace det::util {

TEST(NpRandom, MatchesNumpyRandomStateIntn) {
  // Determined's nprand_test.go: seed 42, Intn(10) x10.
  NpRandom rng(42);
  std::vector<int64_t> got;
  for (int i = 0; i < 10; ++i) got.push_back(rng.intn(10));
  EXPECT_EQ(got, (std::vector<int64_t>{6, 3, 7, 4, 6, 9, 2, 6, 7, 4}));
}

TEST(NpRandom, UnitIntervalMatchesNumpyRandomSample) {
  // numpy.random.RandomState(0).random_sample() == 0.5488135039273248
  NpRandom rng(0);
  EXPECT_DOUBLE_EQ(rng.unit_interval(), 0.5488135039273248);
  EXPECT_DOUBLE_EQ(rng.unit_interval(), 0.7151893663724195);
}

TEST(NpRandom, SameSeedSameStream) {
  NpRandom a(17), b(17);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.bits64(), b.bits64());
}

}  // namespace det::util
