#pragma once
/// \file
/// TensorBoard event files, written by det itself: TFRecord framing (length, masked CRC32C of
/// the length, data, masked CRC32C of the data) around `tensorboard.Event` protocol buffers,
/// encoded by hand for the few fields det writes (file version, scalars, session logs and the
/// HParams plugin's summaries). TensorBoard reads the files as any other run's.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace det::record::tensorboard {

/// CRC-32C (Castagnoli) of `data`, continuing from `crc` (0 to start).
uint32_t crc32c(std::string_view data, uint32_t crc = 0);
/// TFRecord's masked CRC-32C: ((crc >> 15) | (crc << 17)) + 0xa282ead8.
uint32_t masked_crc32c(std::string_view data);
/// One TFRecord: little-endian uint64 length, its masked CRC, the data, the data's masked CRC.
std::string frame_record(std::string_view data);
/// The records of a TFRecord file, in order. A torn last record (a writer killed mid-write) is
/// left out; any other damage (a CRC mismatch) throws det::Error naming `where` and the offset.
std::vector<std::string> read_records(std::string_view file, const std::string& where);

/// The state of a `SessionLog` event; START makes TensorBoard forget every event at or after its
/// step (how a restarted trial replaces what it reported after its checkpoint).
enum class SessionStatus { kStart = 1, kStop = 2, kCheckpoint = 3 };

/// Encoded `tensorboard.Event` messages.
namespace event {
/// The first event of every file: file_version "brain.Event:2".
std::string file_version(double wall_time);
/// A scalar summary (`simple_value`) at `step`.
std::string scalar(double wall_time, int64_t step, const std::string& tag, double value);
/// A session log at `step`.
std::string session_log(double wall_time, int64_t step, SessionStatus status);
/// A summary value of plugin `plugin` with `content` as its plugin data (the HParams plugin's
/// form: a scalar float tensor 0 beside the metadata).
std::string plugin_summary(double wall_time, int64_t step, const std::string& tag,
                           const std::string& plugin, const std::string& content);
}  // namespace event

/// The HParams plugin's records (tensorboard/plugins/hparams/{api,plugin_data}.proto).
namespace hparams {
/// The summary tag of the experiment's record (in the root run).
inline constexpr const char* kExperimentTag = "_hparams_/experiment";
/// The summary tag of a session's (a trial's) start: its hyperparameters.
inline constexpr const char* kSessionStartTag = "_hparams_/session_start_info";
/// The summary tag of a session's end: its status.
inline constexpr const char* kSessionEndTag = "_hparams_/session_end_info";
/// The plugin's name in SummaryMetadata.plugin_data.
inline constexpr const char* kPluginName = "hparams";

/// One hyperparameter's column: its type and domain.
struct HParamInfo {
  /// api.proto's DataType.
  enum class Type { kString = 1, kBool = 2, kFloat64 = 3 };
  std::string name;                                   ///< The flattened name ("optimizer.lr").
  Type type = Type::kFloat64;                         ///< The values' type.
  std::optional<std::pair<double, double>> interval;  ///< A numeric range, or
  std::vector<nlohmann::json> discrete;               ///< the values it takes (when not empty).
};
/// One metric column (a scalar tag of each session's run).
struct MetricInfo {
  std::string tag;          ///< The scalar tag ("validation/validation_loss").
  bool validation = false;  ///< Computed on validation data (else training).
};
/// api.proto's Status of a session (a trial).
enum class Status { kUnknown = 0, kSuccess = 1, kFailure = 2, kRunning = 3 };

/// HParamsPluginData{experiment}: the columns.
std::string experiment(const std::string& name, const std::string& description, double time_created,
                       const std::vector<HParamInfo>& hparams,
                       const std::vector<MetricInfo>& metrics);
/// HParamsPluginData{session_start_info}: a trial's values (a flat object of numbers, strings
/// and booleans; anything else is written as its JSON text).
std::string session_start(const nlohmann::json& values, double start_time,
                          const std::string& model_uri);
/// HParamsPluginData{session_end_info}.
std::string session_end(Status status, double end_time);
}  // namespace hparams

/// Appends events to one event file, `events.out.tfevents.<seconds>.<host>.<sequence>` in a
/// directory: a new file per writer, named after every file already there so that TensorBoard,
/// which reads a run's files in name order, reads them in the order they were written. Each
/// append opens, writes and closes the file: a killed writer leaves at most a torn last record.
class EventFileWriter {
 public:
  /// Creates `dir` and the new file with its file_version event.
  explicit EventFileWriter(const std::filesystem::path& dir, double wall_time);
  /// The file.
  const std::filesystem::path& path() const { return path_; }
  /// Appends encoded events (see namespace event). Throws det::StorageError on a full disk.
  void append(const std::vector<std::string>& events);

 private:
  std::filesystem::path path_;
};

/// Seconds since the epoch of an ISO 8601 UTC time as det writes it ("2026-12-02T01:02:03.456Z");
/// nullopt when `iso` is not one.
std::optional<double> seconds_since_epoch(const std::string& iso);

}  // namespace det::record::tensorboard
