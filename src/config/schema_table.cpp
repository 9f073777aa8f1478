// The table itself: every key of the experiment config, with how it is read and written and
// what det says about it. Adding a key is adding an entry here (and a member with its default
// to the struct in experiment_config.h it is read into).
#include <optional>

#include "schema.h"
#include "sections.h"

namespace det::config::detail {
namespace {

using json = nlohmann::json;

// How a typed value is read: a range for numbers, the allowed values for a string.
struct Spec {
  Range range;
  std::vector<std::string> choices = {};  // `{range}` alone is a whole Spec
};

void read_value(const Node& n, std::string& v, const Spec& s) {
  v = s.choices.empty() ? n.as_string() : n.as_enum(s.choices);
}
void read_value(const Node& n, bool& v, const Spec&) { v = n.as_bool(); }
void read_value(const Node& n, int64_t& v, const Spec& s) { v = n.as_int(s.range); }
void read_value(const Node& n, int& v, const Spec& s) { v = static_cast<int>(n.as_int(s.range)); }
void read_value(const Node& n, uint32_t& v, const Spec& s) {
  v = static_cast<uint32_t>(n.as_int(s.range));
}
void read_value(const Node& n, double& v, const Spec& s) { v = n.as_double(s.range); }
void read_value(const Node& n, Length& v, const Spec& s) { v = parse_length(n, s.range); }
void read_value(const Node& n, std::vector<std::string>& v, const Spec&) {
  if (!n.is_seq()) n.fail("a list of strings");
  for (size_t i = 0; i < n.yaml().size(); ++i) v.push_back(n.item(i).as_string());
}
template <class T>
void read_value(const Node& n, std::optional<T>& v, const Spec& s) {
  T t{};
  read_value(n, t, s);
  v = t;
}

template <class T>
void write_value(json& out, const std::string& name, const T& v) {
  out[name] = v;
}
void write_value(json& out, const std::string& name, const Length& v) {
  out[name] = length_json(v);
}
template <class T>
void write_value(json& out, const std::string& name, const std::optional<T>& v) {
  if (v) write_value(out, name, *v);
}

using C = ExperimentConfig;

// A member of the config, or of one of its sections, as an accessor that serves both the const
// config to_json reads and the one the parser fills.
template <class T>
auto member(T C::*m) {
  return [m](auto& c) -> auto& { return c.*m; };
}
template <class S, class T>
auto member(S C::*section, T S::*m) {
  return [ section, m ](auto& c) -> auto& { return (c.*section).*m; };
}
// A member of `slurm:` (read once the section's reader has made it).
template <class T>
auto slurm_member(T SlurmConfig::*m) {
  return [m](auto& c) -> auto& { return (*c.slurm).*m; };
}

// A key read into and written from the member `get` returns.
template <class Get>
Key field(std::string path, Get get, Spec spec = {}) {
  Key k;
  k.path = std::move(path);
  k.read = [get, spec](const Node& n, Reading& r) { read_value(n, get(r.config), spec); };
  k.write = [get](const ExperimentConfig& c, json& out, const std::string& name) {
    write_value(out, name, get(c));
  };
  return k;
}

// A key det accepts without reading it here: its section's reader reads it, or it is a notice.
Key accepted(std::string path) {
  Key k;
  k.path = std::move(path);
  return k;
}

// A mapping whose keys are the table's; `read` prepares the config for them.
Key section(std::string path, Key::Reader read = nullptr) {
  Key k;
  k.path = std::move(path);
  k.section = true;
  k.read = std::move(read);
  return k;
}

// A key written from the member `get` returns, read by `read` (more than one typed value).
template <class Get>
Key custom(std::string path, Get get, Key::Reader read) {
  Key k;
  k.path = std::move(path);
  k.read = std::move(read);
  k.write = [get](const ExperimentConfig& c, json& out, const std::string& name) {
    write_value(out, name, get(c));
  };
  return k;
}

bool any(const Node&) { return true; }
bool is_true(const Node& n) { return n.is_scalar() && n.as_bool(); }
bool is_false(const Node& n) { return !n.as_bool(); }

const std::vector<std::string> kAdaptive = {"adaptive_asha", "bohb"};
const std::vector<std::string> kHalving = {"async_halving", "adaptive_asha", "bohb"};
const std::vector<std::string> kSampling = {"random", "async_halving", "adaptive_asha", "bohb"};
const std::vector<std::string> kMany = {"random", "grid", "async_halving", "adaptive_asha", "bohb"};
const char* const kHorovod = "Horovod only; det averages gradients over c10d";
const char* const kCluster = "a cluster setting; ignored";
const char* const kContainer = "a container setting; ignored";
const char* const kUnderHost = "a container setting; det writes under host_path";
const char* const kMaster = "a Determined master's setting; ignored";
const char* const kScheduler = "a cluster scheduler's setting; det-run uses --slots";

// ---- readers and writers of the keys that are more than one typed value ----

void read_data(const Node& n, Reading& r) {
  n.expect_map();
  r.config.data = yaml_to_json(n.yaml());
  record_tree(r.sources, "data", n);
}

void read_entrypoint(const Node& n, Reading& r) {
  if (!n.is_seq()) {
    r.config.entrypoint = n.as_string();
    return;
  }
  std::vector<std::string> parts;
  read_value(n, parts, {});
  r.config.entrypoint = util::join(parts, " ");
}

void read_hyperparameters(const Node& n, Reading& r) {
  r.config.hyperparameters = parse_hyperparameters(n, r.sources);
}

void write_hyperparameters(const ExperimentConfig& c, json& out, const std::string& name) {
  out[name] = to_json(c.hyperparameters);
}

const Key& key_at(const std::string& path) {
  for (const Key& k : schema())
    if (k.path == path) return k;
  throw Error("config schema: no key " + path);
}

// The searcher's name comes first: the keys allowed beside it depend on it.
void read_searcher(const Node& n, Reading& r) {
  if (n.is_null())
    n.fail(
        "a searcher mapping (e.g. {name: single, metric: validation_loss, max_length: {epochs: "
        "1}})");
  n.expect_map();
  const Key& name = key_at("searcher.name");
  if (!n.has("name")) n.fail_msg(name.required);
  name.read(n.child("name"), r);
  SearcherConfig& s = r.config.searcher;
  n.check_keys(keys_under("searcher", s.name));
  read_keys(n, "searcher", r, s.name);
  if (s.name == "single") s.max_concurrent_trials = 1;
}

void write_searcher(const ExperimentConfig& c, json& out, const std::string& name) {
  out[name] = write_keys(c, "searcher");
}

void read_num_rungs(const Node& n, Reading& r) {
  SearcherConfig& s = r.config.searcher;
  s.num_rungs = static_cast<int>(n.as_int(kRungsRange));
  check_rung_factor(n, s.divisor, s.num_rungs);
}

void read_bracket_rungs(const Node& n, Reading& r) {
  SearcherConfig& s = r.config.searcher;
  if (!n.is_seq()) n.fail("a list of integers");
  if (n.yaml().size() > static_cast<size_t>(kRungsRange.max)) n.fail("at most 32 brackets");
  for (size_t i = 0; i < n.yaml().size(); ++i) {
    s.bracket_rungs.push_back(static_cast<int>(n.item(i).as_int(kRungsRange)));
    check_rung_factor(n.item(i), s.divisor, s.bracket_rungs.back());
  }
}

void read_checkpoint_storage(const Node& n, Reading& r) {
  const std::string type = parse_storage_type(n);
  r.config.checkpoint_storage = parse_storage(n, type, keys_under("checkpoint_storage", type));
}

// The storage in force, the default included.
void write_checkpoint_storage(const ExperimentConfig& c, json& out, const std::string& name) {
  const auto st = c.storage();
  json cs = {{"type", st.type},
             {"save_experiment_best", st.save_experiment_best},
             {"save_trial_best", st.save_trial_best},
             {"save_trial_latest", st.save_trial_latest}};
  if (st.type == "shared_fs") {
    cs["host_path"] = st.host_path.empty() ? std::string("runs") : st.host_path;
    if (!st.storage_path.empty()) cs["storage_path"] = st.storage_path;
  } else {
    cs["container_path"] = st.host_path;
  }
  out[name] = cs;
}

void read_tensorboard_storage(const Node& tb, Reading& r) {
  tb.expect_map();
  if (tb.has("type") && tb.child("type").as_string() != "shared_fs")
    tb.child("type").fail_msg(
        "det writes TensorBoard files to a shared_fs directory (host_path, storage_path); "
        "remove tensorboard_storage to keep them in the run directory");
  for (const auto* k : {"save_experiment_best", "save_trial_best", "save_trial_latest"})
    if (tb.has(k))
      tb.child(k).fail_msg("tensorboard_storage keeps no checkpoints; remove '" + std::string(k) +
                           "'");
  r.config.tensorboard_storage =
      parse_storage(tb, "shared_fs", keys_under("tensorboard_storage", "shared_fs"));
}

void write_tensorboard_storage(const ExperimentConfig& c, json& out, const std::string& name) {
  if (!c.tensorboard_storage) return;
  json tb = {{"type", "shared_fs"}, {"host_path", c.tensorboard_storage->host_path}};
  if (!c.tensorboard_storage->storage_path.empty())
    tb["storage_path"] = c.tensorboard_storage->storage_path;
  out[name] = tb;
}

void read_max_slots(const Node& n, Reading& r) {
  ResourcesConfig& res = r.config.resources;
  res.max_slots = static_cast<int>(n.as_int(kMaxSlotsRange));
  if (*res.max_slots < res.slots_per_trial)
    n.fail_msg("max_slots " + std::to_string(*res.max_slots) + " is below slots_per_trial " +
               std::to_string(res.slots_per_trial) +
               ": no trial could ever run; raise max_slots or remove it");
}

void read_mixed_precision(const Node& n, Reading& r) {
  const std::string v = n.as_enum({"O0", "O1", "O2", "O3", "fp16", "bf16"});
  // O3 is refused by its check below, with where and why.
  if (v != "O3") r.config.optimizations.mixed_precision = parse_precision(v);
}

void write_mixed_precision(const ExperimentConfig& c, json& out, const std::string& name) {
  out[name] = precision_name(c.optimizations.mixed_precision);
}

// ---- the table, in chunks: the top level, the searcher, storage, resources, optimizations ----

std::vector<Key> top_keys() {
  return {
      field("name", member(&C::name)),
      field("description", member(&C::description)),
      field("labels", member(&C::labels)),
      custom("data", member(&C::data), read_data),
      custom("entrypoint", member(&C::entrypoint), read_entrypoint),
  };
}

std::vector<Key> hyperparameter_and_searcher_keys() {
  Key hparams = accepted("hyperparameters");
  hparams.read = read_hyperparameters;
  hparams.always = true;
  hparams.write = write_hyperparameters;
  Key searcher = accepted("searcher");
  searcher.read = read_searcher;
  searcher.always = true;
  searcher.write = write_searcher;
  searcher.variant_of = [](const ExperimentConfig& c) { return c.searcher.name; };
  auto s = [](const char* name) { return std::string("searcher.") + name; };
  return {
      std::move(hparams),
      std::move(searcher),
      field(s("name"), member(&C::searcher, &SearcherConfig::name),
            {{}, {"single", "random", "grid", "async_halving", "adaptive_asha", "bohb", "custom"}})
          .need("the searcher needs a 'name' (single, random, grid, async_halving, adaptive_asha, "
                "bohb)")
          .refuse([](const Node& n) { return n.as_string() == "custom"; },
                  "det has no custom searchers; use single, random, grid, async_halving, "
                  "adaptive_asha or bohb"),
      field(s("metric"), member(&C::searcher, &SearcherConfig::metric))
          .need("the searcher needs a 'metric' (the validation metric to optimise, e.g. "
                "validation_loss)"),
      field(s("smaller_is_better"), member(&C::searcher, &SearcherConfig::smaller_is_better)),
      field(s("source_trial_id"), member(&C::searcher, &SearcherConfig::source_trial_id),
            {kTrialIdRange}),
      field(s("source_checkpoint_uuid"),
            member(&C::searcher, &SearcherConfig::source_checkpoint_uuid)),
      field(s("max_length"), member(&C::searcher, &SearcherConfig::max_length), {kLengthRange})
          .need("the searcher needs 'max_length' ({batches: n}, {records: n} or {epochs: n})"),
  };
}

std::vector<Key> searcher_method_keys() {
  auto s = [](const char* name) { return std::string("searcher.") + name; };
  return {
      field(s("max_trials"), member(&C::searcher, &SearcherConfig::max_trials), {kMaxTrialsRange})
          .only(kSampling)
          .need("the '{variant}' searcher needs 'max_trials'"),
      field(s("max_concurrent_trials"),
            member(&C::searcher, &SearcherConfig::max_concurrent_trials), {kMaxConcurrentRange})
          .only(kMany),
      field(s("mode"), member(&C::searcher, &SearcherConfig::mode),
            {{}, {"aggressive", "standard", "conservative"}})
          .only(kAdaptive),
      field(s("divisor"), member(&C::searcher, &SearcherConfig::divisor), {kDivisorRange})
          .only(kHalving),
      field(s("max_rungs"), member(&C::searcher, &SearcherConfig::max_rungs), {kRungsRange})
          .only(kAdaptive),
      custom(s("num_rungs"), member(&C::searcher, &SearcherConfig::num_rungs), read_num_rungs)
          .only({"async_halving"})
          .need("the 'async_halving' searcher needs 'num_rungs'"),
      field(s("stop_once"), member(&C::searcher, &SearcherConfig::stop_once)).only(kHalving),
      field(s("random_fraction"), member(&C::searcher, &SearcherConfig::random_fraction),
            {kFractionRange})
          .only({"bohb"}),
      field(s("top_fraction"), member(&C::searcher, &SearcherConfig::top_fraction),
            {kTopFractionRange})
          .only({"bohb"}),
      field(s("min_observations"), member(&C::searcher, &SearcherConfig::min_observations),
            {kObservationsRange})
          .only({"bohb"})
          .when([](const ExperimentConfig& c) { return c.searcher.min_observations > 0; }),
      field(s("candidates"), member(&C::searcher, &SearcherConfig::candidates), {kCandidatesRange})
          .only({"bohb"}),
      field(s("bandwidth_factor"), member(&C::searcher, &SearcherConfig::bandwidth_factor),
            {kBandwidthFactorRange})
          .only({"bohb"}),
      custom(s("bracket_rungs"), member(&C::searcher, &SearcherConfig::bracket_rungs),
             read_bracket_rungs)
          .only(kAdaptive),
  };
}

std::vector<Key> training_keys() {
  return {
      field("records_per_epoch", member(&C::records_per_epoch), {kPeriodRange})
          .notice(any, "ignored, as by Determined's PyTorchTrial: an epoch is the loader's length"),
      field("min_validation_period", member(&C::min_validation_period), {kPeriodRange}),
      field("min_checkpoint_period", member(&C::min_checkpoint_period), {kPeriodRange}),
      field("scheduling_unit", member(&C::scheduling_unit), {kSchedulingUnitRange}),
      field("perform_initial_validation", member(&C::perform_initial_validation)),
      field("checkpoint_policy", member(&C::checkpoint_policy), {{}, {"best", "all", "none"}}),
  };
}

std::vector<Key> storage_keys() {
  Key checkpoints = accepted("checkpoint_storage");
  checkpoints.read = read_checkpoint_storage;
  checkpoints.write = write_checkpoint_storage;
  const std::vector<std::string> shared{"shared_fs"};
  auto cs = [](const char* name) { return accepted(std::string("checkpoint_storage.") + name); };
  return {
      std::move(checkpoints),
      cs("type"),
      cs("save_experiment_best")
          .refuse([](const Node& n) { return n.as_int() > 0; },
                  "only save_trial_best and save_trial_latest are implemented; set 0 or remove it"),
      cs("save_trial_best"),
      cs("save_trial_latest"),
      cs("host_path").only(shared),
      cs("storage_path").only(shared),
      cs("propagation").only(shared).notice(any, kContainer),
      cs("container_path").notice(any, kUnderHost),
      cs("checkpoint_path").only(shared).notice(any, kUnderHost),
      cs("tensorboard_path").only(shared).notice(any, kContainer),
      field("max_restarts", member(&C::max_restarts), {kMaxRestartsRange}),
  };
}

std::vector<Key> resources_keys() {
  auto r = [](const char* name) { return std::string("resources.") + name; };
  return {
      section("resources"),
      field(r("slots_per_trial"), member(&C::resources, &ResourcesConfig::slots_per_trial),
            {kSlotsPerTrialRange}),
      custom(r("max_slots"), member(&C::resources, &ResourcesConfig::max_slots), read_max_slots),
      field(r("weight"), member(&C::resources, &ResourcesConfig::weight), {kWeightRange})
          .notice(any, kScheduler),
      field(r("priority"), member(&C::resources, &ResourcesConfig::priority), {kPriorityRange})
          .notice(any, kScheduler),
      accepted(r("shm_size")).notice(any, kContainer),
      field(r("resource_pool"), member(&C::resources, &ResourcesConfig::resource_pool))
          .when([](const ExperimentConfig& c) { return !c.resources.resource_pool.empty(); })
          .notice(any, kCluster),
      accepted(r("is_single_node")).notice(any, kCluster),
      accepted(r("devices")).notice(any, kContainer),
      accepted(r("native_parallel")).notice(any, kCluster),
      accepted(r("agent_label")).notice(any, kCluster),
      section("reproducibility"),
      field("reproducibility.experiment_seed", member(&C::experiment_seed), {kSeedRange}),
  };
}

std::vector<Key> optimizations_keys() {
  auto o = [](const char* name) { return std::string("optimizations.") + name; };
  Key precision = accepted(o("mixed_precision"));
  precision.read = read_mixed_precision;
  precision.write = write_mixed_precision;
  return {
      section("optimizations"),
      field(o("aggregation_frequency"),
            member(&C::optimizations, &OptimizationsConfig::aggregation_frequency),
            {kAggregationRange}),
      field(o("average_aggregated_gradients"),
            member(&C::optimizations, &OptimizationsConfig::average_aggregated_gradients)),
      field(o("average_training_metrics"),
            member(&C::optimizations, &OptimizationsConfig::average_training_metrics))
          .notice(is_false,
                  "ignored, as by Determined's PyTorchTrial: training metrics are always averaged "
                  "across ranks"),
      field(o("gradient_compression"),
            member(&C::optimizations, &OptimizationsConfig::gradient_compression))
          .refuse(is_true,
                  "gradient compression (fp16 allreduce) is not implemented; set false or remove "
                  "it"),
      std::move(precision).refuse(
          [](const Node& n) { return n.as_string() == "O3"; },
          "O3 (Apex's pure fp16: fp16 weights, no loss scaling) is not offered; use fp16 (O1/O2: "
          "fp16 autocast with FP32 weights and dynamic loss scaling), bf16, or O0"),
      accepted(o("tensor_fusion_threshold")).notice(any, kHorovod),
      accepted(o("tensor_fusion_cycle_time")).notice(any, kHorovod),
      accepted(o("auto_tune_tensor_fusion")).notice(any, kHorovod),
      accepted(o("grad_updates_size_file")).notice(any, kHorovod),
      field(o("fail_on_non_finite"),
            member(&C::optimizations, &OptimizationsConfig::fail_on_non_finite)),
      field(o("cudnn_benchmark"), member(&C::optimizations, &OptimizationsConfig::cudnn_benchmark)),
      field(o("tf32"), member(&C::optimizations, &OptimizationsConfig::tf32)),
      field(o("channels_last"), member(&C::optimizations, &OptimizationsConfig::channels_last)),
  };
}

std::vector<Key> profiling_and_cluster_keys() {
  auto p = [](const char* name) { return std::string("profiling.") + name; };
  return {
      section("profiling"),
      field(p("enabled"), member(&C::profiling, &ProfilingConfig::enabled))
          .refuse(is_true, "det has no profiler; set false or remove the profiling section"),
      field(p("begin_on_batch"), member(&C::profiling, &ProfilingConfig::begin_on_batch),
            {kBatchIndexRange}),
      field(p("end_after_batch"), member(&C::profiling, &ProfilingConfig::end_after_batch),
            {kBatchIndexRange}),
      field(p("sync_timings"), member(&C::profiling, &ProfilingConfig::sync_timings)),
      accepted("environment")
          .notice(any,
                  "container images and variables are a cluster's; det runs in this "
                  "environment"),
      accepted("bind_mounts").notice(any, kContainer),
      field("debug", member(&C::debug)),
      field("workspace", member(&C::workspace))
          .when([](const ExperimentConfig& c) { return !c.workspace.empty(); })
          .notice(any, kMaster),
      field("project", member(&C::project))
          .when([](const ExperimentConfig& c) { return !c.project.empty(); })
          .notice(any, kMaster),
      accepted("log_policies").notice(any, kMaster),
      accepted("retention_policy").notice(any, kMaster),
      accepted("integrations").notice(any, kMaster),
  };
}

std::vector<Key> slurm_and_tensorboard_keys() {
  Key slurm = section("slurm", [](const Node&, Reading& r) { r.config.slurm.emplace(); });
  slurm.written = [](const ExperimentConfig& c) { return c.slurm.has_value(); };
  Key tensorboard = accepted("tensorboard_storage");
  tensorboard.read = read_tensorboard_storage;
  tensorboard.write = write_tensorboard_storage;
  auto tb = [](const char* name) { return accepted(std::string("tensorboard_storage.") + name); };
  return {
      std::move(slurm),
      custom("slurm.sbatch_args", slurm_member(&SlurmConfig::sbatch_args),
             [](const Node& n, Reading& r) { r.config.slurm->sbatch_args = parse_sbatch_args(n); }),
      field("slurm.slots_per_node", slurm_member(&SlurmConfig::slots_per_node),
            {kSlotsPerNodeRange}),
      custom("slurm.gpu_type", slurm_member(&SlurmConfig::gpu_type),
             [](const Node& n, Reading& r) { r.config.slurm->gpu_type = parse_gpu_type(n); })
          .when([](const ExperimentConfig& c) { return !c.slurm->gpu_type.empty(); }),
      accepted("pbs").notice(any, "a Determined cluster's setting; ignored"),
      accepted("security").notice(any, kMaster),
      std::move(tensorboard),
      tb("type"),
      tb("host_path"),
      tb("storage_path"),
      tb("propagation").notice(any, kContainer),
      tb("container_path").notice(any, kUnderHost),
      tb("checkpoint_path").notice(any, kUnderHost),
      tb("tensorboard_path").notice(any, kUnderHost),
      accepted("preemption_timeout").notice(any, "a Determined cluster's setting; ignored"),
  };
}

std::vector<Key> all_keys() {
  std::vector<Key> keys;
  for (auto chunk : {top_keys, hyperparameter_and_searcher_keys, searcher_method_keys,
                     training_keys, storage_keys, resources_keys, optimizations_keys,
                     profiling_and_cluster_keys, slurm_and_tensorboard_keys})
    for (Key& k : chunk()) keys.push_back(std::move(k));
  return keys;
}

}  // namespace

const std::vector<Key>& schema() {
  static const std::vector<Key> keys = all_keys();
  return keys;
}

}  // namespace det::config::detail
