// `#include "det/det.h"` brings the whole public API: a trial written against it alone compiles
// and registers (docs/writing-a-trial.md).
#include "det/det.h"

#include <gtest/gtest.h>

namespace {

class UmbrellaTrial : public det::Trial {
 public:
  explicit UmbrellaTrial(det::TrialContext& ctx) : det::Trial(ctx) {}
  std::shared_ptr<det::data::DataLoader> build_training_data_loader() override { return nullptr; }
  std::shared_ptr<det::data::DataLoader> build_validation_data_loader() override { return nullptr; }
  det::Metrics train_batch(det::data::Batch&, int64_t, int64_t) override { return {}; }
};

}  // namespace

DET_REGISTER_TRIAL(UmbrellaTrial, "umbrella_test_trial");

TEST(Umbrella, TheOneHeaderBringsTheWholeApi) {
  const auto names = det::TrialRegistry::instance().names();
  EXPECT_NE(std::find(names.begin(), names.end(), "umbrella_test_trial"), names.end());
  EXPECT_THROW(throw det::ConfigError("x"), det::Error);
  EXPECT_EQ(det::util::shorten("abc"), "abc");
}
