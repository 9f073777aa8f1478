#pragma once
/// \file
/// Commands to a running experiment's runner (`det-run pause`, `activate`, `cancel`, `kill`,
/// `kill-trial`, `set max-slots`) and the runner's answers: files in the run directory's
/// control/ (record::RunDir::control()), each written whole (a rename), so that a command reaches
/// the runner from any machine that sees the run directory, and survives the runner's death.
///
///   control/<id>.json     {"v":1,"command":"pause"}  {"v":1,"command":"kill_trial","trial":7}
///                         {"v":1,"command":"set_max_slots","slots":4}
///   control/<id>.answer   {"v":1,"ok":true,"message":"pausing: 2 trial(s) checkpoint and stop"}

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace det::record {

/// One command to the runner.
struct ControlCommand {
  /// The version written.
  static constexpr int kVersion = 1;
  /// What the runner is asked to do.
  enum class Kind { kPause, kActivate, kCancel, kKill, kKillTrial, kSetMaxSlots };
  Kind kind = Kind::kPause;  ///< The command.
  int64_t trial = 0;         ///< kKillTrial: the trial's number in the experiment.
  int slots = 0;             ///< kSetMaxSlots: the new slot budget.

  /// As JSON, with "v".
  nlohmann::json to_json() const;
  /// Reads a command; throws det::Error naming `where` and the field.
  static ControlCommand from_json(const nlohmann::json& j, const std::string& where);
};

/// The command's name as written: "pause", "activate", "cancel", "kill", "kill_trial",
/// "set_max_slots".
const char* to_string(ControlCommand::Kind kind);

/// The runner's answer to one command.
struct ControlAnswer {
  bool ok = false;      ///< Whether the runner took the command.
  std::string message;  ///< What it does about it, or why not (one line).

  /// As JSON, with "v".
  nlohmann::json to_json() const;
  /// Reads an answer; throws det::Error naming `where` and the field.
  static ControlAnswer from_json(const nlohmann::json& j, const std::string& where);
};

}  // namespace det::record
