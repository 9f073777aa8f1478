#include "det/config/args.h"

#include <gtest/gtest.h>

#include "det/config/experiment_config.h"
#include "det/util/error.h"
#include "support/test_support.h"

namespace det::config {
namespace {

using nlohmann::json;

Args args(const std::string& text, const std::string& path = "hyperparameters.optimizer") {
  return Args(json::parse(text), path);
}

TEST(Args, ReadsEveryType) {
  Args a = args(R"({"b": true, "i": 3, "big": 5000000000, "f": 2.0, "d": 0.25, "s": "adamw",
                    "vi": [1, 2], "vd": [0.5, 1], "vs": ["a", "b"], "m": {"x": 1}, "j": [1, "x"]})");
  EXPECT_TRUE(a.get<bool>("b"));
  EXPECT_EQ(a.get<int>("i"), 3);
  EXPECT_EQ(a.get<int64_t>("big"), 5000000000);
  EXPECT_EQ(a.get<int64_t>("f"), 2);  // an integral float is an integer
  EXPECT_EQ(a.get<uint32_t>("i"), 3u);
  EXPECT_DOUBLE_EQ(a.get<double>("d"), 0.25);
  EXPECT_DOUBLE_EQ(a.get<double>("i"), 3.0);  // an integer is a number
  EXPECT_FLOAT_EQ(a.get<float>("d"), 0.25f);
  EXPECT_EQ(a.get<std::string>("s"), "adamw");
  EXPECT_EQ(a.get<std::vector<int64_t>>("vi"), (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(a.get<std::vector<double>>("vd"), (std::vector<double>{0.5, 1.0}));
  EXPECT_EQ(a.get<std::vector<std::string>>("vs"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(a.get<Args>("m").get<int>("x"), 1);
  EXPECT_EQ(a.get<Args>("m").path(), "hyperparameters.optimizer.m");
  EXPECT_EQ(a.get<json>("j"), json::parse(R"([1, "x"])"));
  EXPECT_EQ(a.keys().size(), 11u);
  EXPECT_EQ(a.size(), 11u);
  EXPECT_TRUE(a.is_object());
  EXPECT_TRUE(a["vi"].is_array());
  EXPECT_EQ(a["vi"][1].as<int>(), 2);
  EXPECT_EQ(a["vi"][1].path(), "hyperparameters.optimizer.vi[1]");
}

TEST(Args, FallbackOnlyWhenMissingOrNull) {
  Args a = args(R"({"lr": 0.1, "eps": null})");
  EXPECT_DOUBLE_EQ(a.get<double>("lr", 1.0), 0.1);
  EXPECT_DOUBLE_EQ(a.get<double>("momentum", 0.9), 0.9);
  EXPECT_DOUBLE_EQ(a.get<double>("eps", 1e-8), 1e-8);  // null is missing
  EXPECT_TRUE(a.has("lr"));
  EXPECT_FALSE(a.has("eps"));
  EXPECT_FALSE(a.has("momentum"));
  // A present value of the wrong type is an error even with a fallback.
  EXPECT_CONTAINS(
      test::error_of<ConfigError>([&] { args(R"({"lr": "fast"})").get<double>("lr", 0.1); }),
      "hyperparameters.optimizer.lr: expected a number, found 'fast'");
}

TEST(Args, MissingAndMistypedValuesNameThePathAndWhatWasFound) {
  Args a =
      args(R"({"lr": "fast", "n": 1.5, "flag": 1, "count": true, "name": 3, "list": 4, "m": [1],
                    "big": 3000000000, "neg": -1})");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<double>("momentum"); }),
            "hyperparameters.optimizer.momentum: expected a number, found nothing");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<double>("lr"); }),
            "hyperparameters.optimizer.lr: expected a number, found 'fast'");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<int64_t>("n"); }),
            "hyperparameters.optimizer.n: expected an integer, found 1.5");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<bool>("flag"); }),
            "hyperparameters.optimizer.flag: expected true or false, found 1");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<double>("count"); }),
            "hyperparameters.optimizer.count: expected a number, found true");
  EXPECT_CONTAINS(test::error_of<ConfigError>([&] { a.get<int>("count"); }),
                  "count: expected an integer from -2147483648 to 2147483647, found true");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<std::string>("name"); }),
            "hyperparameters.optimizer.name: expected a string, found 3");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<std::vector<double>>("list"); }),
            "hyperparameters.optimizer.list: expected a list, found 4");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<std::vector<std::string>>("m"); }),
            "hyperparameters.optimizer.m[0]: expected a string, found 1");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<Args>("m"); }),
            "hyperparameters.optimizer.m: expected a mapping, found a list");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<json>("absent"); }),
            "hyperparameters.optimizer.absent: expected a value, found nothing");
  // Beyond the type: int32 and unsigned.
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<int>("big"); }),
            "hyperparameters.optimizer.big: expected an integer from -2147483648 to 2147483647, "
            "found 3000000000");
  EXPECT_CONTAINS(test::error_of<ConfigError>([&] { a.get<uint32_t>("neg"); }),
                  "expected an integer from 0 to 4294967295, found -1");
}

