#include "det/core/registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "det/core/context.h"
#include "det/util/error.h"
#include "support/test_support.h"
#include "test_trials.h"

namespace det {
namespace {

// A trial that builds nothing: the registry only constructs it.
class EmptyTrial : public Trial {
 public:
  explicit EmptyTrial(TrialContext& ctx) : Trial(ctx) {}
  std::shared_ptr<data::DataLoader> build_training_data_loader() override { return nullptr; }
  std::shared_ptr<data::DataLoader> build_validation_data_loader() override { return nullptr; }
  Metrics train_batch(data::Batch&, int64_t, int64_t) override { return {}; }
};

// A trial with its own settings check, registered through the macro as a user would.
class CheckedRegistryTrial : public EmptyTrial {
 public:
  using EmptyTrial::EmptyTrial;
  static const TrialContext*& last_checked() {
    static const TrialContext* context = nullptr;
    return context;
  }
  static void check_config(const TrialContext& context) {
    last_checked() = &context;
    throw ConfigError("exp.yaml:3:5: data.size: checked_registry_trial refuses it");
  }
};

class UncheckedRegistryTrial : public EmptyTrial {
 public:
  using EmptyTrial::EmptyTrial;
};

DET_REGISTER_TRIAL(CheckedRegistryTrial, "checked_registry_trial");
DET_REGISTER_TRIAL(UncheckedRegistryTrial, "unchecked_registry_trial");

struct RegistryTest : ::testing::Test {
  config::ExperimentConfig cfg = testing::make_config("onevar", "", 4);
  TrialContext ctx{cfg, nlohmann::json::object(), 1, 1, torch::kCPU, nullptr};
};

// Which factory of a local registry was called.
TrialFactory naming(std::string& called, const std::string& name) {
  return [&called, name](TrialContext&) -> std::unique_ptr<Trial> {
    called = name;
    return nullptr;
  };
}

TEST_F(RegistryTest, AnEntrypointResolvesByNameClassOrModuleColonClass) {
  TrialRegistry registry;
  std::string called;
  registry.add("beta", "BetaTrial", naming(called, "beta"));
  registry.add("alpha", "AlphaTrial", naming(called, "alpha"));
  EXPECT_EQ(registry.names(), (std::vector<std::string>{"alpha", "beta"}));
  for (const std::string entrypoint :
       {"alpha", "AlphaTrial", "model_def:AlphaTrial", "pkg:alpha"}) {
    called.clear();
    registry.find(entrypoint)(ctx);
    EXPECT_EQ(called, "alpha") << entrypoint;
  }
  registry.find("model_def:BetaTrial")(ctx);
  EXPECT_EQ(called, "beta");
}

TEST_F(RegistryTest, AnUnknownNameListsTheRegisteredOnesAndSuggestsTheClosest) {
  TrialRegistry registry;
  std::string called;
  registry.add("mnist", "MnistTrial", naming(called, "mnist"));
  registry.add("cifar10", "Cifar10Trial", naming(called, "cifar10"));
  const std::string how = "; register a trial with DET_REGISTER_TRIAL(Class, \"name\")";
  EXPECT_EQ(test::error_of<ConfigError>([&] { registry.find("mnsit", "exp.yaml"); }),
            "exp.yaml: entrypoint: no trial named 'mnsit' is linked in, did you mean 'mnist'? "
            "(registered: cifar10, mnist)" +
                how);
  EXPECT_EQ(test::error_of<ConfigError>([&] { registry.find("model_def:Unrelated"); }),
            "entrypoint: no trial named 'model_def:Unrelated' is linked in (registered: cifar10, "
            "mnist)" +
                how);
  EXPECT_EQ(test::error_of<ConfigError>([&] { registry.find("", "exp.yaml"); }),
            "exp.yaml: entrypoint: missing; set it to a registered trial (cifar10, mnist)");
  EXPECT_EQ(test::error_of<ConfigError>([&] { TrialRegistry().find("mnist"); }),
            "entrypoint: no trial named 'mnist' is linked in (registered: none)" + how);
  EXPECT_TRUE(called.empty());
}

TEST_F(RegistryTest, CheckConfigRunsTheRegisteredCheckWithTheContext) {
  TrialRegistry registry;
  std::string called;
  const TrialContext* seen = nullptr;
  registry.add("checked", "Checked", naming(called, "checked"),
               [&seen](const TrialContext& c) { seen = &c; });
  registry.add("plain", "Plain", naming(called, "plain"));
  registry.check_config("Checked", ctx);
  EXPECT_EQ(seen, &ctx);
  seen = nullptr;
  registry.check_config("plain", ctx);           // no check: nothing runs
  registry.check_config("not_registered", ctx);  // find() reports it, not the check
  EXPECT_EQ(seen, nullptr);
  EXPECT_TRUE(called.empty());  // checking never builds the trial
}

TEST_F(RegistryTest, TheMacroRegistersTheClassAndItsStaticCheck) {
  static_assert(detail::HasCheckConfig<CheckedRegistryTrial>::value);
  static_assert(!detail::HasCheckConfig<UncheckedRegistryTrial>::value);
  auto& registry = TrialRegistry::instance();
  const auto names = registry.names();
  EXPECT_NE(std::find(names.begin(), names.end(), "checked_registry_trial"), names.end());
  auto trial = registry.find("checked_registry_trial")(ctx);
  EXPECT_NE(dynamic_cast<CheckedRegistryTrial*>(trial.get()), nullptr);
  auto by_class = registry.find("model_def:UncheckedRegistryTrial")(ctx);
  EXPECT_NE(dynamic_cast<UncheckedRegistryTrial*>(by_class.get()), nullptr);
  CheckedRegistryTrial::last_checked() = nullptr;
  EXPECT_EQ(
      test::error_of<ConfigError>([&] { registry.check_config("checked_registry_trial", ctx); }),
      "exp.yaml:3:5: data.size: checked_registry_trial refuses it");
  EXPECT_EQ(CheckedRegistryTrial::last_checked(), &ctx);
  EXPECT_EQ(
      test::error_of<ConfigError>([&] { registry.check_config("unchecked_registry_trial", ctx); }),
      "(no error)");
}

}  // namespace
}  // namespace det
