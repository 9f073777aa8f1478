#include "det/record/checkpoint.h"

#include <algorithm>
#include <set>

#include "det/config/metric.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/strings.h"
#include "fields.h"

namespace det::record {
namespace {

using json = nlohmann::json;
using CkptFields = detail::Fields<CheckpointError>;

json optional_json(const std::optional<int64_t>& v) { return v ? json(*v) : json(nullptr); }

TrialState trial_state_from(const CkptFields& f) {
  constexpr int64_t kMax = CheckpointMetadata::kMaxBatches;
  TrialState s;
  s.trial_id = f.get_int("trial_id", 0, kMax);
  s.batches_trained = f.get_int("batches_trained", 0, kMax);
  s.epochs_trained = f.get_int("epochs_trained", 0, s.batches_trained);
  s.last_validation = f.optional_int("last_validation", 0, s.batches_trained);
  s.last_checkpoint = f.optional_int("last_checkpoint", 0, s.batches_trained);
  s.best_metric = f.optional<double>("best_metric");
  return s;
}

}  // namespace

json TrialState::to_json() const {
  return {{"trial_id", trial_id},
          {"batches_trained", batches_trained},
          {"epochs_trained", epochs_trained},
          {"last_validation", optional_json(last_validation)},
          {"last_checkpoint", optional_json(last_checkpoint)},
          {"best_metric", best_metric ? json(*best_metric) : json(nullptr)}};
}

json CheckpointRef::to_json() const {
  return {{"uuid", uuid},
          {"batches", batches},
          {"path", path.string()},
          {"metric", metric ? json(*metric) : json(nullptr)}};
}

CheckpointRef CheckpointRef::from_json(const json& j, const std::string& where) {
  detail::Fields<Error> f(j, where);
  CheckpointRef r;
  r.uuid = f.get<std::string>("uuid");
  r.batches = f.get_int("batches", 0, CheckpointMetadata::kMaxBatches);
  r.path = f.get<std::string>("path");
  r.metric = f.optional<double>("metric");
  return r;
}

bool CheckpointRef::operator==(const CheckpointRef& o) const {
  return uuid == o.uuid && path == o.path && batches == o.batches && metric == o.metric;
}

bool is_plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos && name.size() <= 255;
}

json CheckpointMetadata::to_json() const {
  json j = {{"format_version", format_version},
            {"uuid", uuid},
            {"libtorch_version", libtorch_version},
            {"det_version", det_version},
            {"time", time},
            {"entrypoint", entrypoint},
            {"experiment_name", experiment_name},
            {"trial_state", trial_state.to_json()},
            {"trial_seed", trial_seed},
            {"hparams", hparams},
            {"data", {{"batches_trained", trial_state.batches_trained}, {"epoch_len", epoch_len}}},
            {"lr_schedulers", lr_schedulers},
            {"callbacks", callbacks},
            {"num_optimizers", num_optimizers}};
  j["models"] = json::array();
  for (const auto& m : models)
    j["models"].push_back({{"name", m.name}, {"parameters", m.parameters}});
  j["files"] = json::object();
  for (const auto& [name, d] : files) j["files"][name] = {{"size", d.size}, {"crc32", d.crc32}};
  if (searcher_metric) j["searcher_metric"] = *searcher_metric;
  if (last_validation_metrics) j["last_validation_metrics"] = *last_validation_metrics;
  if (best_validation_metrics) j["best_validation_metrics"] = *best_validation_metrics;
  if (grad_scaler) j["grad_scaler"] = *grad_scaler;
  return j;
}