TEST(Args, Ranges) {
  Args a = args(R"({"workers": 100000, "p": 1.5, "lr": 0, "ok": 8, "fill": [0, 300]})", "data");
  EXPECT_EQ(a.get<int64_t>("ok", Range{0, 256}), 8);
  EXPECT_EQ(a.get<int64_t>("missing", 2, Range{0, 256}), 2);
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              a.get<int64_t>("workers", 2, Range{0, 256});
            }),
            "data.workers: expected an integer from 0 to 256, found 100000");
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              a.get<double>("p", Range{0, 1});
            }),
            "data.p: expected a number from 0 to 1, found 1.5");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<double>("lr", Range::greater_than(0)); }),
            "data.lr: expected a number > 0, found 0");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<int>("p", Range::at_least(1)); }),
            "data.p: expected an integer >= 1, found 1.5");
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              a.get<std::vector<double>>("fill", Range{0, 255});
            }),
            "data.fill[1]: expected a number from 0 to 255, found 300");
  Range half_open{0, 1, /*min_excluded=*/true};
  EXPECT_EQ(half_open.str(), "in (0, 1]");
  EXPECT_FALSE(half_open.contains(0));
  EXPECT_TRUE(half_open.contains(1));
  EXPECT_EQ(Range::at_most(0.5).str(), "<= 0.5");
  EXPECT_FALSE(Range{}.contains(std::nan("")));
  EXPECT_EQ(Range{}.str(), "");
}

TEST(Args, UnknownKeysSuggestTheClosest) {
  Args a = args(R"({"lr": 0.1, "momentun": 0.9})");
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              a.check_keys({"lr", "momentum", "weight_decay"});
            }),
            "hyperparameters.optimizer.momentun: unknown key 'momentun', did you mean 'momentum'? "
            "(allowed here: lr, "
            "momentum, weight_decay)");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.check_keys({"lr", "momentun"}); }), "(no error)");
  EXPECT_EQ(test::error_of<ConfigError>([&] { Args(json(), "x").check_keys({"a"}); }),
            "(no error)");  // missing: nothing to check
}

TEST(Args, Enums) {
  Args a = args(R"({"name": "adamm", "n": 3, "ok": "sgd"})");
  EXPECT_EQ(a.get_enum("ok", {"sgd", "adamw"}), "sgd");
  EXPECT_EQ(a.get_enum("absent", "sgd", {"sgd", "adamw"}), "sgd");
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              a.get_enum("name", {"sgd", "adamw"});
            }),
            "hyperparameters.optimizer.name: expected one of sgd, adamw, found 'adamm', did you "
            "mean 'adamw'?");
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              a.get_enum("n", {"sgd", "adamw"});
            }),
            "hyperparameters.optimizer.n: expected one of sgd, adamw, found 3");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get_enum("absent", {"sgd"}); }),
            "hyperparameters.optimizer.absent: expected one of sgd, found nothing");
}

