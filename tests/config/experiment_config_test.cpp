#include "det/config/experiment_config.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>

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
  EXPECT_NE(e.find("exp.yaml:5:14: searcher.max_length.batches: expected an integer from 1 to "
                   "1000000000000, found 'lots'"),
            std::string::npos)
      << e;
  e = error_of(std::string(kMinimal) + "scheduling_unit: 0\n");
  EXPECT_NE(e.find("scheduling_unit: expected an integer from 1 to 1000000, found '0'"),
            std::string::npos)
      << e;
  e = error_of(std::string(kMinimal) + "checkpoint_policy: sometimes\n");
  EXPECT_NE(e.find("checkpoint_policy: expected one of best, all, none, found 'sometimes'"),
            std::string::npos)
      << e;
  e = error_of(std::string(kMinimal) + "min_checkpoint_period: {batches: 1, epochs: 2}\n");
  EXPECT_NE(e.find("min_checkpoint_period: a length takes exactly one of batches, records or "
                   "epochs, found batches, epochs"),
            std::string::npos)
      << e;
  e = error_of(std::string(kMinimal) + "min_checkpoint_period: [1]\n");
  EXPECT_NE(e.find("min_checkpoint_period: expected {batches: n}, {records: n} or {epochs: n}, "
                   "found a list"),
            std::string::npos)
      << e;
}

TEST(ExperimentConfig, MissingRequiredFields) {
  EXPECT_NE(error_of("name: x\n").find("searcher: expected a searcher mapping"), std::string::npos);
  EXPECT_NE(error_of("searcher: {name: single, max_length: 5}\n").find("needs a 'metric'"),
            std::string::npos);
  EXPECT_NE(error_of("searcher: {name: single, metric: m}\n").find("needs 'max_length'"),
            std::string::npos);
  EXPECT_NE(
      error_of("searcher: {name: random, metric: m, max_length: 5}\n").find("needs 'max_trials'"),
      std::string::npos);
  EXPECT_NE(error_of("searcher: {name: singel, metric: m, max_length: 5}\n")
                .find("did you mean 'single'"),
            std::string::npos);
}

TEST(ExperimentConfig, InvalidYamlReportsPosition) {
  std::string e = error_of("name: [unclosed\n");
  EXPECT_NE(e.find("exp.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("invalid YAML"), std::string::npos) << e;
}

TEST(ExperimentConfig, OverridesApplyAndErrorsPointAtThem) {
  auto c = parse_experiment_config(kMinimal, "exp.yaml",
                                   {"searcher.max_length={epochs: 3}", "hyperparameters.lr=0.5",
                                    "optimizations.aggregation_frequency=4"});
  EXPECT_EQ(c.searcher.max_length->unit, Unit::kEpochs);
  EXPECT_EQ(c.searcher.max_length->value, 3);
  EXPECT_EQ(c.hyperparameters.at("lr").val.get<double>(), 0.5);
  EXPECT_EQ(c.optimizations.aggregation_frequency, 4);
  // Setting one unit of a length replaces the unit the file gave.
  c = parse_experiment_config(
      std::string(kMinimal) + "min_validation_period: {epochs: 2}\n", "exp.yaml",
      {"min_validation_period.batches=50", "searcher.max_length.records=6400"});
  EXPECT_EQ(c.min_validation_period, (Length{Unit::kBatches, 50}));
  EXPECT_EQ(c.searcher.max_length, (Length{Unit::kRecords, 6400}));
  std::string e = error_of(kMinimal, {"searcher.max_length.batches=abc"});
  EXPECT_NE(e.find("--config searcher.max_length.batches=abc: searcher.max_length.batches: "
                   "expected an integer"),
            std::string::npos)
      << e;
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
)",
                                   "exp.yaml");
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

// --resume compares the config's hyperparameters with the checkpoint's: every sample of the
// space agrees, and each kind of disagreement is named by its key.
TEST(ExperimentConfig, HyperparameterMismatchNamesTheFirstKeyThatDisagrees) {
  auto c = parse_experiment_config(R"(hyperparameters:
  a: 3
  c: {type: int, minval: 1, maxval: 4}
  e: {type: log, minval: -4, maxval: -1, base: 10}
  f: {type: categorical, vals: [8, 12, 16]}
  g:
    h: {type: double, minval: 0, maxval: 2}
searcher: {name: single, metric: m, max_length: 5}
)",
                                   "exp.yaml");
  const auto& hp = c.hyperparameters;
  for (uint32_t seed = 0; seed < 20; ++seed) {
    util::NpRandom rng(seed);
    EXPECT_FALSE(hyperparameter_mismatch(hp, sample_hyperparameters(hp, rng), "x")) << seed;
  }
  util::NpRandom rng(1);
  const nlohmann::json ok = sample_hyperparameters(hp, rng);
  auto with = [&](const std::string& ptr, const nlohmann::json& v) {
    nlohmann::json j = ok;
    if (v.is_null())
      j.erase(ptr);
    else
      j[nlohmann::json::json_pointer(ptr)] = v;
    return hyperparameter_mismatch(hp, j, "the checkpoint").value_or("(none)");
  };
  EXPECT_EQ(with("/a", 4), "hyperparameters.a is 3 in the config but 4 in the checkpoint");
  EXPECT_EQ(with("/a", 3.0), "(none)");  // a number is its value, however written
  EXPECT_EQ(with("/c", 5),
            "hyperparameters.c is 5 in the checkpoint, outside the config's int hyperparameter");
  EXPECT_EQ(with("/c", 2.5),
            "hyperparameters.c is 2.5 in the checkpoint, outside the config's int hyperparameter");
  EXPECT_EQ(with("/e", 0.5),
            "hyperparameters.e is 0.5 in the checkpoint, outside the config's log hyperparameter");
  EXPECT_EQ(with("/f", 10),
            "hyperparameters.f is 10 in the checkpoint, outside the config's "
            "categorical hyperparameter");
  EXPECT_EQ(with("/g/h", 3.0),
            "hyperparameters.g.h is 3.0 in the checkpoint, outside the "
            "config's double hyperparameter");
  EXPECT_EQ(with("/z", 1), "hyperparameters.z is in the checkpoint but not in the config");
  EXPECT_EQ(with("a", nullptr), "hyperparameters.a is in the config but not in the checkpoint");
}