namespace {

int format_version_of(const json& j, const std::string& where) {
  if (!j.contains("format_version"))
    throw CheckpointError(where + ": not a det checkpoint (no format_version)");
  const json& v = j["format_version"];
  if (!v.is_number_integer() || v.get<int64_t>() < 1 ||
      v.get<int64_t>() > CheckpointMetadata::kFormatVersion)
    throw CheckpointError(where + ": checkpoint format version " + util::shorten(v.dump(), 20) +
                          " is not supported by this det (it reads versions 1.." +
                          std::to_string(CheckpointMetadata::kFormatVersion) +
                          "; a newer det wrote it?)");
  return static_cast<int>(v.get<int64_t>());
}

// Where training stands: trial_state, the seed, the hyperparameters, the epoch.
void read_position(const CkptFields& f, CheckpointMetadata& m, const std::string& where) {
  constexpr int64_t kMax = CheckpointMetadata::kMaxBatches;
  m.trial_state = trial_state_from(f.child("trial_state"));
  // Every checkpoint is written at the batch it records as its last checkpoint.
  if (m.trial_state.last_checkpoint &&
      *m.trial_state.last_checkpoint != m.trial_state.batches_trained)
    throw CheckpointError(where + ": trial_state.batches_trained is " +
                          std::to_string(m.trial_state.batches_trained) +
                          " but the checkpoint was written at batch " +
                          std::to_string(*m.trial_state.last_checkpoint) +
                          " (trial_state.last_checkpoint): an edited checkpoint?");
  m.trial_seed = static_cast<uint32_t>(f.get_int("trial_seed", 0, 0xffffffffLL));
  m.hparams = f.get<json>("hparams");
  if (!m.hparams.is_object()) f.fail("hparams", "an object of hyperparameter values");
  auto data = f.child("data");
  m.epoch_len = data.get_int("epoch_len", 1, kMax);
  if (data.has("batches_trained") &&
      data.get_int("batches_trained", 0, kMax) != m.trial_state.batches_trained)
    throw CheckpointError(where +
                          ": data.batches_trained and trial_state.batches_trained disagree");
}

// The states saved beside the model: LR schedulers, callbacks, the loss scaler.
void read_states(const CkptFields& f, CheckpointMetadata& m) {
  for (const auto& s : f.array("lr_schedulers")) {
    if (!s.is_object()) f.fail("lr_schedulers", "a list of scheduler states (objects)");
    m.lr_schedulers.push_back(s);
  }
  if (m.format_version >= 2 || f.has("callbacks")) {
    auto cb = f.get<json>("callbacks");
    if (!cb.is_object()) f.fail("callbacks", "an object of callback states by name");
    for (auto it = cb.begin(); it != cb.end(); ++it) m.callbacks[it.key()] = it.value();
  }
  if (f.has("grad_scaler")) {
    m.grad_scaler = f.get<json>("grad_scaler");
    if (!m.grad_scaler->is_object()) f.fail("grad_scaler", "an object (the loss scaler's state)");
  }
}

void read_metrics(const CkptFields& f, CheckpointMetadata& m) {
  m.searcher_metric = f.optional<double>("searcher_metric");
  for (const auto* key : {"last_validation_metrics", "best_validation_metrics"})
    if (f.has(key) && !f.raw()[key].is_object()) f.fail(key, "an object of metrics");
  if (f.has("last_validation_metrics"))
    m.last_validation_metrics = f.get<json>("last_validation_metrics");
  if (f.has("best_validation_metrics"))
    m.best_validation_metrics = f.get<json>("best_validation_metrics");
}

// The files the checkpoint holds, with their sizes and CRCs: what verify() checks.
void read_files(const CkptFields& f, CheckpointMetadata& m, const std::string& where) {
  auto files = f.child("files");
  if (files.raw().empty())
    throw CheckpointError(
        where + ": field 'files' lists no file; the checkpoint cannot be verified (rewrite it)");
  for (auto it = files.raw().begin(); it != files.raw().end(); ++it) {
    if (!is_plain_file_name(it.key()))
      throw CheckpointError(where + ": field 'files' names " + util::shorten(it.key(), 60) +
                            ", which is not a plain file name inside the checkpoint directory");
    auto ff = files.child(it.key());
    m.files[it.key()] = {static_cast<uint64_t>(ff.get_int("size", 0, int64_t{1} << 50)),
                         static_cast<uint32_t>(ff.get_int("crc32", 0, 0xffffffffLL))};
  }
}

}  // namespace

CheckpointMetadata CheckpointMetadata::from_json(const json& j, const std::string& where) {
  CkptFields f(j, where);
  CheckpointMetadata m;
  m.format_version = format_version_of(j, where);
  m.uuid = f.get<std::string>("uuid");
  if (!is_plain_file_name(m.uuid)) f.fail("uuid", "a directory name");
  m.libtorch_version = f.value<std::string>("libtorch_version", "");
  m.det_version = f.value<std::string>("det_version", "");
  m.time = f.value<std::string>("time", "");
  m.entrypoint = f.value<std::string>("entrypoint", "");
  m.experiment_name = f.value<std::string>("experiment_name", "");
  read_position(f, m, where);
  read_states(f, m);
  read_metrics(f, m);
  for (size_t i = 0; i < f.array("models").size(); ++i) {
    detail::Fields<CheckpointError> mf(f.array("models")[i], where,
                                       "models[" + std::to_string(i) + "]");
    m.models.push_back(
        {mf.get<std::string>("name"), mf.get_int("parameters", 0, int64_t{1} << 50)});
  }
  m.num_optimizers = f.get_int("num_optimizers", 0, 1024);
  read_files(f, m, where);
  return m;
}

std::filesystem::path staging_dir(const std::filesystem::path& checkpoint_dir) {
  return checkpoint_dir.parent_path() / (".tmp-" + checkpoint_dir.filename().string());
}

