#pragma once
/// \file
/// The worker protocol: what a trial worker and the experiment runner say to each other,
/// one JSON object per line in two append-only files (det/record/worker_channel.h). Also the
/// metrics report, which is both an event and a row of a trial's metrics.jsonl.
///
///   worker -> runner   {"v":3,"event":"report","report":{...MetricsReport...}}
///                      {"v":3,"event":"checkpoint","checkpoint":{...},"kept":[{...}]}
///                          the runner records it, answers {"v":3,"re":N,"recorded":"<uuid>"};
///                          only then does the worker delete checkpoints not in `kept`
///                      {"v":3,"event":"target_reached","length":L,"metric":M}
///                          the runner answers {"v":3,"re":N,"target":L2} (go on) or
///                          {"v":3,"re":N,"exit":true}
///                      {"v":3,"event":"exit","reason":"completed|stop_requested|stopped|invalid_hp|error|non_finite|storage","message":"..."}
///
/// An answer's "re" is the number (from 0) of the event it answers among the launch's events: a
/// runner that restarted may write an answer again, and the worker skips answers to events before
/// the one it waits on. Version 3 is det 0.3's (util::version()). Version 2 (det 0.2, over pipes)
/// had no "re"; version 1 (det 0.1) had no "v" and sent reports as
/// {"event":"training"|"validation", "batches":B,"report":{...}}; decode_event still reads both.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/record/checkpoint.h"

namespace det::record {

/// The protocol version written.
constexpr int kProtocolVersion = 3;

/// A worker's exit status when its trial rejected its hyperparameters (InvalidHP). Besides it:
/// 0 done or paused, 130 stopped by a signal, 1 failed.
constexpr int kWorkerExitInvalidHP = 3;

/// `metrics` with every NaN or infinite number written as the string "NaN", "Infinity" or
/// "-Infinity" (JSON has no such numbers: a NaN would otherwise become null).
nlohmann::json portable_metrics(const nlohmann::json& metrics);

/// A metric's value: a number, or one of the strings portable_metrics writes; else nullopt.
std::optional<double> metric_value(const nlohmann::json& value);

/// One training report (the average over the batches since the last report) or one validation.
struct MetricsReport {
  /// Training or validation.
  enum class Kind { kTraining, kValidation };
  /// Whether `metrics` averages training batches or is one validation.
  Kind kind = Kind::kTraining;
  int64_t trial_id = 0;  ///< The trial's number in the experiment.
  int64_t batches = 0;   ///< batches_trained when reported.
  double epochs = 0;     ///< batches / batches per epoch.
  nlohmann::json metrics =
      nlohmann::json::object();  ///< name -> number, null, or "NaN"/"Infinity"/"-Infinity".
  /// Training only: samples_per_second, batches_per_second, data_wait_fraction; with fp16 loss
  /// scaling loss_scale and skipped_steps; on CUDA peak_memory_bytes (peak allocated since the
  /// previous report).
  nlohmann::json throughput;
  /// Training only: each optimizer parameter group's learning rate when reported, "lr" for a
  /// trial's only group, else "lr/<optimizer>.<group>" (indices from 0).
  nlohmann::json learning_rates = nlohmann::json::object();
  int ranks = 1;       ///< Data-parallel ranks (training).
  double seconds = 0;  ///< Validation: how long it took.
  std::string time;    ///< UTC, ISO 8601.

  /// "training" or "validation".
  const char* kind_name() const { return kind == Kind::kTraining ? "training" : "validation"; }
  /// As JSON (a metrics.jsonl row).
  nlohmann::json to_json() const;
  /// Reads a report; throws det::Error naming `where` and the field.
  static MetricsReport from_json(const nlohmann::json& j, const std::string& where);
};

/// A checkpoint written (complete on disk), and which checkpoints the trial keeps.
struct CheckpointEvent {
  /// The new checkpoint: path is its final directory; until the runner answers `recorded` its
  /// files are complete under record::staging_dir(path).
  CheckpointRef checkpoint;
  std::vector<CheckpointRef> kept;  ///< After retention; the rest are deleted once recorded.
};

/// The trial reached the length the runner asked for and validated there.
struct TargetReached {
  int64_t length = 0;  ///< In the searcher's unit.
  double metric = 0;   ///< The searcher metric (NaN when the validation gave NaN).
};

/// The worker's last word before it exits.
struct WorkerExit {
  /// Why the worker exits.
  enum class Reason {
    kCompleted,
    kStopRequested,
    kStopped,
    kInvalidHP,
    kError,
    kNonFinite,
    kStorage
  };
  /// Why; reason_name() gives its protocol string.
  Reason reason = Reason::kCompleted;
  std::string message;  ///< One line, for invalid_hp and error.
};

/// Anything a worker sends.
using WorkerEvent = std::variant<MetricsReport, CheckpointEvent, TargetReached, WorkerExit>;

/// What the runner answers.
struct RunnerAnswer {
  /// Train on to `target`, exit (checkpoint and stop), or: the checkpoint `uuid` is recorded.
  enum class Kind { kTarget, kExit, kRecorded };
  Kind kind = Kind::kExit;  ///< What the answer says; only the matching field below is set.
  int64_t target = 0;       ///< kTarget: the total length to train to, in the searcher's unit.
  std::string uuid;         ///< kRecorded: the uuid of the checkpoint now recorded.
  int64_t re = -1;          ///< The number of the event answered (-1: none, version 2).
};

/// "completed", "stop_requested", "stopped", "invalid_hp", "error", "non_finite" or "storage".
const char* reason_name(WorkerExit::Reason reason);

/// One line (with its newline) for the worker's events file.
std::string encode(const WorkerEvent& event);
/// One line (with its newline) for the runner's answers file.
std::string encode(const RunnerAnswer& answer);
/// Parses a worker's line (versions 1 to 3). Throws det::Error quoting the line (cut short)
/// when it is not a valid event.
WorkerEvent decode_event(const std::string& line);
/// Parses the runner's line. Throws det::Error quoting the line when it is not a valid answer.
RunnerAnswer decode_answer(const std::string& line);

}  // namespace det::record
