#include "sections.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>

#include "det/util/strings.h"

namespace det::config::detail {
namespace fs = std::filesystem;

namespace {

const Range kCountRange{1, 100'000};
const Range kIntHparamRange{-1e15, 1e15};
constexpr double kMaxRungFactor = 1e9;  // divisor^(rungs - 1): the widest rung ratio

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

// minval, maxval (and count) of an int, double or log hyperparameter.
void parse_hparam_range(const Node& n, const std::string& type, bool integer, Hyperparameter& hp) {
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
}

void parse_log_base(const Node& n, Hyperparameter& hp) {
  if (!n.has("base"))
    n.fail_msg("a 'log' hyperparameter needs 'base' (minval and maxval are exponents)");
  hp.base = n.child("base").as_double(Range::greater_than(0));
  if (!std::isfinite(std::pow(hp.base, hp.maxval)) || !std::isfinite(std::pow(hp.base, hp.minval)))
    n.child("maxval").fail_msg(
        "base^maxval or base^minval overflows a double; give smaller exponents");
}

// A mapping with `type`: const, int, double, log or categorical.
void parse_typed_hparam(const Node& n, const std::string& logical, SourceMap& map,
                        Hyperparameter& hp) {
  using T = Hyperparameter::Type;
  const std::string type =
      n.child("type").as_enum({"const", "int", "double", "log", "categorical"});
  if (type == "const") {
    n.check_keys({"type", "val"});
    if (!n.yaml()["val"].IsDefined()) n.fail_msg("a 'const' hyperparameter needs 'val'");
    hp.type = T::kConst;
    hp.val = yaml_to_json(n.yaml()["val"]);
    record_tree(map, logical, n.child("val"));  // the trial sees the value itself
  } else if (type == "int" || type == "double") {
    n.check_keys({"type", "minval", "maxval", "count"});
    hp.type = type == "int" ? T::kInt : T::kDouble;
    parse_hparam_range(n, type, type == "int", hp);
  } else if (type == "log") {
    n.check_keys({"type", "minval", "maxval", "base", "count"});
    hp.type = T::kLog;
    parse_hparam_range(n, type, false, hp);
    parse_log_base(n, hp);
  } else {
    n.check_keys({"type", "vals"});
    hp.type = T::kCategorical;
    Node vals = n.child("vals");
    if (!vals.is_seq() || vals.yaml().size() == 0) vals.fail("a non-empty list");
    for (const auto& v : vals.yaml()) hp.vals.push_back(yaml_to_json(v));
  }
}

Hyperparameter parse_hparam(const Node& n, const std::string& logical, SourceMap& map) {
  Hyperparameter hp;
  n.record(map, logical);
  if (!n.is_map()) {  // a scalar or list is a constant
    hp.type = Hyperparameter::Type::kConst;
    hp.val = yaml_to_json(n.yaml());
    record_tree(map, logical, n);
  } else if (!n.yaml()["type"].IsDefined()) {  // a map without `type` nests hyperparameters
    hp.type = Hyperparameter::Type::kNested;
    hp.nested = parse_hparam_space(n, logical, map);
  } else {
    parse_typed_hparam(n, logical, map, hp);
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

}  // namespace

// divisor^(rungs - 1) is the ratio of the longest rung to the shortest; past kMaxRungFactor the
// searcher's integer arithmetic would overflow and the short rungs would be empty.
void check_rung_factor(const Node& n, double divisor, int64_t rungs) {
  const double factor = std::pow(divisor, static_cast<double>(rungs - 1));
  if (!(factor <= kMaxRungFactor))
    n.fail_msg("divisor^(rungs - 1) = " + count_text(factor) +
               " is more than 1000000000; use fewer rungs or a smaller divisor");
}

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

nlohmann::json length_json(const Length& l) { return {{unit_name(l.unit), l.value}}; }

HyperparameterSpace parse_hyperparameters(const Node& n, SourceMap& map) {
  HyperparameterSpace space = parse_hparam_space(n, "hyperparameters", map);
  check_harness_hparams(space, n);
  return space;
}

void check_grid_size(const HyperparameterSpace& space, const Node& hparams) {
  const double points = grid_points(space);
  if (points > static_cast<double>(kMaxGridPoints))
    hparams.fail_msg("the grid has " + count_text(points) + " points, more than " +
                     std::to_string(kMaxGridPoints) +
                     "; lower the counts or use the random or adaptive_asha searcher");
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

std::string parse_storage_type(const Node& n) {
  n.expect_map();
  if (!n.has("type")) return "shared_fs";
  const std::string type =
      n.child("type").as_enum({"shared_fs", "directory", "s3", "gcs", "azure"});
  if (type == "s3" || type == "gcs" || type == "azure")
    n.child("type").fail_msg(
        "checkpoint storage type '" + type +
        "' is not available in det; use shared_fs (host_path) or directory (container_path)");
  return type;
}

CheckpointStorageConfig parse_storage(const Node& n, const std::string& type,
                                      const std::vector<std::string>& known) {
  CheckpointStorageConfig c;
  c.type = type;
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
  auto count = [&](const char* key, int& out) {
    if (n.has(key)) out = static_cast<int>(n.child(key).as_int(kSaveCountRange));
  };
  count("save_experiment_best", c.save_experiment_best);
  count("save_trial_best", c.save_trial_best);
  count("save_trial_latest", c.save_trial_latest);
  return c;
}

namespace {

// The sbatch options det sets for every trial's job: a second value would break the trial's
// ranks or the runner's view of its job.
const std::vector<std::string> kOwnedSbatchOptions = {"-J",
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

void check_sbatch_arg(const Node& item, const std::string& arg) {
  if (arg.size() < 2 || arg[0] != '-')
    item.fail_msg("an sbatch option starting with '-' (e.g. --partition=gpu), not " +
                  util::quote(arg) + "; write an option and its value as one item");
  if (arg.size() > 4096) item.fail_msg("an sbatch option of at most 4096 characters");
  const std::string name = arg.substr(0, arg.find('='));
  const bool short_with_value = arg.size() > 2 && arg[1] != '-';
  for (const auto& o : kOwnedSbatchOptions)
    if (name == o || (short_with_value && o.size() == 2 && arg.compare(0, 2, o) == 0))
      item.fail_msg(util::quote(arg) +
                    " is set by det for every trial's job (job name, output, tasks, nodes, "
                    "requeueing); remove it (slots: resources.slots_per_trial and "
                    "slurm.slots_per_node)");
}

}  // namespace

std::vector<std::string> parse_sbatch_args(const Node& a) {
  if (!a.is_seq()) a.fail("a list of sbatch options, e.g. [--partition=gpu, --time=60]");
  std::vector<std::string> args;
  for (size_t i = 0; i < a.yaml().size(); ++i) {
    const Node item = a.item(i);
    args.push_back(item.as_string());
    check_sbatch_arg(item, args.back());
  }
  return args;
}

std::string parse_gpu_type(const Node& n) {
  const std::string type = n.as_string();
  for (char ch : type)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-' && ch != '.')
      n.fail_msg("a GPU type name (letters, digits, '_', '-', '.'), e.g. a100");
  return type;
}

}  // namespace det::config::detail