bool is_staging_name(const std::string& name) { return name.rfind(".tmp-", 0) == 0; }

std::filesystem::path commit_checkpoint(const std::filesystem::path& staging) {
  const std::string name = staging.filename().string();
  if (!is_staging_name(name))
    throw CheckpointError(staging.string() + ": not a checkpoint staging directory");
  const std::filesystem::path final_dir = staging.parent_path() / name.substr(5);
  std::error_code ec;
  std::filesystem::rename(staging, final_dir, ec);
  if (ec)
    throw CheckpointError("cannot commit checkpoint " + final_dir.string() + ": " + ec.message());
  util::fsync_dir(staging.parent_path());
  return final_dir;
}

CheckpointMetadata read_checkpoint_metadata(const std::filesystem::path& dir, bool verify_files) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw CheckpointError(
        dir.string() +
        ": no such checkpoint directory (pass a directory under <trial>/checkpoints/)");
  const fs::path meta_path = dir / kMetadataFile;
  if (!fs::exists(meta_path, ec))
    throw CheckpointError(dir.string() +
                          ": not a det checkpoint (no metadata.json; it may be incomplete)");
  // Opened as a regular file first (a FIFO or a device named metadata.json is refused, never
  // waited on), then read to at most 64 MiB.
  const std::string text =
      util::ReadFile(meta_path, &util::throw_as<CheckpointError>,
                     "a checkpoint's metadata.json is a regular file written by det")
          .read_all(64u << 20, "a checkpoint's metadata");
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    throw CheckpointError(meta_path.string() + ": corrupt metadata (" +
                          util::shorten(e.what(), 100) + ")");
  }
  CheckpointMetadata meta = CheckpointMetadata::from_json(j, meta_path.string());
  // A checkpoint's directory is named by its uuid (or .tmp-<uuid> while it is staged).
  fs::path normal = fs::absolute(dir).lexically_normal();
  if (normal.filename().empty() && normal.has_parent_path()) normal = normal.parent_path();
  const std::string dir_name = normal.filename().string();
  if (dir_name != meta.uuid && dir_name != ".tmp-" + meta.uuid)
    throw CheckpointError(meta_path.string() + ": field 'uuid' is " + util::quote(meta.uuid) +
                          " but the directory is named " + util::quote(dir_name) +
                          " (a checkpoint's directory is named by its uuid: a copied or edited "
                          "checkpoint?)");
  if (!verify_files) return meta;
  for (const auto& [name, digest] : meta.files) {
    const fs::path f = dir / name;
    auto st = fs::symlink_status(f, ec);
    if (ec || !fs::exists(st))
      throw CheckpointError(dir.string() + ": " + name + " is missing (an incomplete checkpoint?)");
    if (!fs::is_regular_file(st))
      throw CheckpointError(
          f.string() +
          ": not a regular file (a checkpoint's files are never links or directories)");
    const auto size = fs::file_size(f, ec);
    if (size != digest.size)
      throw CheckpointError(f.string() + ": truncated or altered: " + std::to_string(size) +
                            " bytes, expected " + std::to_string(digest.size));
    if (util::file_crc32(f) != digest.crc32)
      throw CheckpointError(f.string() + ": corrupt: its checksum does not match metadata.json");
  }
  return meta;
}

std::vector<CheckpointRef> checkpoints_to_keep(const std::vector<CheckpointRef>& checkpoints,
                                               int latest, int best, bool smaller_is_better) {
  std::vector<const CheckpointRef*> by_time;
  for (const auto& c : checkpoints) by_time.push_back(&c);
  std::stable_sort(by_time.begin(), by_time.end(),
                   [](auto* a, auto* b) { return a->batches > b->batches; });
  std::set<std::string> keep;
  for (size_t i = 0; i < by_time.size() && (i < static_cast<size_t>(std::max(latest, 0)) || i == 0);
       ++i)
    keep.insert(by_time[i]->uuid);
  std::vector<const CheckpointRef*> by_metric;
  for (const auto& c : checkpoints)
    if (c.metric) by_metric.push_back(&c);
  std::stable_sort(by_metric.begin(), by_metric.end(), [&](auto* a, auto* b) {
    return config::is_better(*a->metric, *b->metric, smaller_is_better);
  });
  for (size_t i = 0; i < by_metric.size() && i < static_cast<size_t>(std::max(best, 0)); ++i)
    keep.insert(by_metric[i]->uuid);
  std::vector<CheckpointRef> out;
  for (const auto& c : checkpoints)
    if (keep.count(c.uuid)) out.push_back(c);
  return out;
}

}  // namespace det::record
