#include "det/core/context.h"

#include <gtest/gtest.h>

#include "det/util/error.h"
#include "test_trials.h"

namespace det {
namespace {
using testing::make_config;

TEST(Context, HparamErrorsNameKeyAndFile) {
  auto cfg = make_config("onevar", "", 4);
  TrialContext ctx(cfg, {{"lr", 0.1}, {"name", "x"}, {"model", {{"depth", 3}}}}, 1, 1, torch::kCPU, nullptr);
  EXPECT_EQ(ctx.get_hparam<double>("lr"), 0.1);
  EXPECT_EQ(ctx.get_hparam<int>("model.depth"), 3);
  EXPECT_EQ(ctx.get_hparam<int>("missing", 7), 7);
  try {
    ctx.get_hparam<double>("lrr");
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    std::string m = e.what();
    EXPECT_NE(m.find("'lrr' is not defined in test.yaml"), std::string::npos) << m;
    EXPECT_NE(m.find("did you mean 'lr'"), std::string::npos) << m;
  }
  try {
    ctx.get_hparam<double>("name");
    ADD_FAILURE();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("'name' in test.yaml is \"x\", expected a number"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ctx.get_hparam<int>("lr"), ConfigError);
}

}  // namespace
}  // namespace det