TEST(Args, ChildIsAnEmptyMappingWhenMissing) {
  Args a = args(R"({"transforms": {"train": [1]}, "bad": 3})", "data");
  EXPECT_TRUE(a.child("absent").is_object());
  EXPECT_EQ(a.child("absent").size(), 0u);
  EXPECT_EQ(a.child("absent").path(), "data.absent");
  EXPECT_TRUE(a.child("transforms")["train"].is_array());
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.child("bad"); }),
            "data.bad: expected a mapping, found 3");
}

TEST(Args, KeysOfAScalarAreAMistypedSection) {
  Args a = args("0.1");  // e.g. `optimizer: 0.1` where a mapping belongs
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.get<double>("lr"); }),
            "hyperparameters.optimizer: expected a mapping, found 0.1");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.has("lr"); }),
            "hyperparameters.optimizer: expected a mapping, found 0.1");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a.check_keys({"lr"}); }),
            "hyperparameters.optimizer: expected a mapping, found 0.1");
  EXPECT_EQ(test::error_of<ConfigError>([&] { a[0]; }),
            "hyperparameters.optimizer: expected a list, found 0.1");
  EXPECT_TRUE(Args(nullptr, "x")[3].is_null());  // missing: nothing inside
}

TEST(Args, ViewsOutliveTheirSource) {
  Args inner = [] {
    Args outer(json::parse(R"({"a": {"b": [10, 20]}})"), "data");
    return outer["a"]["b"];
  }();
  EXPECT_EQ(inner.as<std::vector<int>>(), (std::vector<int>{10, 20}));
  EXPECT_EQ(inner.path(), "data.a.b");
}

TEST(Args, LongUserTextIsCut) {
  std::string huge(1 << 20, 'x');
  Args a(json{{"name", huge}, {huge, 1}}, "data");
  std::string e = test::error_of<ConfigError>([&] { a.get<double>("name"); });
  EXPECT_LT(e.size(), 200u) << e;
  EXPECT_CONTAINS(e, "found 'xxxxxxxxxx");
  EXPECT_CONTAINS(e, "...' (1048576 bytes)");
  e = test::error_of<ConfigError>([&] { a.check_keys({"name"}); });
  EXPECT_LT(e.size(), 600u) << e.substr(0, 600);
  e = test::error_of<ConfigError>([&] { a.get_enum("name", {"a", "b"}); });
  EXPECT_LT(e.size(), 200u) << e.substr(0, 600);
}

TEST(Args, FailAndWhereForTrialChecks) {
  Args a = args(R"({"patch_size": 15})", "hyperparameters.model");
  EXPECT_EQ(
      test::error_of<ConfigError>([&] { a["patch_size"].fail("15 does not divide img_size 32"); }),
      "hyperparameters.model.patch_size: 15 does not divide img_size 32");
  EXPECT_EQ(a["patch_size"].where(), "hyperparameters.model.patch_size");
  EXPECT_EQ(a["patch_size"].found(), "15");
}

// ---- positions from a real parsed config ----

const char* kConfig = R"(name: args
data:
  dataset_name: cifar10
  num_workers: 100000
  transforms:
    train:
      - random_crop: {size: 32, padding: 4}
      - resize: {size: big}
hyperparameters:
  global_batch_size: 32
  optimizer:
    type: const
    val:
      name: adamw
      lr: fast
  scheduler:
    epochs: ten
    warmup_epochs: 1
  model: {type: categorical, vals: [{depth: 2}, {depth: 4}]}
  dropout: {type: double, minval: 0.1, maxval: 0.5}
searcher: {name: single, metric: loss, max_length: {batches: 10}}
)";

Args data_of(const ExperimentConfig& c) { return Args(c.data, "data", c.sources); }
Args hparam_of(const ExperimentConfig& c, const std::string& name, const json& value) {
  return Args(value, "hyperparameters." + name, c.sources);
}

