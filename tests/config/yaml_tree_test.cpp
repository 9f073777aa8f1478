// The YAML layer under every config reader (src/config/yaml_tree.h): positions in errors, the
// core schema's scalar typing, aliases, --config overrides and the YAML that det writes back.
#include "config/yaml_tree.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include "support/test_support.h"

namespace det::config::detail {
namespace {

const char* const kYaml =
    "searcher:\n"
    "  name: single\n"
    "  max_length:\n"
    "    batches: ten\n"
    "data:\n"
    "  lr: .inf\n"
    "  sizes: [1, two]\n";

TEST(YamlTreeNode, ErrorsNameFileLineColumnAndKeyPath) {
  const Source src{"exp.yaml", {}};
  const Node root(YAML::Load(kYaml), "", &src);
  const Node batches = root.child("searcher").child("max_length").child("batches");
  EXPECT_EQ(batches.path(), "searcher.max_length.batches");
  EXPECT_EQ(batches.location(), "exp.yaml:4:14");
  EXPECT_EQ(test::error_of<ConfigError>([&] { batches.as_int(); }),
            "exp.yaml:4:14: searcher.max_length.batches: expected an integer, found 'ten'");
  EXPECT_EQ(test::error_of<ConfigError>([&] { root.child("data").child("lr").as_double(); }),
            "exp.yaml:6:7: data.lr: expected a number, found '.inf'");
  EXPECT_EQ(
      test::error_of<ConfigError>([&] { root.child("data").child("sizes").item(1).as_int(); }),
      "exp.yaml:7:14: data.sizes[1]: expected an integer, found 'two'");
  EXPECT_EQ(test::error_of<ConfigError>([&] { root.child("data").as_string(); }),
            "exp.yaml:6:3: data: expected a string, found a mapping");
}

TEST(YamlTreeNode, AMissingKeyIsPlacedAtItsParent) {
  const Source src{"exp.yaml", {}};
  const Node root(YAML::Load(kYaml), "", &src);
  const Node metric = root.child("searcher").child("metric");
  EXPECT_TRUE(metric.is_null());
  EXPECT_FALSE(root.child("searcher").has("metric"));
  EXPECT_TRUE(root.child("searcher").has("name"));
  EXPECT_EQ(test::error_of<ConfigError>([&] { metric.as_string(); }),
            "exp.yaml:2:3: searcher.metric: expected a string, found nothing");
  // Looking a key up never writes it into the document.
  EXPECT_FALSE(root.yaml()["searcher"]["metric"].IsDefined());
}

TEST(YamlTreeNode, RangesEnumsAndUnknownKeysSayWhatIsAllowed) {
  const Source src{"exp.yaml", {}};
  const Node root(YAML::Load("workers: 300\nrate: 0\nmode: fsat\nnmae: x\n"), "", &src);
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              root.child("workers").as_int(Range{0, 256});
            }),
            "exp.yaml:1:10: workers: expected an integer from 0 to 256, found '300'");
  EXPECT_EQ(root.child("workers").as_int(Range::at_least(1)), 300);
  EXPECT_EQ(
      test::error_of<ConfigError>([&] { root.child("rate").as_double(Range::greater_than(0)); }),
      "exp.yaml:2:7: rate: expected a number > 0, found '0'");
  EXPECT_EQ(root.child("rate").as_double(), 0.0);
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              root.child("mode").as_enum({"fast", "exact"});
            }),
            "exp.yaml:3:7: mode: expected one of fast, exact, found 'fsat', did you mean 'fast'?");
  EXPECT_EQ(test::error_of<ConfigError>([&] {
              root.check_keys({"workers", "rate", "mode", "name"});
            }),
            "exp.yaml:4:1: nmae: unknown key 'nmae', did you mean 'name'? (allowed here: workers, "
            "rate, mode, name)");
  EXPECT_EQ(test::error_of<ConfigError>([&] { root.child("rate").as_bool(); }),
            "exp.yaml:2:7: rate: expected true or false, found '0'");
}

TEST(YamlTreeScalars, TheCoreSchemaTypesScalarsAndAQuotedScalarStaysAString) {
  const auto j = yaml_to_json(
      YAML::Load("i: -42\nf: 2.5\ne: 1e3\nhex: 0x10\nword_inf: inf\ninf: -.inf\nb: True\nyes: yes\n"
                 "n: ~\nempty:\nquoted: '42'\nlist: [1, '2', null]\n"));
  EXPECT_EQ(j["i"], -42);
  EXPECT_TRUE(j["i"].is_number_integer());
  EXPECT_EQ(j["f"], 2.5);
  EXPECT_TRUE(j["e"].is_number_float());
  EXPECT_EQ(j["e"], 1000.0);
  EXPECT_EQ(j["hex"], "0x10");  // YAML 1.2's core schema has no hex floats through strtod
  EXPECT_EQ(j["word_inf"], "inf");
  EXPECT_EQ(j["inf"].get<double>(), -std::numeric_limits<double>::infinity());
  EXPECT_EQ(j["b"], true);
  EXPECT_EQ(j["yes"], "yes");  // a YAML 1.1 boolean, a string in 1.2
  EXPECT_TRUE(j["n"].is_null());
  EXPECT_TRUE(j["empty"].is_null());
  EXPECT_EQ(j["quoted"], "42");
  EXPECT_EQ(j["list"], nlohmann::json::parse(R"([1, "2", null])"));
  int64_t i = 0;
  double d = 0;
  EXPECT_FALSE(parse_int("12abc", i));
  EXPECT_FALSE(parse_int("99999999999999999999", i));  // out of range, not wrapped
  EXPECT_TRUE(parse_int("-7", i));
  EXPECT_EQ(i, -7);
  EXPECT_FALSE(parse_double("nan", d));
  EXPECT_TRUE(parse_double(".NaN", d));
  EXPECT_TRUE(std::isnan(d));
}

