#include "det/config/experiment_config.h"

#include "schema.h"
#include "sections.h"
#include "yaml_tree.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <unordered_map>

#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/strings.h"

namespace det::config {
namespace fs = std::filesystem;

std::string unit_name(Unit unit) {
  switch (unit) {
    case Unit::kBatches:
      return "batches";
    case Unit::kRecords:
      return "records";
    case Unit::kEpochs:
      return "epochs";
  }
  return "?";
}

fs::path CheckpointStorageConfig::root() const {
  fs::path root = host_path.empty() ? fs::path("runs") : fs::path(host_path);
  if (!storage_path.empty()) root /= storage_path;
  return root;
}

int64_t to_batches(const Length& length, int64_t global_batch_size, int64_t batches_per_epoch) {
  switch (length.unit) {
    case Unit::kBatches:
      return length.value;
    case Unit::kRecords:
      return std::max<int64_t>(length.value / std::max<int64_t>(global_batch_size, 1), 1);
    case Unit::kEpochs:
      return length.value * batches_per_epoch;
  }
  return length.value;
}

// One table of the names: "fp32" is no value of the config, so it is none here either.
namespace {
const std::vector<std::pair<std::string, Precision>> kPrecisions = {{"O0", Precision::kFloat32},
                                                                    {"O1", Precision::kFloat16},
                                                                    {"O2", Precision::kFloat16},
                                                                    {"fp16", Precision::kFloat16},
                                                                    {"bf16", Precision::kBFloat16}};
}  // namespace

Precision parse_precision(const std::string& v) {
  for (const auto& [name, p] : kPrecisions)
    if (name == v) return p;
  throw ConfigError("optimizations.mixed_precision: " + v +
                    " is not offered (O0, O1, O2, fp16, bf16; O3, Apex's pure fp16 without "
                    "master weights or loss scaling, is not)");
}

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::kFloat32:
      return "O0";
    case Precision::kFloat16:
      return "fp16";
    case Precision::kBFloat16:
      return "bf16";
  }
  return "O0";
}

std::vector<std::string> config_keys() {
  std::vector<std::string> paths;
  for (const auto& k : detail::schema()) paths.push_back(k.path);
  return paths;
}

namespace {

using detail::Node;
using detail::Source;

ExperimentConfig parse_root(const Node& root, const std::string& source) {
  ExperimentConfig c;
  c.source = source;
  auto map = std::make_shared<SourceMap>();
  if (!root.is_map()) root.fail("a mapping of experiment settings");
  root.check_keys(detail::keys_under(""));
  detail::Reading reading{c, *map};
  detail::read_keys(root, "", reading);
  if (c.searcher.name == "grid")
    detail::check_grid_size(c.hyperparameters, root.child("hyperparameters"));
  c.sources = std::move(map);
  detail::check_implemented(root, c);
  return c;
}

// Where each YAML document of a text starts: its first node (the parser's events, nothing built).
struct DocumentStarts : YAML::EventHandler {
  std::vector<YAML::Mark> marks;
  bool fresh = false;
  int documents = 0;
  void node(const YAML::Mark& mark) {
    if (fresh) marks.push_back(mark);
    fresh = false;
  }
  void OnDocumentStart(const YAML::Mark& mark) override {
    ++documents;
    fresh = true;
    start = mark;
  }
  YAML::Mark start = YAML::Mark::null_mark();
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    node(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    node(mark);
  }
  void OnMapEnd() override {}
};

}  // namespace

ExperimentConfig parse_experiment_config(const std::string& yaml_text, const std::string& source,
                                         const std::vector<std::string>& overrides) {
  auto position = [&](const YAML::Mark& m) {
    return m.is_null()
               ? source
               : source + ":" + std::to_string(m.line + 1) + ":" + std::to_string(m.column + 1);
  };
  YAML::Node root;
  try {
    // How many documents, first, from the parser's events: yaml-cpp 0.7's LoadAll loops forever
    // on a stray ',' outside a list or mapping (one empty document after another, its memory
    // growing: jbeder/yaml-cpp#1040, fixed after 0.8.0), so it is never called. Then the one
    // document is loaded.
    std::istringstream in(yaml_text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    while (starts.documents < 2 && parser.HandleNextDocument(starts)) {
    }
    if (starts.documents > 1) {
      const bool separator =
          yaml_text.rfind("---", 0) == 0 || yaml_text.find("\n---") != std::string::npos;
      throw ConfigError(
          position(starts.marks.size() > 1 ? starts.marks[1] : starts.start) +
          (separator ? ": a second YAML document (after '---'); a config is one document: remove "
                       "the '---' line and merge the settings, or split them into two files"
                     : ": invalid YAML: text outside any mapping or list (a ',' at the top "
                       "level?); a config is one mapping of settings"));
    }
    root = YAML::Load(yaml_text);
  } catch (const YAML::DeepRecursion& e) {
    // yaml-cpp's own guard (at a depth of some hundreds) stops it before its stack does.
    throw ConfigError(position(e.mark) + ": invalid YAML: lists and mappings nest deeper than " +
                      std::to_string(kMaxConfigDepth) + " levels; a config needs far fewer");
  } catch (const YAML::Exception& e) {
    throw ConfigError(position(e.mark) + ": invalid YAML: " + util::shorten(e.msg, 200));
  }
  Source src{source, {}};
  try {
    if (!root.IsDefined() || root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) Node(root, "", &src).fail("a mapping of experiment settings");
    for (const auto& o : overrides) detail::apply_override(root, o, src);
    detail::check_tree(root, src);
    return parse_root(Node(root, "", &src), source);
  } catch (const YAML::Exception& e) {
    // A yaml-cpp call the checks above did not foresee: still one line naming the file.
    throw ConfigError(position(e.mark) + ": " + util::shorten(e.msg, 200));
  }
}

ExperimentConfig load_experiment_config(const fs::path& path,
                                        const std::vector<std::string>& overrides) {
  if (!fs::exists(path))
    throw ConfigError(path.string() +
                      ": no such config file (give the path to an experiment YAML, e.g. "
                      "configs/mnist/const.yaml)");
  std::string text;
  try {
    text = util::read_file(path);
  } catch (const Error& e) {
    throw ConfigError(e.what());
  }
  return parse_experiment_config(text, path.string(), overrides);
}

nlohmann::json to_json(const ExperimentConfig& c) { return detail::write_keys(c, ""); }

}  // namespace det::config