TEST(ExperimentConfig, HyperparameterMistakes) {
  auto hp = [](const std::string& body) {
    return error_of("hyperparameters:\n  x: " + body +
                    "\nsearcher: {name: single, metric: m, max_length: 5}\n");
  };
  EXPECT_NE(hp("{type: int, minval: 5, maxval: 1}")
                .find("hyperparameters.x.maxval: expected a value greater than minval"),
            std::string::npos);
  EXPECT_NE(hp("{type: log, minval: 1, maxval: 2}").find("needs 'base'"), std::string::npos);
  EXPECT_NE(hp("{type: categorical, vals: []}").find("expected a non-empty list"),
            std::string::npos);
  EXPECT_NE(hp("{type: categorial, vals: [1]}").find("did you mean 'categorical'"),
            std::string::npos);
  EXPECT_NE(hp("{type: int, minval: 1, maxval: 2, cnt: 3}").find("did you mean 'count'"),
            std::string::npos);
}

TEST(ExperimentConfig, ResolvedYamlRoundTrips) {
  auto c = parse_experiment_config(
      std::string(kMinimal) +
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
)",
                                   "exp.yaml");
  util::NpRandom a(42), b(42);
  auto x = search::make_create(c.hyperparameters, a), y = search::make_create(c.hyperparameters, b);
  EXPECT_EQ(x.hparams, y.hparams);
  EXPECT_EQ(x.trial_seed, y.trial_seed);
  EXPECT_EQ(x.request_id, y.request_id);
  EXPECT_LT(x.trial_seed, 1u << 31);
  EXPECT_EQ(x.request_id[14], '4');
}

// ---- hostile configs (issue 10 §7): each one line, file:line, at parse time ----

const char* kSearcher = "searcher: {name: single, metric: m, max_length: 5}\n";

TEST(HostileConfig, AliasThatContainsItselfIsAnError) {
  std::string e = error_of(std::string("data:\n  loop: &a [1, *a]\n") + kSearcher);
  EXPECT_NE(
      e.find(
          "exp.yaml:2:9: data.loop[1]: a YAML alias refers to a list or mapping that contains it"),
      std::string::npos)
      << e;
  e = error_of(std::string("hyperparameters:\n  x: &m {y: *m}\n") + kSearcher);
  EXPECT_NE(e.find("hyperparameters.x.y: a YAML alias refers to"), std::string::npos) << e;
}