TEST(YamlTreeAliases, AnAliasReadsAsACopyOfItsAnchor) {
  const Source src{"exp.yaml", {}};
  YAML::Node doc = YAML::Load("base: &opt {lr: 0.1, depth: 3}\nuse: *opt\n");
  check_tree(doc, src);
  const auto j = yaml_to_json(doc);
  EXPECT_EQ(j["use"], nlohmann::json::parse(R"({"lr": 0.1, "depth": 3})"));
  EXPECT_EQ(j["use"], j["base"]);
}

TEST(YamlTreeOverrides, ASettingReplacesTheValueAndErrorsPointAtIt) {
  Source src{"exp.yaml", {}};
  YAML::Node root = YAML::Load("searcher:\n  max_length:\n    epochs: 1\nname: x\n");
  apply_override(root, "searcher.max_length.batches=500", src);
  apply_override(root, "hyperparameters.optimizer.lr=0.1", src);
  apply_override(root, "name='007'", src);
  // One unit per length: batches replaces epochs. Missing mappings are created.
  EXPECT_EQ(yaml_to_json(root), nlohmann::json::parse(R"({
      "searcher": {"max_length": {"batches": 500}},
      "hyperparameters": {"optimizer": {"lr": 0.1}},
      "name": "007"})"));
  EXPECT_EQ(src.overrides.at("searcher.max_length.batches"), "searcher.max_length.batches=500");
  const Node doc(root, "", &src);
  const Node batches = doc.child("searcher").child("max_length").child("batches");
  EXPECT_EQ(batches.location(), "--config searcher.max_length.batches=500");
  EXPECT_EQ(test::error_of<ConfigError>([&] { batches.as_bool(); }),
            "--config searcher.max_length.batches=500: searcher.max_length.batches: expected true "
            "or false, found '500'");
  // A value under an overridden mapping points at the override that set it.
  EXPECT_EQ(doc.child("hyperparameters").child("optimizer").child("lr").location(),
            "--config hyperparameters.optimizer.lr=0.1");
  EXPECT_EQ(doc.child("searcher").location(), "exp.yaml:2:3");
}

TEST(YamlTreeOverrides, MalformedSettingsAreOneLineErrors) {
  Source src{"exp.yaml", {}};
  YAML::Node root = YAML::Load("name: x\n");
  const std::string usage =
      ": expected key.path=value (e.g. --config searcher.max_length.batches=500)";
  EXPECT_EQ(test::error_of<ConfigError>([&] { apply_override(root, "name", src); }),
            "--config name" + usage);
  EXPECT_EQ(test::error_of<ConfigError>([&] { apply_override(root, "=3", src); }),
            "--config =3" + usage);
  EXPECT_EQ(test::error_of<ConfigError>([&] { apply_override(root, "a..b=1", src); }),
            "--config a..b=1: empty key in 'a..b'");
  EXPECT_EQ(
      test::error_of<ConfigError>([&] { apply_override(root, "name.first=1", src); }),
      "--config name.first=1: 'name' is not a mapping in the config, so it has no key 'first'");
  const std::string bad_yaml =
      test::error_of<ConfigError>([&] { apply_override(root, "name=[1", src); });
  EXPECT_EQ(bad_yaml.rfind("--config name=[1: the value is not valid YAML: ", 0), 0u) << bad_yaml;
  EXPECT_TRUE(src.overrides.empty());  // only a setting that applies is noted
}

TEST(YamlTreeSources, RecordTreeNotesWhereEveryValueWasWritten) {
  Source src{"exp.yaml", {}};
  YAML::Node root = YAML::Load("model:\n  depth: 3\n  sizes: [8, 16]\n");
  apply_override(root, "model.width=4", src);
  SourceMap map;
  record_tree(map, "hparams.model", Node(root, "", &src).child("model"));
  EXPECT_EQ(map.find("hparams.model.depth"), "exp.yaml:2:10");
  EXPECT_EQ(map.find("hparams.model.sizes[1]"), "exp.yaml:3:14");
  EXPECT_EQ(map.find("hparams.model.width"), "--config model.width=4");
  EXPECT_EQ(map.find("hparams.model"), "exp.yaml:2:3");
  EXPECT_EQ(map.find("elsewhere"), "");
}

TEST(YamlTreeEmit, ToYamlReadsBackAsTheSameValues) {
  const double inf = std::numeric_limits<double>::infinity();
  nlohmann::json value = {
      {"looks_like_int", "1"},
      {"looks_like_bool", "true"},
      {"looks_like_null", "null"},
      {"empty", ""},
      {"float_whole", 1.0},
      {"float_small", 2.5e-7},
      {"int", 3},
      {"neg_inf", -inf},
      {"pos_inf", inf},
      {"flag", false},
      {"nothing", nullptr},
      {"text", "hello world"},
      {"flat", {1, "a", nullptr}},
      {"nested", {{{"a", 1}}, {{"b", {2, 3}}}}},
  };
  const std::string yaml = to_yaml(value);
  const auto back = yaml_to_json(YAML::Load(yaml));
  EXPECT_EQ(back, value) << yaml;
  EXPECT_TRUE(back["float_whole"].is_number_float()) << yaml;
  EXPECT_TRUE(back["int"].is_number_integer()) << yaml;
  EXPECT_NE(yaml.find("flat: [1, a, ~]"), std::string::npos) << yaml;
  EXPECT_TRUE(
      std::isnan(yaml_to_json(YAML::Load(to_yaml({{"x", std::nan("")}})))["x"].get<double>()));
}

}  // namespace
}  // namespace det::config::detail
