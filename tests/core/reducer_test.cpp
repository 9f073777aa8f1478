#include "det/core/reducer.h"

#include <gtest/gtest.h>

namespace det {
namespace {

TEST(Reducers, BuiltInsMatchDetermined) {
  std::vector<double> m = {0.25, 0.5, 0.75, 1, 25.5, 1.9};
  EXPECT_NEAR(reduce(Reducer::kAvg, m), 4.983333, 1e-5);
  EXPECT_NEAR(reduce(Reducer::kSum, m), 29.9, 1e-9);
  EXPECT_EQ(reduce(Reducer::kMin, m), 0.25);
  EXPECT_EQ(reduce(Reducer::kMax, m), 25.5);
  EXPECT_NEAR(reduce_weighted(Reducer::kAvg, m, {1, 2, 5, 4, 5, 6}), 6.4304347826, 1e-6);
}

}  // namespace
}  // namespace det
