#include "det/config/experiment_config.h"

#include <gtest/gtest.h>

#include "det/search/create.h"
#include "det/util/error.h"

namespace det::config {
namespace {

const char* kMinimal = R"(name: t
hyperparameters:
  lr: 0.1
searcher:
  name: single
  metric: validation_loss
  max_length:
    batches: 100
entrypoint: mnist
)";

std::string error_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_experiment_config(yaml, "exp.yaml", overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ExperimentConfig, DefaultsAreDeterminedS) {
  auto c = parse_experiment_config(kMinimal, "exp.yaml");
  EXPECT_EQ(c.name, "t");
  EXPECT_EQ(c.searcher.name, "single");
  EXPECT_TRUE(c.searcher.smaller_is_better);
  EXPECT_EQ(c.searcher.max_length->unit, Unit::kBatches);
  EXPECT_EQ(c.searcher.max_length->value, 100);
  EXPECT_EQ(c.scheduling_unit, 100);
  EXPECT_EQ(c.min_validation_period.value, 0);
  EXPECT_EQ(c.min_checkpoint_period.value, 0);
  EXPECT_EQ(c.checkpoint_policy, "best");
  EXPECT_EQ(c.max_restarts, 5);
  EXPECT_EQ(c.resources.slots_per_trial, 1);
  EXPECT_EQ(c.optimizations.aggregation_frequency, 1);
  EXPECT_TRUE(c.optimizations.average_aggregated_gradients);
  EXPECT_FALSE(c.perform_initial_validation);
  EXPECT_FALSE(c.experiment_seed.has_value());
  auto st = c.storage();
  EXPECT_EQ(st.save_experiment_best, 0);
  EXPECT_EQ(st.save_trial_best, 1);
  EXPECT_EQ(st.save_trial_latest, 1);
}

TEST(ExperimentConfig, UnknownKeyNamesFileLineColumnAndSuggests) {
  std::string e = error_of(std::string(kMinimal) + "min_validaton_period: {batches: 5}\n");
  EXPECT_NE(e.find("exp.yaml:10:1: min_validaton_period: unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'min_validation_period'?"), std::string::npos) << e;
}

TEST(ExperimentConfig, NestedUnknownKey) {
  std::string e = error_of(R"(searcher:
  name: single
  metric: loss
  max_lenght: {batches: 3}
)");
  EXPECT_NE(e.find("exp.yaml:4:3: searcher.max_lenght: unknown key"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'max_length'?"), std::string::npos) << e;
}

TEST(ExperimentConfig, WrongTypeSaysExpectedAndFound) {
  std::string e = error_of(R"(searcher:
  name: single
  metric: loss
  max_length:
    batches: lots
)");
  EXPECT_NE(e.find("exp.yaml:5:14: searcher.max_length.batches: expected an integer, found 'lots'"), std::string::npos) << e;
  e = error_of(std::string(kMinimal) + "scheduling_unit: 0\n");
  EXPECT_NE(e.find("scheduling_unit: expected an integer >= 1, found '0'"), std::string::npos) << e;
  e = error_of(std::string(kMinimal) + "checkpoint_policy: sometimes\n");
  EXPECT_NE(e.find("checkpoint_policy: expected one of best, all, none, found 'sometimes'"), std::string::npos) << e;
  e = error_of(std::string(kMinimal) + "min_checkpoint_period: {batches: 1, epochs: 2}\n");
  EXPECT_NE(e.find("min_checkpoint_period: a length takes exactly one of batches, records or epochs, found batches, epochs"),
            std::string::npos) << e;
  e = error_of(std::string(kMinimal) + "min_checkpoint_period: [1]\n");
  EXPECT_NE(e.find("min_checkpoint_period: expected {batches: n}, {records: n} or {epochs: n}, found a list"), std::string::npos) << e;
}

TEST(ExperimentConfig, MissingRequiredFields) {
  EXPECT_NE(error_of("name: x\n").find("searcher: expected a searcher mapping"), std::string::npos);
  EXPECT_NE(error_of("searcher: {name: single, max_length: 5}\n").find("needs a 'metric'"), std::string::npos);
  EXPECT_NE(error_of("searcher: {name: single, metric: m}\n").find("needs 'max_length'"), std::string::npos);
  EXPECT_NE(error_of("searcher: {name: random, metric: m, max_length: 5}\n").find("needs 'max_trials'"), std::string::npos);
  EXPECT_NE(error_of("searcher: {name: singel, metric: m, max_length: 5}\n").find("did you mean 'single'"), std::string::npos);
}

TEST(ExperimentConfig, InvalidYamlReportsPosition) {
  std::string e = error_of("name: [unclosed\n");
  EXPECT_NE(e.find("exp.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid YAML"), std::string::npos) << e;
}

TEST(ExperimentConfig, OverridesApplyAndErrorsPointAtThem) {
  auto c = parse_experiment_config(kMinimal, "exp.yaml",
                                   {"searcher.max_length={epochs: 3}", "hyperparameters.lr=0.5", "optimizations.aggregation_frequency=4"});
  EXPECT_EQ(c.searcher.max_length->unit, Unit::kEpochs);
  EXPECT_EQ(c.searcher.max_length->value, 3);
  EXPECT_EQ(c.hyperparameters.at("lr").val.get<double>(), 0.5);
  EXPECT_EQ(c.optimizations.aggregation_frequency, 4);
  // Setting one unit of a length replaces the unit the file gave.
  c = parse_experiment_config(std::string(kMinimal) + "min_validation_period: {epochs: 2}\n", "exp.yaml",
                              {"min_validation_period.batches=50", "searcher.max_length.records=6400"});
  EXPECT_EQ(c.min_validation_period, (Length{Unit::kBatches, 50}));
  EXPECT_EQ(c.searcher.max_length, (Length{Unit::kRecords, 6400}));
  std::string e = error_of(kMinimal, {"searcher.max_length.batches=abc"});
  EXPECT_NE(e.find("--config searcher.max_length.batches=abc: searcher.max_length.batches: expected an integer"), std::string::npos) << e;
  e = error_of(kMinimal, {"novalue"});
  EXPECT_NE(e.find("expected key.path=value"), std::string::npos) << e;
  e = error_of(kMinimal, {"name.sub=1"});
  EXPECT_NE(e.find("'name' is not a mapping"), std::string::npos) << e;
}

TEST(ExperimentConfig, EveryHyperparameterType) {
  auto c = parse_experiment_config(R"(hyperparameters:
  a: 3
  b: {type: const, val: hello}
  c: {type: int, minval: 1, maxval: 4, count: 2}
  d: {type: double, minval: 0.1, maxval: 0.5}
  e: {type: log, minval: -4, maxval: -1, base: 10}
  f: {type: categorical, vals: [8, 12, 16]}
  g:
    h: {type: int, minval: 0, maxval: 2}
    i: [1, 2]
searcher: {name: single, metric: m, max_length: 5}
)", "exp.yaml");
  using T = Hyperparameter::Type;
  const auto& hp = c.hyperparameters;
  EXPECT_EQ(hp.at("a").type, T::kConst);
  EXPECT_EQ(hp.at("b").val, "hello");
  EXPECT_EQ(hp.at("c").type, T::kInt);
  EXPECT_EQ(*hp.at("c").count, 2);
  EXPECT_EQ(hp.at("e").type, T::kLog);
  EXPECT_EQ(hp.at("f").vals.size(), 3u);
  EXPECT_EQ(hp.at("g").type, T::kNested);
  EXPECT_EQ(hp.at("g").nested.at("h").type, T::kInt);
  EXPECT_FALSE(is_constant(hp));

  util::NpRandom r1(7), r2(7);
  auto s1 = sample_hyperparameters(hp, r1), s2 = sample_hyperparameters(hp, r2);
  EXPECT_EQ(s1, s2);
  EXPECT_EQ(s1["a"], 3);
  EXPECT_EQ(s1["g"]["i"], nlohmann::json::array({1, 2}));
  EXPECT_GE(s1["c"].get<int>(), 1);
  EXPECT_LE(s1["c"].get<int>(), 4);
  EXPECT_GE(s1["e"].get<double>(), 1e-4);
  EXPECT_LE(s1["e"].get<double>(), 1e-1);
}

TEST(ExperimentConfig, HyperparameterMistakes) {
  auto hp = [](const std::string& body) {
    return error_of("hyperparameters:\n  x: " + body + "\nsearcher: {name: single, metric: m, max_length: 5}\n");
  };
  EXPECT_NE(hp("{type: int, minval: 5, maxval: 1}").find("hyperparameters.x.maxval: expected a value greater than minval"), std::string::npos);
  EXPECT_NE(hp("{type: log, minval: 1, maxval: 2}").find("needs 'base'"), std::string::npos);
  EXPECT_NE(hp("{type: categorical, vals: []}").find("expected a non-empty list"), std::string::npos);
  EXPECT_NE(hp("{type: categorial, vals: [1]}").find("did you mean 'categorical'"), std::string::npos);
  EXPECT_NE(hp("{type: int, minval: 1, maxval: 2, cnt: 3}").find("did you mean 'count'"), std::string::npos);
}

TEST(ExperimentConfig, ResolvedYamlRoundTrips) {
  auto c = parse_experiment_config(std::string(kMinimal) +
                                       "checkpoint_storage: {type: shared_fs, host_path: /tmp/x, save_trial_best: 3}\n"
                                       "reproducibility: {experiment_seed: 42}\nlabels: [a, '1']\n",
                                   "exp.yaml");
  auto j = to_json(c);
  auto c2 = parse_experiment_config(to_yaml(j), "resolved.yaml");
  EXPECT_EQ(to_json(c2), j);
  EXPECT_EQ(c2.storage().save_trial_best, 3);
  EXPECT_EQ(*c2.experiment_seed, 42u);
  EXPECT_EQ(c2.labels[1], "1");
}

TEST(ExperimentConfig, LengthsToBatches) {
  EXPECT_EQ(to_batches({Unit::kBatches, 7}, 64, 100), 7);
  EXPECT_EQ(to_batches({Unit::kRecords, 640}, 64, 100), 10);
  EXPECT_EQ(to_batches({Unit::kRecords, 10}, 64, 100), 1);
  EXPECT_EQ(to_batches({Unit::kEpochs, 2}, 64, 938), 1876);
}

TEST(ExperimentConfig, MissingFileIsAConfigError) {
  EXPECT_THROW(load_experiment_config("/nonexistent/x.yaml"), ConfigError);
}

TEST(SearchCreate, SameSeedSameTrial) {
  auto c = parse_experiment_config(R"(hyperparameters:
  lr: {type: double, minval: 0.0001, maxval: 1.0}
  n: {type: int, minval: 8, maxval: 64}
searcher: {name: single, metric: m, max_length: 5}
)", "exp.yaml");
  util::NpRandom a(42), b(42);
  auto x = search::make_create(c.hyperparameters, a), y = search::make_create(c.hyperparameters, b);
  EXPECT_EQ(x.hparams, y.hparams);
  EXPECT_EQ(x.trial_seed, y.trial_seed);
  EXPECT_EQ(x.request_id, y.request_id);
  EXPECT_LT(x.trial_seed, 1u << 31);
  EXPECT_EQ(x.request_id[14], '4');
}

}  // namespace
}  // namespace det::config
