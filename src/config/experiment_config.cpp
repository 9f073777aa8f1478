#include "det/config/experiment_config.h"

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

namespace {

using detail::is_null_scalar;
using detail::kMaxPathChars;
using detail::Node;
using detail::parse_int;
using detail::record_tree;
using detail::Source;
using detail::yaml_to_json;

// ---- bounds (docs/configs.md): generous, but no value that would exhaust a machine ----

constexpr double kMaxLength = 1e12;  // batches, records or epochs of any length or period
const Range kLengthRange{1, kMaxLength};
const Range kPeriodRange{0, kMaxLength};
const Range kMaxTrialsRange{1, 100'000};
const Range kMaxConcurrentRange{0, 10'000};
const Range kDivisorRange{1, 100, /*min_excluded=*/true};
const Range kRungsRange{1, 32};
const Range kFractionRange{0, 1};
const Range kTopFractionRange{0, 1, /*min_excluded=*/true, /*max_excluded=*/true};
const Range kObservationsRange{2, 100'000};
const Range kCandidatesRange{1, 100'000};
const Range kBandwidthFactorRange{0, 100, /*min_excluded=*/true};
constexpr double kMaxRungFactor = 1e9;  // divisor^(rungs - 1): the widest rung ratio
constexpr int64_t kMaxGridPoints = 100'000;
const Range kCountRange{1, 100'000};
const Range kIntHparamRange{-1e15, 1e15};
const Range kSchedulingUnitRange{1, 1'000'000};
const Range kMaxRestartsRange{0, 1'000};
const Range kSlotsPerTrialRange{1, 4'096};
const Range kMaxSlotsRange{1, 65'536};
const Range kWeightRange{0, 1e6};
const Range kPriorityRange{1, 99};
const Range kSeedRange{0, 4294967295.0};
const Range kAggregationRange{1, 10'000};
const Range kSaveCountRange{0, 1'000};
const Range kBatchIndexRange{0, kMaxLength};
const Range kTrialIdRange{0, 1e15};

// ---- section parsers ----

Length parse_length(const Node& n, const Range& range) {
  if (n.is_scalar()) return {Unit::kBatches, n.as_int(range)};  // a bare number is batches
  const std::string expected = "{batches: n}, {records: n} or {epochs: n}";
  if (n.is_map() && n.yaml().size() > 1) {
    std::vector<std::string> keys;
    for (const auto& kv : n.yaml()) keys.push_back(util::shorten(kv.first.Scalar()));
    n.fail_msg("a length takes exactly one of batches, records or epochs, found " +
               util::join(keys, ", "));
  }
  if (!n.is_map() || n.yaml().size() != 1) n.fail(expected);
  n.check_keys({"batches", "records", "epochs"});
  for (const auto& [key, unit] : std::vector<std::pair<std::string, Unit>>{
           {"batches", Unit::kBatches}, {"records", Unit::kRecords}, {"epochs", Unit::kEpochs}}) {
    if (n.yaml()[key].IsDefined()) return {unit, n.child(key).as_int(range)};
  }
  n.fail(expected);
}

Hyperparameter parse_hparam(const Node& n, const std::string& logical, SourceMap& map);

HyperparameterSpace parse_hparam_space(const Node& n, const std::string& logical, SourceMap& map) {
  HyperparameterSpace space;
  if (n.is_null()) return space;
  n.expect_map();
  for (const auto& kv : n.yaml()) {
    const std::string& key = kv.first.Scalar();
    space[key] = parse_hparam(n.child(kv), logical + "." + key, map);
  }
  return space;
}

Hyperparameter parse_hparam(const Node& n, const std::string& logical, SourceMap& map) {
  using T = Hyperparameter::Type;
  Hyperparameter hp;
  n.record(map, logical);
  if (!n.is_map()) {  // a scalar or list is a constant
    hp.type = T::kConst;
    hp.val = yaml_to_json(n.yaml());
    record_tree(map, logical, n);
    return hp;
  }
  if (!n.yaml()["type"].IsDefined()) {  // a map without `type` nests hyperparameters
    hp.type = T::kNested;
    hp.nested = parse_hparam_space(n, logical, map);
    return hp;
  }
  std::string type = n.child("type").as_enum({"const", "int", "double", "log", "categorical"});
  auto range = [&](bool integer) {
    if (!n.has("minval")) n.fail_msg("a '" + type + "' hyperparameter needs 'minval'");
    if (!n.has("maxval")) n.fail_msg("a '" + type + "' hyperparameter needs 'maxval'");
    if (integer) {
      hp.minval = static_cast<double>(n.child("minval").as_int(kIntHparamRange));
      hp.maxval = static_cast<double>(n.child("maxval").as_int(kIntHparamRange));
    } else {
      hp.minval = n.child("minval").as_double();
      hp.maxval = n.child("maxval").as_double();
    }
    if (!(hp.minval < hp.maxval))
      n.child("maxval").fail("a value greater than minval (" +
                             util::shorten(n.child("minval").yaml().Scalar()) + ")");
    if (!integer && !std::isfinite(hp.maxval - hp.minval))
      n.child("maxval").fail_msg("maxval - minval overflows a double; give a narrower range");
    if (n.has("count")) hp.count = static_cast<int>(n.child("count").as_int(kCountRange));
  };
  if (type == "const") {
    n.check_keys({"type", "val"});
    if (!n.yaml()["val"].IsDefined()) n.fail_msg("a 'const' hyperparameter needs 'val'");
    hp.type = T::kConst;
    hp.val = yaml_to_json(n.yaml()["val"]);
    record_tree(map, logical, n.child("val"));  // the trial sees the value itself
  } else if (type == "int") {
    n.check_keys({"type", "minval", "maxval", "count"});
    hp.type = T::kInt;
    range(true);
  } else if (type == "double") {
    n.check_keys({"type", "minval", "maxval", "count"});
    hp.type = T::kDouble;
    range(false);
  } else if (type == "log") {
    n.check_keys({"type", "minval", "maxval", "base", "count"});
    hp.type = T::kLog;
    range(false);
    if (!n.has("base"))
      n.fail_msg("a 'log' hyperparameter needs 'base' (minval and maxval are exponents)");
    hp.base = n.child("base").as_double(Range::greater_than(0));
    if (!std::isfinite(std::pow(hp.base, hp.maxval)) ||
        !std::isfinite(std::pow(hp.base, hp.minval)))
      n.child("maxval").fail_msg(
          "base^maxval or base^minval overflows a double; give smaller exponents");
  } else {
    n.check_keys({"type", "vals"});
    hp.type = T::kCategorical;
    Node vals = n.child("vals");
    if (!vals.is_seq() || vals.yaml().size() == 0) vals.fail("a non-empty list");
    for (const auto& v : vals.yaml()) hp.vals.push_back(yaml_to_json(v));
  }
  return hp;
}

// Every number a hyperparameter can take is finite: NaN and infinity cannot be written back to
// the resolved config.yaml a worker reads (JSON has neither).
void check_finite(const nlohmann::json& v, const Node& n) {
  if (v.is_number_float() && !std::isfinite(v.get<double>()))
    n.fail(
        "a finite number (JSON, and so the resolved config a worker reads, has no NaN or "
        "infinity)");
  if (v.is_structured())
    for (const auto& item : v) check_finite(item, n);
}

// global_batch_size, which the harness reads: a positive integer in every value it can take
// (Determined's).
void check_global_batch_size(const Hyperparameter& hp, const Node& node) {
  using T = Hyperparameter::Type;
  const char* expected = "a positive integer (at most 2^31): the batch the whole trial trains";
  auto positive_int = [](const nlohmann::json& v) {
    return v.is_number_integer() && v.get<int64_t>() >= 1 && v.get<int64_t>() <= (int64_t{1} << 31);
  };
  switch (hp.type) {
    case T::kNested:
      node.fail(expected);
    case T::kConst:
      if (!positive_int(hp.val)) (node.is_map() ? node.child("val") : node).fail(expected);
      break;
    case T::kCategorical:
      for (const auto& v : hp.vals)
        if (!positive_int(v)) node.child("vals").fail(std::string(expected) + ", every one");
      break;
    case T::kInt:
      if (hp.minval < 1) node.child("minval").fail(expected);
      break;
    case T::kDouble:
    case T::kLog:
      node.child("type").fail("const, int or categorical: global_batch_size is an integer");
  }
}

// The hyperparameters the harness itself reads: global_batch_size (above), and every value is
// finite.
void check_harness_hparams(const HyperparameterSpace& space, const Node& n) {
  if (!n.is_map()) return;
  for (const auto& kv : n.yaml()) {
    const Node node = n.child(kv);
    const std::string& key = kv.first.Scalar();
    const auto it = space.find(key);
    if (it == space.end()) continue;
    const Hyperparameter& hp = it->second;
    if (key == "global_batch_size") check_global_batch_size(hp, node);
    if (hp.type == Hyperparameter::Type::kNested) {
      check_harness_hparams(hp.nested, node);
      continue;
    }
    if (hp.type == Hyperparameter::Type::kConst)
      check_finite(hp.val, node.is_map() ? node.child("val") : node);
    for (const auto& v : hp.vals) check_finite(v, node.child("vals"));
  }
}

// The most grid points the space could give (the grid searcher caps int counts at the range).
double grid_points(const HyperparameterSpace& space) {
  double points = 1;
  for (const auto& [name, hp] : space) {
    switch (hp.type) {
      case Hyperparameter::Type::kConst:
        break;
      case Hyperparameter::Type::kInt:
        points *= std::min<double>(hp.count.value_or(1), hp.maxval - hp.minval + 1);
        break;
      case Hyperparameter::Type::kDouble:
      case Hyperparameter::Type::kLog:
        points *= hp.count.value_or(1);
        break;
      case Hyperparameter::Type::kCategorical:
        points *= static_cast<double>(hp.vals.size());
        break;
      case Hyperparameter::Type::kNested:
        points *= grid_points(hp.nested);
        break;
    }
  }
  return points;
}

// A count held in a double, as digits ("1000000", or "1e+30" when it is huge).
std::string count_text(double v) {
  if (v < 1e18) return std::to_string(static_cast<int64_t>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// divisor^(rungs - 1) is the ratio of the longest rung to the shortest; past kMaxRungFactor the
// searcher's integer arithmetic would overflow and the short rungs would be empty.
void check_rung_factor(const Node& n, double divisor, int64_t rungs) {
  const double factor = std::pow(divisor, static_cast<double>(rungs - 1));
  if (!(factor <= kMaxRungFactor))
    n.fail_msg("divisor^(rungs - 1) = " + count_text(factor) +
               " is more than 1000000000; use fewer rungs or a smaller divisor");
}

SearcherConfig parse_searcher(const Node& n) {
  SearcherConfig s;
  if (n.is_null())
    n.fail(
        "a searcher mapping (e.g. {name: single, metric: validation_loss, max_length: {epochs: "
        "1}})");
  n.expect_map();
  if (!n.has("name"))
    n.fail_msg(
        "the searcher needs a 'name' (single, random, grid, async_halving, adaptive_asha, bohb)");
  s.name = n.child("name").as_enum(
      {"single", "random", "grid", "async_halving", "adaptive_asha", "bohb", "custom"});
  std::vector<std::string> common = {
      "name",      "metric", "smaller_is_better", "source_trial_id", "source_checkpoint_uuid",
      "max_length"};
  std::vector<std::string> known = common;
  auto add = [&](std::initializer_list<const char*> keys) {
    for (auto* k : keys) known.push_back(k);
  };
  if (s.name == "random") add({"max_trials", "max_concurrent_trials"});
  if (s.name == "grid") add({"max_concurrent_trials"});
  if (s.name == "async_halving")
    add({"num_rungs", "max_trials", "divisor", "max_concurrent_trials", "stop_once"});
  if (s.name == "adaptive_asha" || s.name == "bohb")
    add({"max_trials", "mode", "divisor", "max_rungs", "max_concurrent_trials", "stop_once",
         "bracket_rungs"});
  if (s.name == "bohb")
    add({"random_fraction", "top_fraction", "min_observations", "candidates", "bandwidth_factor"});
  n.check_keys(known);
  if (!n.has("metric"))
    n.fail_msg(
        "the searcher needs a 'metric' (the validation metric to optimise, e.g. validation_loss)");
  s.metric = n.child("metric").as_string();
  if (n.has("smaller_is_better")) s.smaller_is_better = n.child("smaller_is_better").as_bool();
  if (n.has("source_trial_id"))
    s.source_trial_id = n.child("source_trial_id").as_int(kTrialIdRange);
  if (n.has("source_checkpoint_uuid"))
    s.source_checkpoint_uuid = n.child("source_checkpoint_uuid").as_string();
  if (!n.has("max_length"))
    n.fail_msg("the searcher needs 'max_length' ({batches: n}, {records: n} or {epochs: n})");
  s.max_length = parse_length(n.child("max_length"), kLengthRange);
  if (s.name == "single") {
    s.max_trials = 1;
    s.max_concurrent_trials = 1;
  } else if (s.name != "grid") {
    if (!n.has("max_trials")) n.fail_msg("the '" + s.name + "' searcher needs 'max_trials'");
    s.max_trials = static_cast<int>(n.child("max_trials").as_int(kMaxTrialsRange));
  }
  if (n.has("max_concurrent_trials"))
    s.max_concurrent_trials =
        static_cast<int>(n.child("max_concurrent_trials").as_int(kMaxConcurrentRange));
  if (n.has("mode")) s.mode = n.child("mode").as_enum({"aggressive", "standard", "conservative"});
  if (n.has("divisor")) s.divisor = n.child("divisor").as_double(kDivisorRange);
  if (n.has("max_rungs")) s.max_rungs = static_cast<int>(n.child("max_rungs").as_int(kRungsRange));
  if (s.name == "async_halving") {
    if (!n.has("num_rungs")) n.fail_msg("the 'async_halving' searcher needs 'num_rungs'");
    s.num_rungs = static_cast<int>(n.child("num_rungs").as_int(kRungsRange));
    check_rung_factor(n.child("num_rungs"), s.divisor, s.num_rungs);
  }
  if (n.has("stop_once")) s.stop_once = n.child("stop_once").as_bool();
  if (n.has("random_fraction"))
    s.random_fraction = n.child("random_fraction").as_double(kFractionRange);
  if (n.has("top_fraction")) s.top_fraction = n.child("top_fraction").as_double(kTopFractionRange);
  if (n.has("min_observations"))
    s.min_observations = static_cast<int>(n.child("min_observations").as_int(kObservationsRange));
  if (n.has("candidates"))
    s.candidates = static_cast<int>(n.child("candidates").as_int(kCandidatesRange));
  if (n.has("bandwidth_factor"))
    s.bandwidth_factor = n.child("bandwidth_factor").as_double(kBandwidthFactorRange);
  if (n.has("bracket_rungs")) {
    Node br = n.child("bracket_rungs");
    if (!br.is_seq()) br.fail("a list of integers");
    if (br.yaml().size() > static_cast<size_t>(kRungsRange.max)) br.fail("at most 32 brackets");
    for (size_t i = 0; i < br.yaml().size(); ++i) {
      s.bracket_rungs.push_back(static_cast<int>(br.item(i).as_int(kRungsRange)));
      check_rung_factor(br.item(i), s.divisor, s.bracket_rungs.back());
    }
  }
  return s;
}

// The storage_path (relative to host_path) made canonical, or a ConfigError when it leaves
// host_path: `..` after normalisation, or an absolute path outside host_path.
std::string contained_storage_path(const Node& n, const std::string& host_path) {
  const std::string given = n.as_string();
  const std::string fix =
      "give a sub-directory of host_path (e.g. 'experiments/mnist'), or change host_path itself";
  fs::path sp = fs::path(given).lexically_normal();
  if (sp.is_absolute()) {
    // Determined requires an absolute storage_path to lie under host_path.
    fs::path host = fs::absolute(fs::path(host_path)).lexically_normal();
    fs::path rel = sp.lexically_relative(host);
    if (rel.empty() || *rel.begin() == "..")
      n.fail_msg(util::quote(given) + " is not inside host_path " + util::quote(host_path) + "; " +
                 fix);
    sp = rel;
  }
  if (!sp.empty() && *sp.begin() == "..")
    n.fail_msg(util::quote(given) + " leaves host_path " + util::quote(host_path) + "; " + fix);
  std::string out = sp.string();
  while (!out.empty() && out.back() == '/') out.pop_back();
  return out == "." ? "" : out;
}

CheckpointStorageConfig parse_storage(const Node& n) {
  CheckpointStorageConfig c;
  n.expect_map();
  std::string type = n.has("type")
                         ? n.child("type").as_enum({"shared_fs", "directory", "s3", "gcs", "azure"})
                         : "shared_fs";
  if (type == "s3" || type == "gcs" || type == "azure")
    n.child("type").fail_msg(
        "checkpoint storage type '" + type +
        "' is not available in det; use shared_fs (host_path) or directory (container_path)");
  c.type = type;
  std::vector<std::string> counts = {"save_experiment_best", "save_trial_best",
                                     "save_trial_latest"};
  std::vector<std::string> known = {"type"};
  known.insert(known.end(), counts.begin(), counts.end());
  if (type == "shared_fs") {
    for (auto* k : {"host_path", "storage_path", "propagation", "container_path", "checkpoint_path",
                    "tensorboard_path"})
      known.push_back(k);
  } else {
    known.push_back("container_path");
  }
  n.check_keys(known);
  if (type == "shared_fs") {
    if (!n.has("host_path"))
      n.fail_msg("shared_fs checkpoint storage needs 'host_path' (a directory)");
    c.host_path = n.child("host_path").as_string();
    if (n.has("storage_path"))
      c.storage_path = contained_storage_path(n.child("storage_path"), c.host_path);
  } else {
    if (!n.has("container_path")) n.fail_msg("directory checkpoint storage needs 'container_path'");
    c.host_path = n.child("container_path").as_string();
  }
  if (n.has("save_experiment_best"))
    c.save_experiment_best =
        static_cast<int>(n.child("save_experiment_best").as_int(kSaveCountRange));
  if (n.has("save_trial_best"))
    c.save_trial_best = static_cast<int>(n.child("save_trial_best").as_int(kSaveCountRange));
  if (n.has("save_trial_latest"))
    c.save_trial_latest = static_cast<int>(n.child("save_trial_latest").as_int(kSaveCountRange));
  return c;
}

// Loud, not silent: every setting det parses or accepts but does not implement is either a
// ConfigError (det would do something other than what it asks) or a notice (it has no meaning
// outside a Determined cluster, or Determined's PyTorchTrial ignores it too). One table.
void check_implemented(const Node& root, ExperimentConfig& c) {
  struct Rule {
    const char* path;
    bool error;                                // else a notice
    std::function<bool(const Node&)> applies;  // given the node at `path`
    const char* why;
  };
  auto any = [](const Node&) { return true; };
  auto is_true = [](const Node& n) { return n.is_scalar() && n.as_bool(); };
  const std::vector<Rule> rules = {
      {"optimizations.mixed_precision", true, [](const Node& n) { return n.as_string() == "O3"; },
       "O3 (Apex's pure fp16: fp16 weights, no loss scaling) is not offered; use fp16 (O1/O2: "
       "fp16 autocast with FP32 weights and dynamic loss scaling), bf16, or O0"},
      {"optimizations.gradient_compression", true, is_true,
       "gradient compression (fp16 allreduce) is not implemented; set false or remove it"},
      {"profiling.enabled", true, is_true,
       "det has no profiler; set false or remove the profiling section"},
      {"checkpoint_storage.save_experiment_best", true,
       [](const Node& n) { return n.as_int() > 0; },
       "only save_trial_best and save_trial_latest are implemented; set 0 or remove it"},
      {"searcher.source_trial_id", true, any,
       "warm starting from another trial is not implemented; remove it"},
      {"searcher.source_checkpoint_uuid", true, any,
       "warm starting from a checkpoint is not implemented; remove it"},
      {"records_per_epoch", false, any,
       "ignored, as by Determined's PyTorchTrial: an epoch is the loader's length"},
      {"optimizations.average_training_metrics", false, [](const Node& n) { return !n.as_bool(); },
       "ignored, as by Determined's PyTorchTrial: training metrics are always averaged across "
       "ranks"},
      {"optimizations.tensor_fusion_threshold", false, any,
       "Horovod only; det averages gradients over c10d"},
      {"optimizations.tensor_fusion_cycle_time", false, any,
       "Horovod only; det averages gradients over c10d"},
      {"optimizations.auto_tune_tensor_fusion", false, any,
       "Horovod only; det averages gradients over c10d"},
      {"optimizations.grad_updates_size_file", false, any,
       "Horovod only; det averages gradients over c10d"},
      {"resources.weight", false, any, "a cluster scheduler's setting; det-run uses --slots"},
      {"resources.priority", false, any, "a cluster scheduler's setting; det-run uses --slots"},
      {"resources.resource_pool", false, any, "a cluster setting; ignored"},
      {"resources.shm_size", false, any, "a container setting; ignored"},
      {"resources.is_single_node", false, any, "a cluster setting; ignored"},
      {"resources.devices", false, any, "a container setting; ignored"},
      {"resources.native_parallel", false, any, "a cluster setting; ignored"},
      {"resources.agent_label", false, any, "a cluster setting; ignored"},
      {"checkpoint_storage.propagation", false, any, "a container setting; ignored"},
      {"checkpoint_storage.container_path", false, any,
       "a container setting; det writes under host_path"},
      {"checkpoint_storage.checkpoint_path", false, any,
       "a container setting; det writes under host_path"},
      {"checkpoint_storage.tensorboard_path", false, any, "a container setting; ignored"},
      {"environment", false, any,
       "container images and variables are a cluster's; det runs in this environment"},
      {"bind_mounts", false, any, "a container setting; ignored"},
      {"workspace", false, any, "a Determined master's setting; ignored"},
      {"project", false, any, "a Determined master's setting; ignored"},
      {"log_policies", false, any, "a Determined master's setting; ignored"},
      {"retention_policy", false, any, "a Determined master's setting; ignored"},
      {"integrations", false, any, "a Determined master's setting; ignored"},
      {"pbs", false, any, "a Determined cluster's setting; ignored"},
      {"security", false, any, "a Determined master's setting; ignored"},
      {"preemption_timeout", false, any, "a Determined cluster's setting; ignored"},
      {"tensorboard_storage.propagation", false, any, "a container setting; ignored"},
      {"tensorboard_storage.checkpoint_path", false, any,
       "a container setting; det writes under host_path"},
      {"tensorboard_storage.tensorboard_path", false, any,
       "a container setting; det writes under host_path"},
      {"tensorboard_storage.container_path", false, any,
       "a container setting; det writes under host_path"},
  };
  for (const auto& rule : rules) {
    // Walked by recursion, not assignment: assigning a YAML::Node writes into the document.
    const auto parts = util::split(rule.path, '.');
    std::function<void(const Node&, size_t)> visit = [&](const Node& n, size_t i) {
      if (i < parts.size()) {
        if (n.has(parts[i])) visit(n.child(parts[i]), i + 1);
        return;
      }
      if (!rule.applies(n)) return;
      if (rule.error) n.fail_msg(std::string("not implemented: ") + rule.why);
      c.notices.push_back(n.where() + ": " + rule.why);
    };
    visit(root, 0);
  }
  if (c.searcher.name == "custom")
    root.child("searcher")
        .child("name")
        .fail_msg(
            "not implemented: det has no custom searchers; use single, random, grid, "
            "async_halving, adaptive_asha or bohb");
}

// `slurm:`: sbatch options are passed as separate arguments (never through a shell); the ones det
// sets for every trial's job are refused, since a second value would break the trial's ranks or
// the runner's view of its job.
void parse_slurm(const Node& s, ExperimentConfig& c) {
  SlurmConfig slurm;
  if (!s.is_null()) {
    s.expect_map();
    s.check_keys({"sbatch_args", "slots_per_node", "gpu_type"});
    if (s.has("sbatch_args")) {
      Node a = s.child("sbatch_args");
      if (!a.is_seq()) a.fail("a list of sbatch options, e.g. [--partition=gpu, --time=60]");
      static const std::vector<std::string> owned = {"-J",
                                                     "--job-name",
                                                     "-o",
                                                     "--output",
                                                     "-e",
                                                     "--error",
                                                     "-n",
                                                     "--ntasks",
                                                     "--parsable",
                                                     "--wrap",
                                                     "-a",
                                                     "--array",
                                                     "--requeue",
                                                     "--no-requeue",
                                                     "-W",
                                                     "--wait",
                                                     "--open-mode",
                                                     "-N",
                                                     "--nodes",
                                                     "--ntasks-per-node",
                                                     "--gpus-per-task",
                                                     "--chdir",
                                                     "-D"};
      for (size_t i = 0; i < a.yaml().size(); ++i) {
        Node item = a.item(i);
        const std::string arg = item.as_string();
        if (arg.size() < 2 || arg[0] != '-')
          item.fail_msg("an sbatch option starting with '-' (e.g. --partition=gpu), not " +
                        util::quote(arg) + "; write an option and its value as one item");
        if (arg.size() > 4096) item.fail_msg("an sbatch option of at most 4096 characters");
        const std::string name = arg.substr(0, arg.find('='));
        const bool short_with_value = arg.size() > 2 && arg[1] != '-';
        for (const auto& o : owned)
          if (name == o || (short_with_value && o.size() == 2 && arg.compare(0, 2, o) == 0))
            item.fail_msg(util::quote(arg) +
                          " is set by det for every trial's job (job name, output, tasks, nodes, "
                          "requeueing); remove it (slots: resources.slots_per_trial and "
                          "slurm.slots_per_node)");
        slurm.sbatch_args.push_back(arg);
      }
    }
    if (s.has("slots_per_node"))
      slurm.slots_per_node = static_cast<int>(s.child("slots_per_node").as_int({1, 4096}));
    if (s.has("gpu_type")) slurm.gpu_type = s.child("gpu_type").as_string();
    for (char ch : slurm.gpu_type)
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-' && ch != '.')
        s.child("gpu_type").fail_msg("a GPU type name (letters, digits, '_', '-', '.'), e.g. a100");
  }
  c.slurm = slurm;
}

ExperimentConfig parse_root(const Node& root, const std::string& source) {
  ExperimentConfig c;
  c.source = source;
  auto map = std::make_shared<SourceMap>();
  if (!root.is_map()) root.fail("a mapping of experiment settings");
  root.check_keys({"name",
                   "description",
                   "labels",
                   "data",
                   "entrypoint",
                   "hyperparameters",
                   "searcher",
                   "records_per_epoch",
                   "min_validation_period",
                   "min_checkpoint_period",
                   "scheduling_unit",
                   "perform_initial_validation",
                   "checkpoint_policy",
                   "checkpoint_storage",
                   "max_restarts",
                   "resources",
                   "reproducibility",
                   "optimizations",
                   "profiling",
                   "environment",
                   "bind_mounts",
                   "debug",
                   "workspace",
                   "project",
                   "log_policies",
                   "retention_policy",
                   "integrations",
                   "slurm",
                   "pbs",
                   "security",
                   "tensorboard_storage",
                   "preemption_timeout"});
  if (root.has("name")) c.name = root.child("name").as_string();
  if (root.has("description")) c.description = root.child("description").as_string();
  if (root.has("labels")) {
    Node l = root.child("labels");
    if (!l.is_seq()) l.fail("a list of strings");
    for (size_t i = 0; i < l.yaml().size(); ++i) c.labels.push_back(l.item(i).as_string());
  }
  if (root.has("data")) {
    root.child("data").expect_map();
    c.data = yaml_to_json(root.child("data").yaml());
    record_tree(*map, "data", root.child("data"));
  }
  if (root.has("entrypoint")) {
    Node e = root.child("entrypoint");
    if (e.is_seq()) {
      std::vector<std::string> parts;
      for (size_t i = 0; i < e.yaml().size(); ++i) parts.push_back(e.item(i).as_string());
      c.entrypoint = util::join(parts, " ");
    } else {
      c.entrypoint = e.as_string();
    }
  }
  c.hyperparameters = parse_hparam_space(root.child("hyperparameters"), "hyperparameters", *map);
  check_harness_hparams(c.hyperparameters, root.child("hyperparameters"));
  c.searcher = parse_searcher(root.child("searcher"));
  if (c.searcher.name == "grid") {
    const double points = grid_points(c.hyperparameters);
    if (points > static_cast<double>(kMaxGridPoints))
      root.child("hyperparameters")
          .fail_msg("the grid has " + count_text(points) + " points, more than " +
                    std::to_string(kMaxGridPoints) +
                    "; lower the counts or use the random or adaptive_asha searcher");
  }
  if (root.has("records_per_epoch"))
    c.records_per_epoch = root.child("records_per_epoch").as_int(kPeriodRange);
  if (root.has("min_validation_period"))
    c.min_validation_period = parse_length(root.child("min_validation_period"), kPeriodRange);
  if (root.has("min_checkpoint_period"))
    c.min_checkpoint_period = parse_length(root.child("min_checkpoint_period"), kPeriodRange);
  if (root.has("scheduling_unit"))
    c.scheduling_unit = root.child("scheduling_unit").as_int(kSchedulingUnitRange);
  if (root.has("perform_initial_validation"))
    c.perform_initial_validation = root.child("perform_initial_validation").as_bool();
  if (root.has("checkpoint_policy"))
    c.checkpoint_policy = root.child("checkpoint_policy").as_enum({"best", "all", "none"});
  if (root.has("checkpoint_storage"))
    c.checkpoint_storage = parse_storage(root.child("checkpoint_storage"));
  if (root.has("tensorboard_storage")) {
    Node tb = root.child("tensorboard_storage");
    tb.expect_map();
    if (tb.has("type") && tb.child("type").as_string() != "shared_fs")
      tb.child("type").fail_msg(
          "det writes TensorBoard files to a shared_fs directory (host_path, storage_path); "
          "remove tensorboard_storage to keep them in the run directory");
    for (const auto* k : {"save_experiment_best", "save_trial_best", "save_trial_latest"})
      if (tb.has(k))
        tb.child(k).fail_msg("tensorboard_storage keeps no checkpoints; remove '" + std::string(k) +
                             "'");
    c.tensorboard_storage = parse_storage(tb);
  }
  if (root.has("max_restarts"))
    c.max_restarts = static_cast<int>(root.child("max_restarts").as_int(kMaxRestartsRange));
  if (root.has("resources")) {
    Node r = root.child("resources");
    r.check_keys({"slots_per_trial", "max_slots", "weight", "priority", "shm_size", "resource_pool",
                  "is_single_node", "devices", "native_parallel", "agent_label"});
    if (r.has("slots_per_trial"))
      c.resources.slots_per_trial =
          static_cast<int>(r.child("slots_per_trial").as_int(kSlotsPerTrialRange));
    if (r.has("max_slots")) {
      c.resources.max_slots = static_cast<int>(r.child("max_slots").as_int(kMaxSlotsRange));
      if (*c.resources.max_slots < c.resources.slots_per_trial)
        r.child("max_slots")
            .fail_msg("max_slots " + std::to_string(*c.resources.max_slots) +
                      " is below slots_per_trial " + std::to_string(c.resources.slots_per_trial) +
                      ": no trial could ever run; raise max_slots or remove it");
    }
    if (r.has("weight")) c.resources.weight = r.child("weight").as_double(kWeightRange);
    if (r.has("priority"))
      c.resources.priority = static_cast<int>(r.child("priority").as_int(kPriorityRange));
    if (r.has("resource_pool")) c.resources.resource_pool = r.child("resource_pool").as_string();
  }
  if (root.has("slurm")) parse_slurm(root.child("slurm"), c);
  if (root.has("reproducibility")) {
    Node r = root.child("reproducibility");
    r.check_keys({"experiment_seed"});
    if (r.has("experiment_seed"))
      c.experiment_seed = static_cast<uint32_t>(r.child("experiment_seed").as_int(kSeedRange));
  }
  if (root.has("optimizations")) {
    Node o = root.child("optimizations");
    o.check_keys({"aggregation_frequency", "average_aggregated_gradients",
                  "average_training_metrics", "gradient_compression", "mixed_precision",
                  "tensor_fusion_threshold", "tensor_fusion_cycle_time", "auto_tune_tensor_fusion",
                  "grad_updates_size_file", "fail_on_non_finite", "cudnn_benchmark", "tf32",
                  "channels_last"});
    if (o.has("cudnn_benchmark"))
      c.optimizations.cudnn_benchmark = o.child("cudnn_benchmark").as_bool();
    if (o.has("tf32")) c.optimizations.tf32 = o.child("tf32").as_bool();
    if (o.has("channels_last")) c.optimizations.channels_last = o.child("channels_last").as_bool();
    if (o.has("fail_on_non_finite"))
      c.optimizations.fail_on_non_finite = o.child("fail_on_non_finite").as_bool();
    if (o.has("aggregation_frequency"))
      c.optimizations.aggregation_frequency =
          static_cast<int>(o.child("aggregation_frequency").as_int(kAggregationRange));
    if (o.has("average_aggregated_gradients"))
      c.optimizations.average_aggregated_gradients =
          o.child("average_aggregated_gradients").as_bool();
    if (o.has("average_training_metrics"))
      c.optimizations.average_training_metrics = o.child("average_training_metrics").as_bool();
    if (o.has("gradient_compression"))
      c.optimizations.gradient_compression = o.child("gradient_compression").as_bool();
    if (o.has("mixed_precision"))
      c.optimizations.mixed_precision =
          o.child("mixed_precision").as_enum({"O0", "O1", "O2", "O3", "fp16", "bf16"});
  }
  if (root.has("profiling")) {
    Node p = root.child("profiling");
    p.check_keys({"enabled", "begin_on_batch", "end_after_batch", "sync_timings"});
    if (p.has("enabled")) c.profiling.enabled = p.child("enabled").as_bool();
    if (p.has("begin_on_batch"))
      c.profiling.begin_on_batch = p.child("begin_on_batch").as_int(kBatchIndexRange);
    if (p.has("end_after_batch"))
      c.profiling.end_after_batch = p.child("end_after_batch").as_int(kBatchIndexRange);
    if (p.has("sync_timings")) c.profiling.sync_timings = p.child("sync_timings").as_bool();
  }
  if (root.has("debug")) c.debug = root.child("debug").as_bool();
  if (root.has("workspace")) c.workspace = root.child("workspace").as_string();
  if (root.has("project")) c.project = root.child("project").as_string();
  c.sources = std::move(map);
  check_implemented(root, c);
  return c;
}

nlohmann::json length_json(const Length& l) { return {{unit_name(l.unit), l.value}}; }

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

nlohmann::json to_json(const ExperimentConfig& c) {
  nlohmann::json j;
  j["name"] = c.name;
  j["description"] = c.description;
  j["labels"] = c.labels;
  j["data"] = c.data;
  j["entrypoint"] = c.entrypoint;
  j["hyperparameters"] = to_json(c.hyperparameters);
  nlohmann::json s = {{"name", c.searcher.name},
                      {"metric", c.searcher.metric},
                      {"smaller_is_better", c.searcher.smaller_is_better}};
  if (c.searcher.max_length) s["max_length"] = length_json(*c.searcher.max_length);
  const auto& n = c.searcher.name;
  const bool adaptive = n == "adaptive_asha" || n == "bohb";
  if (n == "random" || n == "async_halving" || adaptive) s["max_trials"] = c.searcher.max_trials;
  if (n != "single") s["max_concurrent_trials"] = c.searcher.max_concurrent_trials;
  if (n == "async_halving" || adaptive) {
    s["divisor"] = c.searcher.divisor;
    s["stop_once"] = c.searcher.stop_once;
  }
  if (n == "async_halving") s["num_rungs"] = c.searcher.num_rungs;
  if (adaptive) {
    s["mode"] = c.searcher.mode;
    s["max_rungs"] = c.searcher.max_rungs;
    s["bracket_rungs"] = c.searcher.bracket_rungs;
  }
  if (n == "bohb") {
    s["random_fraction"] = c.searcher.random_fraction;
    s["top_fraction"] = c.searcher.top_fraction;
    if (c.searcher.min_observations > 0) s["min_observations"] = c.searcher.min_observations;
    s["candidates"] = c.searcher.candidates;
    s["bandwidth_factor"] = c.searcher.bandwidth_factor;
  }
  if (c.searcher.source_trial_id) s["source_trial_id"] = *c.searcher.source_trial_id;
  if (c.searcher.source_checkpoint_uuid)
    s["source_checkpoint_uuid"] = *c.searcher.source_checkpoint_uuid;
  j["searcher"] = s;
  j["records_per_epoch"] = c.records_per_epoch;
  j["min_validation_period"] = length_json(c.min_validation_period);
  j["min_checkpoint_period"] = length_json(c.min_checkpoint_period);
  j["scheduling_unit"] = c.scheduling_unit;
  j["perform_initial_validation"] = c.perform_initial_validation;
  j["checkpoint_policy"] = c.checkpoint_policy;
  auto st = c.storage();
  nlohmann::json cs = {{"type", st.type},
                       {"save_experiment_best", st.save_experiment_best},
                       {"save_trial_best", st.save_trial_best},
                       {"save_trial_latest", st.save_trial_latest}};
  if (st.type == "shared_fs") {
    cs["host_path"] = st.host_path.empty() ? fs::path("runs").string() : st.host_path;
    if (!st.storage_path.empty()) cs["storage_path"] = st.storage_path;
  } else {
    cs["container_path"] = st.host_path;
  }
  j["checkpoint_storage"] = cs;
  if (c.tensorboard_storage) {
    nlohmann::json tb = {{"type", "shared_fs"}, {"host_path", c.tensorboard_storage->host_path}};
    if (!c.tensorboard_storage->storage_path.empty())
      tb["storage_path"] = c.tensorboard_storage->storage_path;
    j["tensorboard_storage"] = tb;
  }
  j["max_restarts"] = c.max_restarts;
  nlohmann::json r = {{"slots_per_trial", c.resources.slots_per_trial},
                      {"weight", c.resources.weight}};
  if (c.resources.max_slots) r["max_slots"] = *c.resources.max_slots;
  if (c.resources.priority) r["priority"] = *c.resources.priority;
  if (!c.resources.resource_pool.empty()) r["resource_pool"] = c.resources.resource_pool;
  j["resources"] = r;
  if (c.slurm) {
    nlohmann::json sl = {{"sbatch_args", c.slurm->sbatch_args}};
    if (c.slurm->slots_per_node) sl["slots_per_node"] = *c.slurm->slots_per_node;
    if (!c.slurm->gpu_type.empty()) sl["gpu_type"] = c.slurm->gpu_type;
    j["slurm"] = sl;
  }
  j["reproducibility"] = nlohmann::json::object();
  if (c.experiment_seed) j["reproducibility"]["experiment_seed"] = *c.experiment_seed;
  j["optimizations"] = {
      {"aggregation_frequency", c.optimizations.aggregation_frequency},
      {"average_aggregated_gradients", c.optimizations.average_aggregated_gradients},
      {"average_training_metrics", c.optimizations.average_training_metrics},
      {"gradient_compression", c.optimizations.gradient_compression},
      {"mixed_precision", c.optimizations.mixed_precision},
      {"fail_on_non_finite", c.optimizations.fail_on_non_finite},
      {"cudnn_benchmark", c.optimizations.cudnn_benchmark},
      {"channels_last", c.optimizations.channels_last}};
  if (c.optimizations.tf32) j["optimizations"]["tf32"] = *c.optimizations.tf32;
  nlohmann::json p = {{"enabled", c.profiling.enabled},
                      {"begin_on_batch", c.profiling.begin_on_batch},
                      {"sync_timings", c.profiling.sync_timings}};
  if (c.profiling.end_after_batch) p["end_after_batch"] = *c.profiling.end_after_batch;
  j["profiling"] = p;
  j["debug"] = c.debug;
  if (!c.workspace.empty()) j["workspace"] = c.workspace;
  if (!c.project.empty()) j["project"] = c.project;
  return j;
}

}  // namespace det::config