TEST(ArgsSources, ErrorsNameFileLineAndColumn) {
  auto c = parse_experiment_config(kConfig, "exp.yaml");
  ASSERT_TRUE(c.sources);
  Args data = data_of(c);
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              data.get<int64_t>("num_workers", 2, Range{0, 256});
            }),
            "exp.yaml:4:16: data.num_workers: expected an integer from 0 to 256, found 100000");
  Args resize = data.child("transforms")["train"][1].child("resize");
  EXPECT_EQ(resize.path(), "data.transforms.train[1].resize");
  EXPECT_EQ(
      test::error_of<ConfigError>([&] { resize.get<int64_t>("size"); }),
      "exp.yaml:8:24: data.transforms.train[1].resize.size: expected an integer, found 'big'");
  // A missing key points at the mapping it is missing from.
  EXPECT_EQ(test::error_of<ConfigError>([&] { resize.get<std::string>("interpolation"); }),
            "exp.yaml:8:17: data.transforms.train[1].resize.interpolation: expected a string, "
            "found nothing");
}

TEST(ArgsSources, ConstHyperparametersMapToThePathTheTrialSees) {
  auto c = parse_experiment_config(kConfig, "exp.yaml");
  // The trial's `optimizer` is the const's val; its lr was written at
  // hyperparameters.optimizer.val.lr.
  Args opt = hparam_of(c, "optimizer", c.hyperparameters.at("optimizer").val);
  EXPECT_EQ(test::error_of<ConfigError>([&] { opt.get<double>("lr"); }),
            "exp.yaml:15:11: hyperparameters.optimizer.lr: expected a number, found 'fast'");
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              opt.check_keys({"name", "lr_"});
            }),
            "exp.yaml:15:11: hyperparameters.optimizer.lr: unknown key 'lr', did you mean 'lr_'? "
            "(allowed here: name, "
            "lr_)");
  // A nested hyperparameter (a mapping without `type`) keeps its own path.
  Args sched = hparam_of(c, "scheduler", json{{"epochs", "ten"}, {"warmup_epochs", 1}});
  EXPECT_EQ(test::error_of<ConfigError>([&] { sched.get<int64_t>("epochs"); }),
            "exp.yaml:17:13: hyperparameters.scheduler.epochs: expected an integer, found 'ten'");
  // A sampled value points at its hyperparameter.
  Args model = hparam_of(c, "model", json{{"depth", "x"}});
  EXPECT_EQ(test::error_of<ConfigError>([&] { model.get<int64_t>("depth"); }),
            "exp.yaml:19:10: hyperparameters.model.depth: expected an integer, found 'x'");
  Args all(json{{"dropout", "x"}}, "hyperparameters", c.sources);
  EXPECT_EQ(test::error_of<ConfigError>([&] { all.get<double>("dropout"); }),
            "exp.yaml:20:12: hyperparameters.dropout: expected a number, found 'x'");
}

TEST(ArgsSources, OverridesAreNamed) {
  auto c = parse_experiment_config(
      kConfig, "exp.yaml",
      {"data.num_workers=300", "hyperparameters.optimizer.val={name: sgd, lr: [1]}"});
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              data_of(c).get<int64_t>("num_workers", 2, Range{0, 256});
            }),
            "--config data.num_workers=300: data.num_workers: expected an integer from 0 to 256, "
            "found 300");
  Args opt = hparam_of(c, "optimizer", c.hyperparameters.at("optimizer").val);
  EXPECT_EQ(test::error_of<ConfigError>([&] { opt.get<double>("lr"); }),
            "--config hyperparameters.optimizer.val={name: sgd, lr: [1]}: "
            "hyperparameters.optimizer.lr: expected a "
            "number, found a list");
  // Untouched keys keep their file position.
  EXPECT_EQ(test::error_of<ConfigError>([&] { data_of(c).get<int64_t>("dataset_name"); }),
            "exp.yaml:3:17: data.dataset_name: expected an integer, found 'cifar10'");
}

TEST(ArgsSources, CopiesShareTheMap) {
  auto c = parse_experiment_config(kConfig, "exp.yaml");
  ExperimentConfig copy = c;
  EXPECT_EQ(copy.sources.get(), c.sources.get());
  EXPECT_GT(c.sources->size(), 10u);
  EXPECT_EQ(c.sources->find("data.transforms.train[0].random_crop.size"), "exp.yaml:7:29");
  EXPECT_EQ(c.sources->find("data.transforms.train[0].random_crop.absent"), "exp.yaml:7:22");
  EXPECT_EQ(c.sources->find("nowhere.at.all"), "");
}

}  // namespace
}  // namespace det::config
