#pragma once
/// \file
/// The runner snapshot: the experiment runner's whole state (searcher and trials), saved in the
/// experiment store (det.db) after every decision; `det-run --resume-experiment` continues from
/// it. Version 1 is what det has written since the runner existed; older version-1 snapshots
/// without the launch fields (launches, job, events_offset, owed, ...) load with their defaults.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "det/record/states.h"

namespace det::record {

/// The answer the runner owes a worker for one of its events, kept until the worker moves on:
/// written again when a restarted runner re-attaches to a job that outlived its predecessor.
struct OwedAnswer {
  /// What is owed: a recorded checkpoint, or the searcher's decision after a validation (train
  /// on to the trial's target, or exit: decided when the answer is written).
  enum class Kind { kRecorded, kDecision };
  Kind kind = Kind::kDecision;  ///< What is owed.
  int64_t re = 0;               ///< The number of the event it answers (from 0, per launch).
  std::string uuid;             ///< kRecorded: the checkpoint's uuid.

  /// `{"re":N,"recorded":uuid}` or `{"re":N,"decision":true}`.
  nlohmann::json to_json() const;
  /// Reads to_json(); throws det::Error naming `where` and the field.
  static OwedAnswer from_json(const nlohmann::json& j, const std::string& where);
  /// Field by field.
  bool operator==(const OwedAnswer& o) const;
};

/// One trial as the runner saved it.
struct TrialSnapshot {
  /// @{
  /// The trial's number in the experiment (from 1) and its id in the store.
  int64_t id = 0, store_id = 0;
  /// @}
  std::string request_id;                    ///< The searcher's request id.
  TrialStatus state = TrialStatus::kPaused;  ///< PAUSED, QUEUED, RUNNING or a final state.
  std::optional<int64_t> target;             ///< The length it trains toward, if any.
  bool close_requested = false;              ///< The searcher closes it after that work.
  int restarts = 0;                          ///< Restarts after failures so far.
  int launches = 0;                          ///< Worker launches so far (the last one's K).
  std::string latest_checkpoint;             ///< Directory to resume from ("" = the start).
  int64_t checkpoint_batches = 0;            ///< Batches trained at that checkpoint.
  int64_t batches = 0;                       ///< Batches trained as last reported.
  std::string job;                           ///< The launch's job id ("" = none in flight).
  std::string node;                          ///< Where the job runs, once known.
  bool job_started = false;                  ///< The scheduler saw the job run.
  uint64_t events_offset = 0;                ///< Bytes of the launch's events consumed.
  int64_t events_seen = 0;                   ///< Events of the launch consumed.
  std::optional<OwedAnswer> owed;            ///< The answer its worker may still wait on.

  /// As the snapshot's JSON (`owed` null when none).
  nlohmann::json to_json() const;
  /// Reads to_json(); throws det::Error naming `where` and the field.
  static TrialSnapshot from_json(const nlohmann::json& j, const std::string& where);
};

/// The runner's whole state.
struct RunnerSnapshot {
  /// The version written; readers accept 1..kFormatVersion.
  static constexpr int kFormatVersion = 1;

  int format_version = kFormatVersion;  ///< As read; kFormatVersion when written.
  uint32_t experiment_seed = 0;         ///< The experiment seed.
  /// The searcher's own state (search::Searcher::snapshot(), opaque here).
  nlohmann::json searcher = nlohmann::json::object();
  int64_t next_trial = 1;             ///< The id the next created trial gets.
  std::vector<TrialSnapshot> trials;  ///< Every trial, by id.
  std::vector<int64_t> ready;         ///< The QUEUED trials in the order they wait for slots.
  std::string scheduler = "local";    ///< Where the trials run: local or slurm.
  int slots = 0;                      ///< The slot budget (0: not saved, older snapshots).

  /// The snapshot's JSON, as saved in the store.
  nlohmann::json to_json() const;
  /// Reads to_json() (version 1, with or without its later fields); throws det::Error naming
  /// `where` and the field.
  static RunnerSnapshot from_json(const nlohmann::json& j, const std::string& where);
};

}  // namespace det::record
