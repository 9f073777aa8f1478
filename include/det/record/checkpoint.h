#pragma once
/// \file
/// Checkpoint records (torch-free): the trial state saved in every checkpoint, a
/// checkpoint's metadata.json, the reference reports and the store use, and the retention rule.
///
///   <trial>/checkpoints/<uuid>/metadata.json   CheckpointMetadata (this file's format)
///   <trial>/checkpoints/<uuid>/state.pt        LibTorch archive written by det::checkpoint

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/util/version.h"

namespace det::record {

/// What the loop knows about a trial's progress; saved in every checkpoint.
struct TrialState {
  int64_t trial_id = 1;  ///< The trial's number in its experiment, from 1.
  /// Batches trained so far (the data position on resume).
  int64_t batches_trained = 0;
  int64_t epochs_trained = 0;              ///< Whole epochs completed (at most batches_trained).
  std::optional<int64_t> last_validation;  ///< batches_trained at the last validation.
  std::optional<int64_t> last_checkpoint;  ///< batches_trained at the last checkpoint.
  std::optional<double> best_metric;       ///< Best searcher metric so far.
  /// As JSON (the `trial_state` object of metadata.json).
  nlohmann::json to_json() const;
};

/// A checkpoint as reports, experiment.json and the store name it.
struct CheckpointRef {
  std::string uuid;              ///< A random UUID (version 4): the checkpoint directory's name.
  std::filesystem::path path;    ///< The checkpoint directory.
  int64_t batches = 0;           ///< batches_trained when it was written.
  std::optional<double> metric;  ///< The searcher metric validated at the same batch, if any.
  /// As JSON: {uuid, batches, path, metric}.
  nlohmann::json to_json() const;
  /// Reads {uuid, batches, path, metric}; throws det::Error naming `where` and the field.
  static CheckpointRef from_json(const nlohmann::json& j, const std::string& where);
  /// Every field equal (uuid, path, batches, metric).
  bool operator==(const CheckpointRef& o) const;
};

/// Size and CRC-32 of one file of a checkpoint.
struct FileDigest {
  uint64_t size = 0;   ///< Bytes.
  uint32_t crc32 = 0;  ///< CRC-32 (zlib's) of the whole file.
};

/// A model saved in a checkpoint.
struct ModelInfo {
  std::string name;        ///< The module's name() (its class name unless it was given one).
  int64_t parameters = 0;  ///< Number of parameter elements (sum of numel()).
};

/// A checkpoint's metadata.json. Version 2 added `callbacks` (version 1 files are read as
/// having none); version 3 added `grad_scaler` (optional in every version).
struct CheckpointMetadata {
  /// The version written; readers accept 1..kFormatVersion.
  static constexpr int kFormatVersion = 3;
  /// The largest batches_trained a checkpoint may claim (2^53: exact in a double).
  static constexpr int64_t kMaxBatches = int64_t{1} << 53;

  /// 1..kFormatVersion; version 1 has no callbacks.
  int format_version = kFormatVersion;
  std::string uuid;  ///< Random UUID (version 4), also the directory's name.
  /// TORCH_VERSION of the writer; "" when a file lacks it.
  std::string libtorch_version;
  /// The det that wrote it (util::version()); "" in checkpoints written before the field.
  std::string det_version = util::version();
  std::string time;  ///< UTC, ISO 8601.
  /// The config's entrypoint (the trial's registered name).
  std::string entrypoint;
  std::string experiment_name;  ///< The config's name; may be empty.
  /// Progress when written; a resume continues from here.
  TrialState trial_state;
  uint32_t trial_seed = 0;  ///< The trial's seed; restored on resume.
  /// The trial's hyperparameter values (a JSON object).
  nlohmann::json hparams = nlohmann::json::object();
  int64_t epoch_len =
      0;  ///< Batches per epoch when written (the data position is trial_state's batch).
  std::vector<nlohmann::json> lr_schedulers;        ///< Each wrapped scheduler's state, in order.
  std::map<std::string, nlohmann::json> callbacks;  ///< Each callback's state, by name.
  /// The loss scaler's state (GradScaler::state_dict()) when the trial scales its loss.
  std::optional<nlohmann::json> grad_scaler;
  std::optional<double> searcher_metric;  ///< Validated at this batch, if any.
  /// The latest validation's metrics; none before a validation.
  std::optional<nlohmann::json> last_validation_metrics;
  /// The metrics of the best validation by the searcher metric.
  std::optional<nlohmann::json> best_validation_metrics;
  std::vector<ModelInfo> models;  ///< The wrapped models, in wrap_model order.
  int64_t num_optimizers = 0;     ///< Wrapped optimizers saved in state.pt, 0 to 1024.
  /// Every file of the checkpoint besides metadata.json, by plain file name.
  std::map<std::string, FileDigest> files;

  /// As metadata.json's JSON.
  nlohmann::json to_json() const;
  /// Reads and validates every field: types, ranges (batches 0..kMaxBatches, versions as
  /// integers 1..kFormatVersion), file names that stay inside the checkpoint directory, at least
  /// one file listed. Throws det::CheckpointError naming `where` (the metadata.json path) and
  /// the field.
  static CheckpointMetadata from_json(const nlohmann::json& j, const std::string& where);
};

/// The metadata file of a checkpoint directory.
inline constexpr const char* kMetadataFile = "metadata.json";

/// Reads and validates <dir>/metadata.json (at most 64 MiB). With `verify_files`, also checks
/// every file it lists: a regular file (no link) inside `dir`, with the recorded size and
/// CRC-32. Throws det::CheckpointError naming the directory and the problem (missing,
/// incomplete, truncated, corrupt, a newer format, a field out of range).
CheckpointMetadata read_checkpoint_metadata(const std::filesystem::path& dir,
                                            bool verify_files = true);

/// Where a checkpoint is written before it is committed: `<parent>/.tmp-<uuid>` for
/// `<parent>/<uuid>`. A staging directory is complete once the trial reports it; it becomes the
/// checkpoint only after the experiment recorder has recorded it (see worker_protocol.h).
std::filesystem::path staging_dir(const std::filesystem::path& checkpoint_dir);

/// Whether a directory name is a staging directory.
bool is_staging_name(const std::string& name);

/// Renames a staging directory to its checkpoint directory (atomic, then the parent is fsynced)
/// and returns the checkpoint directory. Throws det::CheckpointError when the rename fails.
std::filesystem::path commit_checkpoint(const std::filesystem::path& staging_dir);

/// Whether `name` is a plain file name inside a directory: not empty, no '/', not "." or "..",
/// no NUL. Names in a checkpoint's `files` must be.
bool is_plain_file_name(const std::string& name);

/// The retention rule (checkpoint_storage.save_trial_latest / save_trial_best): the `latest`
/// newest and the `best` best by metric (NaN last), and always the newest so the trial can
/// resume. Returns the kept ones in the order given.
std::vector<CheckpointRef> checkpoints_to_keep(const std::vector<CheckpointRef>& checkpoints,
                                               int latest, int best, bool smaller_is_better);

}  // namespace det::record