TEST(HostileConfig, BillionLaughsStopsAtTheBudget) {
  // 1 KB of text, 10^9 values once the aliases are expanded.
  std::string yaml = "data:\n  a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    yaml += "  a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + prev;
    for (int k = 1; k < 10; ++k) yaml += ", " + prev;
    yaml += "]\n";
  }
  ASSERT_LT(yaml.size(), 1024u);
  std::string e = error_of(yaml + kSearcher);
  EXPECT_NE(e.find("exp.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("the config holds more than 1000000 values once its YAML aliases are expanded"),
            std::string::npos)
      << e;
  // Aliases within the budget are fine and expanded.
  auto c = parse_experiment_config("data:\n  a: &x [1, 2]\n  b: *x\n" + std::string(kSearcher),
                                   "exp.yaml");
  EXPECT_EQ(c.data["b"], nlohmann::json::array({1, 2}));
}

TEST(HostileConfig, DeepNestingIsAnErrorNotACrash) {
  std::string e =
      error_of("data:\n  x: " + std::string(100, '[') + std::string(100, ']') + "\n" + kSearcher);
  EXPECT_NE(e.find("exp.yaml:2:"), std::string::npos) << e;
  EXPECT_NE(e.find("nest deeper than 64 levels"), std::string::npos) << e;
  // Past yaml-cpp's own guard, and far past any stack: still one line.
  e = error_of("data:\n  x: " + std::string(200000, '[') + std::string(200000, ']') + "\n" +
               kSearcher);
  EXPECT_NE(e.find("exp.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("nest deeper than"), std::string::npos) << e;
  e = error_of("data:\n  x: " + std::string(200000, '[') + "\n" + kSearcher);  // unclosed
  EXPECT_NE(e.find("exp.yaml:"), std::string::npos) << e;
  // 60 levels are fine.
  EXPECT_EQ(
      error_of("data:\n  x: " + std::string(60, '[') + std::string(60, ']') + "\n" + kSearcher),
      "(no error)");
}

TEST(HostileConfig, CategoricalWithoutValsNamesTheFile) {
  std::string e = error_of(std::string("hyperparameters:\n  x: {type: categorical}\n") + kSearcher);
  EXPECT_NE(
      e.find("exp.yaml:2:6: hyperparameters.x.vals: expected a non-empty list, found nothing"),
      std::string::npos)
      << e;
}

TEST(HostileConfig, DuplicateKeysAtAnyDepth) {
  std::string e = error_of(std::string("name: a\nname: b\n") + kSearcher);
  EXPECT_NE(e.find("exp.yaml:2:1: name: duplicate key 'name' (first at line 1)"), std::string::npos)
      << e;
  e = error_of(std::string("data:\n  t:\n    - {a: 1, a: 2}\n") + kSearcher);
  EXPECT_NE(e.find("exp.yaml:3:14: data.t[0].a: duplicate key 'a' (first at line 3)"),
            std::string::npos)
      << e;
  e = error_of(std::string("hyperparameters:\n  lr: 0.1\n  lr: 0.2\n") + kSearcher);
  EXPECT_NE(e.find("exp.yaml:3:3: hyperparameters.lr: duplicate key 'lr'"), std::string::npos) << e;
}

TEST(HostileConfig, NonTextKeysAreErrors) {
  std::string e = error_of(std::string("data:\n  ? [a, b]\n  : 1\n") + kSearcher);
  EXPECT_NE(e.find("a key must be plain text, found a list"), std::string::npos) << e;
}

TEST(HostileConfig, ASecondDocumentIsAnError) {
  std::string e = error_of(std::string(kMinimal) + "---\nname: other\n");
  EXPECT_NE(e.find("exp.yaml:11:"), std::string::npos) << e;
  EXPECT_NE(e.find("a second YAML document"), std::string::npos) << e;
  // A leading '---' and a closing '...' are one document.
  EXPECT_EQ(error_of("---\n" + std::string(kMinimal) + "...\n"), "(no error)");
}

TEST(HostileConfig, NumbersOutsideTheirBounds) {
  auto field = [](const std::string& yaml) { return error_of(std::string(kMinimal) + yaml); };
  EXPECT_NE(field("resources: {slots_per_trial: 1000000}\n")
                .find("exp.yaml:10:30: resources.slots_per_trial: expected an integer from 1 to "
                      "4096, found '1000000'"),
            std::string::npos);
  EXPECT_NE(field("resources: {max_slots: 100000000}\n")
                .find("resources.max_slots: expected an integer from 1 to 65536"),
            std::string::npos);
  EXPECT_NE(field("resources: {weight: -1}\n")
                .find("resources.weight: expected a number from 0 to 1000000"),
            std::string::npos);
  EXPECT_NE(field("resources: {priority: 100}\n")
                .find("resources.priority: expected an integer from 1 to 99"),
            std::string::npos);
  EXPECT_NE(field("max_restarts: 99999\n").find("max_restarts: expected an integer from 0 to 1000"),
            std::string::npos);
  EXPECT_NE(field("scheduling_unit: 0\n")
                .find("scheduling_unit: expected an integer from 1 to 1000000, found '0'"),
            std::string::npos);
  EXPECT_NE(field("min_validation_period: {epochs: 10000000000000}\n")
                .find("min_validation_period.epochs: expected an integer from 0 to 1000000000000"),
            std::string::npos);
  EXPECT_NE(
      field("records_per_epoch: -5\n").find("records_per_epoch: expected an integer from 0 to"),
      std::string::npos);
  EXPECT_NE(field("optimizations: {aggregation_frequency: 100000}\n")
                .find("optimizations.aggregation_frequency: expected an integer from 1 to 10000"),
            std::string::npos);
  EXPECT_NE(field("checkpoint_storage: {host_path: /tmp/x, save_trial_latest: 5000}\n")
                .find("checkpoint_storage.save_trial_latest: expected an integer from 0 to 1000"),
            std::string::npos);
  EXPECT_NE(field("reproducibility: {experiment_seed: 4294967296}\n")
                .find("reproducibility.experiment_seed: expected an integer from 0 to 4294967295"),
            std::string::npos);
  EXPECT_NE(field("profiling: {begin_on_batch: -1}\n")
                .find("profiling.begin_on_batch: expected an integer from 0"),
            std::string::npos);
  auto searcher = [](const std::string& body) {
    return error_of("searcher: {metric: m, max_length: 100, " + body + "}\n");
  };
  EXPECT_NE(searcher("name: random, max_trials: 10000000")
                .find("searcher.max_trials: expected an integer from 1 to 100000"),
            std::string::npos);
  EXPECT_NE(searcher("name: random, max_trials: 5, max_concurrent_trials: 50000")
                .find("searcher.max_concurrent_trials: expected an integer from 0 to 10000"),
            std::string::npos);
  EXPECT_NE(searcher("name: adaptive_asha, max_trials: 5, divisor: 1")
                .find("searcher.divisor: expected a number in (1, 100]"),
            std::string::npos);
  EXPECT_NE(searcher("name: adaptive_asha, max_trials: 5, max_rungs: 1000")
                .find("searcher.max_rungs: expected an integer from 1 to 32"),
            std::string::npos);
  EXPECT_NE(searcher("name: async_halving, max_trials: 5, num_rungs: 0")
                .find("searcher.num_rungs: expected an integer from 1 to 32"),
            std::string::npos);
  EXPECT_NE(searcher("name: async_halving, max_trials: 5, num_rungs: 30, divisor: 50")
                .find("searcher.num_rungs: divisor^(rungs - 1) = "),
            std::string::npos);
  EXPECT_NE(searcher("name: adaptive_asha, max_trials: 5, bracket_rungs: [2, 20], divisor: 10")
                .find("searcher.bracket_rungs[1]: divisor^(rungs - 1)"),
            std::string::npos);
  EXPECT_NE(error_of("searcher: {name: single, metric: m, max_length: {batches: 0}}\n")
                .find("searcher.max_length.batches: expected an integer from 1 to 1000000000000"),
            std::string::npos);
  auto hp = [](const std::string& body) {
    return error_of("hyperparameters:\n  x: " + body +
                    "\nsearcher: {name: grid, metric: m, max_length: 5}\n");
  };
  EXPECT_NE(hp("{type: int, minval: 1, maxval: 9, count: 1000000}")
                .find("hyperparameters.x.count: expected an integer from 1 to 100000"),
            std::string::npos);
  EXPECT_NE(hp("{type: int, minval: -9000000000000000000, maxval: 1}")
                .find("hyperparameters.x.minval: expected an integer from"),
            std::string::npos);
  EXPECT_NE(hp("{type: double, minval: -.inf, maxval: 1}")
                .find("hyperparameters.x.minval: expected a number"),
            std::string::npos);
  EXPECT_NE(hp("{type: double, minval: -1e308, maxval: 1e308}")
                .find("maxval - minval overflows a double"),
            std::string::npos);
  EXPECT_NE(hp("{type: log, minval: 1, maxval: 400, base: 10}")
                .find("base^maxval or base^minval overflows"),
            std::string::npos);
  std::string grid = error_of(R"(hyperparameters:
  a: {type: double, minval: 0, maxval: 1, count: 1000}
  b: {type: double, minval: 0, maxval: 1, count: 1000}
searcher: {name: grid, metric: m, max_length: 5}
)");
  EXPECT_NE(
      grid.find("exp.yaml:2:3: hyperparameters: the grid has 1000000 points, more than 100000"),
      std::string::npos)
      << grid;
  // The bounds are generous: Determined's own examples pass.
  EXPECT_EQ(field("resources: {slots_per_trial: 4096, max_slots: 8192, priority: 99, weight: "
                  "2}\nmax_restarts: 0\n"),
            "(no error)");
}

TEST(HostileConfig, StoragePathStaysInsideHostPath) {
  auto storage = [](const std::string& body) {
    return error_of(std::string(kMinimal) +
                    "checkpoint_storage: {type: shared_fs, host_path: /data/runs, " + body + "}\n");
  };
  std::string e = storage("storage_path: ../../..");
  EXPECT_NE(e.find("exp.yaml:10:"), std::string::npos) << e;
  EXPECT_NE(e.find("checkpoint_storage.storage_path: '../../..' leaves host_path '/data/runs'"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("give a sub-directory of host_path"), std::string::npos) << e;
  EXPECT_NE(storage("storage_path: a/../../b").find("leaves host_path"), std::string::npos);
  EXPECT_NE(storage("storage_path: /etc").find("'/etc' is not inside host_path '/data/runs'"),
            std::string::npos);
  EXPECT_NE(storage("storage_path: /data/runs/../x").find("is not inside host_path"),
            std::string::npos);
  // Inside: kept, made canonical; an absolute path inside host_path becomes relative.
  auto c = parse_experiment_config(
      std::string(kMinimal) +
          "checkpoint_storage: {host_path: /data/runs, storage_path: a/./b/../c/}\n",
      "exp.yaml");
  EXPECT_EQ(c.storage().storage_path, "a/c");
  EXPECT_EQ(c.storage().root(), std::filesystem::path("/data/runs/a/c"));
  c = parse_experiment_config(
      std::string(kMinimal) +
          "checkpoint_storage: {host_path: /data/runs, storage_path: /data/runs/x}\n",
      "exp.yaml");
  EXPECT_EQ(c.storage().storage_path, "x");
}

TEST(HostileConfig, LongUserTextIsCutInErrors) {
  std::string huge(200 * 1024, 'z');  // yaml-cpp reads about 1 MB a second: keep the test quick
  for (const std::string& yaml : {std::string(kMinimal) + "checkpoint_policy: " + huge + "\n",
                                  std::string(kMinimal) + "? " + huge + "\n: 1\n",
                                  std::string(kMinimal) + "scheduling_unit: " + huge + "\n"}) {
    std::string e = error_of(yaml);
    EXPECT_LT(e.size(), 1000u) << e.substr(0, 1000);
    EXPECT_NE(e.find("(204800 bytes)"), std::string::npos) << e.substr(0, 1000);
  }
  std::string e = error_of(kMinimal, {"searcher.max_length.batches=" + huge});
  EXPECT_LT(e.size(), 1000u) << e.substr(0, 1000);
}

// Loud, not silent: what det accepts but does not implement is an error, or a notice where it
// has no effect outside a Determined cluster.
TEST(ExperimentConfig, SettingsDetDoesNotImplementAreErrorsOrNotices) {
  auto error_of = [](const std::string& extra) {
    try {
      parse_experiment_config(std::string(kMinimal) + extra, "exp.yaml");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  // Mixed precision is implemented (docs/gpu.md) but for Apex's O3, which has no native
  // equivalent.
  EXPECT_NE(error_of("optimizations: {mixed_precision: O3}\n")
                .find("optimizations.mixed_precision: not implemented"),
            std::string::npos);
  for (const char* ok : {"O0", "O1", "O2", "fp16", "bf16"})
    EXPECT_EQ(error_of(std::string("optimizations: {mixed_precision: ") + ok + "}\n"), "") << ok;
  EXPECT_NE(error_of("optimizations: {gradient_compression: true}\n").find("not implemented"),
            std::string::npos);
  EXPECT_NE(error_of("profiling: {enabled: true}\n").find("det has no profiler"),
            std::string::npos);
  EXPECT_NE(error_of("checkpoint_storage: {host_path: /tmp, save_experiment_best: 2}\n")
                .find("save_experiment_best"),
            std::string::npos);
  EXPECT_EQ(error_of("checkpoint_storage: {host_path: /tmp, save_experiment_best: 0}\n"), "");
  EXPECT_NE(error_of("optimizations: {mixed_precision: O3}\n").rfind("exp.yaml:", 0),
            std::string::npos);

  auto c = parse_experiment_config(
      std::string(kMinimal) +
          "records_per_epoch: 50000\nresources: {slots_per_trial: 1, priority: 40}\n"
          "environment: {image: x}\noptimizations: {average_training_metrics: true}\n",
      "exp.yaml");
  ASSERT_EQ(c.notices.size(), 3u);
  EXPECT_NE(c.notices[0].find("records_per_epoch: ignored, as by Determined's PyTorchTrial"),
            std::string::npos)
      << c.notices[0];
  EXPECT_NE(c.notices[1].find("resources.priority"), std::string::npos) << c.notices[1];
  EXPECT_NE(c.notices[2].find("environment"), std::string::npos) << c.notices[2];
  EXPECT_TRUE(parse_experiment_config(kMinimal, "exp.yaml").notices.empty());
}

// Determined's tensorboard_storage: a shared_fs directory for the TensorBoard runs; what det does
// not do with it is an error.
TEST(ExperimentConfig, TensorboardStorageIsADirectoryForTheTensorBoardRuns) {
  auto c =
      parse_experiment_config(std::string(kMinimal) +
                                  "tensorboard_storage: {type: shared_fs, host_path: /data/tb, "
                                  "storage_path: exp}\n",
                              "exp.yaml");
  ASSERT_TRUE(c.tensorboard_storage.has_value());
  EXPECT_EQ(c.tensorboard_storage->root(), "/data/tb/exp");
  EXPECT_EQ(to_json(c)["tensorboard_storage"]["host_path"], "/data/tb");
  EXPECT_FALSE(parse_experiment_config(kMinimal, "exp.yaml").tensorboard_storage.has_value());
  // The resolved config round-trips.
  auto again = parse_experiment_config(to_json(c).dump(), "config.yaml");
  EXPECT_EQ(again.tensorboard_storage->root(), "/data/tb/exp");
  auto error_of_extra = [](const std::string& extra) {
    return error_of(std::string(kMinimal) + extra);
  };
  EXPECT_NE(error_of_extra("tensorboard_storage: {type: s3, bucket: b}\n")
                .find("tensorboard_storage.type: det writes TensorBoard files to a shared_fs"),
            std::string::npos)
      << error_of_extra("tensorboard_storage: {type: s3, bucket: b}\n");
  EXPECT_NE(error_of_extra("tensorboard_storage: {host_path: /x, save_trial_best: 1}\n")
                .find("keeps no checkpoints; remove 'save_trial_best'"),
            std::string::npos);
  EXPECT_NE(error_of_extra("tensorboard_storage: {host_path: /x, storage_path: ../y}\n")
                .find("leaves host_path"),
            std::string::npos);
}

}  // namespace
}  // namespace det::config

namespace det::config {
namespace {

TEST(SlurmSection, SelectsSlurmWithDeterminedsKeys) {
  EXPECT_FALSE(parse_experiment_config(kMinimal, "exp.yaml").slurm);
  auto c = parse_experiment_config(std::string(kMinimal) + R"(slurm:
  sbatch_args: [--partition=debug, "--time=30", -A proj]
  slots_per_node: 4
  gpu_type: a100
)",
                                   "exp.yaml");
  ASSERT_TRUE(c.slurm);
  EXPECT_EQ(c.slurm->sbatch_args,
            (std::vector<std::string>{"--partition=debug", "--time=30", "-A proj"}));
  EXPECT_EQ(c.slurm->slots_per_node, 4);
  EXPECT_EQ(c.slurm->gpu_type, "a100");
  // The resolved config keeps it (a run directory's config.yaml runs on Slurm again).
  auto again = parse_experiment_config(to_yaml(to_json(c)), "config.yaml");
  ASSERT_TRUE(again.slurm);
  EXPECT_EQ(again.slurm->sbatch_args, c.slurm->sbatch_args);
  EXPECT_EQ(again.slurm->slots_per_node, 4);
  // An empty section selects Slurm with no options.
  auto empty = parse_experiment_config(std::string(kMinimal) + "slurm: {}\n", "exp.yaml");
  ASSERT_TRUE(empty.slurm);
  EXPECT_TRUE(empty.slurm->sbatch_args.empty());
  // From the command line too.
  auto over = parse_experiment_config(kMinimal, "exp.yaml", {"slurm.gpu_type=h100"});
  ASSERT_TRUE(over.slurm);
  EXPECT_EQ(over.slurm->gpu_type, "h100");
}

TEST(SlurmSection, RefusesWhatDetSetsAndWhatIsNotAnOption) {
  auto with = [](const std::string& section) {
    return error_of(std::string(kMinimal) + "slurm:\n" + section);
  };
  std::string e = with("  sbatch_args: [--ntasks=8]\n");
  EXPECT_NE(e.find("exp.yaml:"), std::string::npos) << e;
  EXPECT_NE(e.find("is set by det"), std::string::npos) << e;
  EXPECT_NE(with("  sbatch_args: [-n4]\n").find("is set by det"), std::string::npos);
  EXPECT_NE(with("  sbatch_args: [--job-name=x]\n").find("is set by det"), std::string::npos);
  EXPECT_NE(with("  sbatch_args: [--output=/tmp/x]\n").find("is set by det"), std::string::npos);
  EXPECT_NE(with("  sbatch_args: [--requeue]\n").find("is set by det"), std::string::npos);
  e = with("  sbatch_args: [partition=gpu]\n");
  EXPECT_NE(e.find("starting with '-'"), std::string::npos) << e;
  e = with("  sbatch_args: --partition=gpu\n");
  EXPECT_NE(e.find("a list of sbatch options"), std::string::npos) << e;
  e = with("  gpu_type: \"a100; rm -rf /\"\n");
  EXPECT_NE(e.find("a GPU type name"), std::string::npos) << e;
  e = with("  slots_per_node: 0\n");
  EXPECT_NE(e.find("slots_per_node"), std::string::npos) << e;
  e = with("  partition: gpu\n");
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
}

}  // namespace
}  // namespace det::config

namespace det::config {
namespace {

// Issue 23 item 8: each hyperparameter was looked up again by key (a yaml-cpp lookup walks the
// mapping): 200k keys, a 3 MB file, took over 300 s. Linear now: a bound on the test's time, far
// above what it takes (about a second).
TEST(HostileConfig, ManyHyperparametersLoadInLinearTime) {
  std::string yaml =
      "name: t\nentrypoint: mnist\nsearcher: {name: single, metric: m, "
      "max_length: {batches: 1}}\nhyperparameters:\n";
  for (int i = 0; i < 200000; ++i)
    yaml += "  h" + std::to_string(i) + ": " + std::to_string(i) + "\n";
  const auto start = std::chrono::steady_clock::now();
  const ExperimentConfig c = parse_experiment_config(yaml, "many.yaml");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(c.hyperparameters.size(), 200000u);
  EXPECT_LT(seconds, 60) << "200000 hyperparameters took " << seconds << " s";
}

// Issue 23 "also seen": what a run refuses, the config refuses (validate-config and det-run share
// it): global_batch_size that is not a positive integer, non-finite numbers, max_slots 0.
TEST(HostileConfig, HarnessHyperparametersAndSlotsAreCheckedAtLoad) {
  const std::string base =
      "name: t\nentrypoint: mnist\nsearcher: {name: single, metric: m, "
      "max_length: {batches: 1}}\n";
  for (const std::string v :
       {"true", "{a: 1}", "1e130", "!!binary aGVsbG8=", "0", "-3", "2.5", "[1, 2]", "'64'"}) {
    const std::string e = error_of(base + "hyperparameters:\n  global_batch_size: " + v + "\n");
    EXPECT_NE(e.find("hyperparameters.global_batch_size: expected a positive integer"),
              std::string::npos)
        << v << ": " << e;
  }
  std::string e = error_of(base +
                           "hyperparameters:\n  global_batch_size: {type: categorical, "
                           "vals: [32, 64.5]}\n");
  EXPECT_NE(e.find("global_batch_size.vals: expected a positive integer"), std::string::npos) << e;
  e = error_of(base +
               "hyperparameters:\n  global_batch_size: {type: log, minval: 1, maxval: 3, "
               "base: 2}\n");
  EXPECT_NE(e.find("global_batch_size.type: expected const, int or categorical"), std::string::npos)
      << e;
  EXPECT_EQ(error_of(base + "hyperparameters:\n  global_batch_size: {type: int, minval: 8, "
                            "maxval: 64}\n"),
            "(no error)");
  for (const std::string v :
       {".nan", ".inf", "-.inf", "[1, .nan]", "{type: categorical, vals: [.nan]}"}) {
    e = error_of(base + "hyperparameters:\n  lr: " + v + "\n");
    EXPECT_NE(e.find("expected a finite number"), std::string::npos) << v << ": " << e;
  }
  e = error_of(base + "resources: {max_slots: 0}\n");
  EXPECT_NE(e.find("resources.max_slots: expected an integer from 1 to 65536"), std::string::npos)
      << e;
  e = error_of(base + "resources: {max_slots: 2, slots_per_trial: 4}\n");
  EXPECT_NE(e.find("max_slots 2 is below slots_per_trial 4"), std::string::npos) << e;
}

}  // namespace
}  // namespace det::config

namespace det::config {
namespace {

// Found by scripts/fuzz.sh (round three): yaml-cpp 0.7's LoadAll loops forever, its memory
// growing, on a stray ',' outside a list or mapping (jbeder/yaml-cpp#1040). One line instead.
TEST(HostileConfig, AStrayCommaIsAnErrorNotAHang) {
  ::alarm(30);  // a hang kills the test in 30 s
  for (const std::string text : {",", " ,\n", ",e: x\n", "a: 1\n,\n"}) {
    const std::string e = error_of(text);
    EXPECT_NE(e.find("invalid YAML"), std::string::npos) << text << ": " << e;
    EXPECT_NE(e.find("exp.yaml:"), std::string::npos) << e;
  }
  EXPECT_NE(error_of("a: 1\n---\nb: 2\n").find("a second YAML document (after '---')"),
            std::string::npos);
  ::alarm(0);
}

// mixed_precision is read once, into its enum, by the one function that names the values: the
// values the config refuses (O3, and fp32, which is no value of Determined's) are no precision.
TEST(ExperimentConfig, MixedPrecisionIsStoredAsItsPrecision) {
  const std::string base = std::string(kMinimal) + "optimizations: {mixed_precision: ";
  auto precision_of = [&](const std::string& v) {
    return parse_experiment_config(base + v + "}\n", "exp.yaml").optimizations.mixed_precision;
  };
  EXPECT_EQ(parse_experiment_config(kMinimal, "exp.yaml").optimizations.mixed_precision,
            Precision::kFloat32);
  EXPECT_EQ(precision_of("O0"), Precision::kFloat32);
  for (const char* fp16 : {"O1", "O2", "fp16"}) EXPECT_EQ(precision_of(fp16), Precision::kFloat16);
  EXPECT_EQ(precision_of("bf16"), Precision::kBFloat16);
  EXPECT_THROW(parse_precision("fp32"), ConfigError);
  EXPECT_THROW(parse_precision("O3"), ConfigError);
  EXPECT_NE(error_of(base + "fp32}\n").find("expected one of O0, O1, O2, O3, fp16, bf16"),
            std::string::npos);
  // to_json writes the precision's name, which reads back as the same precision.
  const auto c = parse_experiment_config(base + "O2}\n", "exp.yaml");
  EXPECT_EQ(to_json(c)["optimizations"]["mixed_precision"], "fp16");
  EXPECT_EQ(parse_experiment_config(to_json(c).dump(), "c.yaml").optimizations.mixed_precision,
            Precision::kFloat16);
}

}  // namespace
}  // namespace det::config
