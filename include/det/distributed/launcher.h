#pragma once
/// \file
/// det-launch: starts the ranks of one node with torchrun's environment, forwards signals,
/// and brings every rank down when one fails.

#include <chrono>
#include <exception>
#include <string>
#include <vector>

namespace det::distributed {

/// What to launch, torchrun's vocabulary.
struct LaunchOptions {
  int nproc_per_node = 1;  ///< Ranks started on this node, >= 1.
  int nnodes = 1;          ///< Nodes in the launch, >= 1.
  int node_rank = 0;       ///< This node's index, 0..nnodes-1.
  /// MASTER_ADDR given to every rank.
  std::string master_addr = "127.0.0.1";
  int master_port = 0;  ///< 0: a free port of this machine (one node only).
  /// How long ranks get after SIGTERM (sent when another rank failed) before SIGKILL.
  std::chrono::milliseconds kill_grace{5000};
  /// A rank whose heartbeat (a file its DistributedContext touches every second) is older than
  /// this is stopped or hung: the launcher names it and kills every rank. 0: no watch.
  std::chrono::milliseconds heartbeat_timeout{60000};
  std::vector<std::string> command;  ///< Program and arguments, run once per local rank.
};

/// How a launch ended.
struct LaunchResult {
  int exit_code = 0;     ///< 0, the failed rank's exit status, or 128 + its signal.
  int failed_rank = -1;  ///< The global rank that failed first (the root cause), or -1.
  std::string message;  ///< One line about that failure (also written to stderr), empty on success.
};

/// For a rank's top-level error handler: when the launcher asked for it (DET_ERROR_FILE, as
/// torchrun's error files), records the error's first line, the time and whether it is a
/// PeerFailure, so the launcher can name the rank that failed first rather than the first to exit.
void record_failure(const std::exception& error);

/// The heartbeat timeout from DET_HEARTBEAT_TIMEOUT (seconds; 0 turns the watch off), else 60 s.
/// Throws UsageError on a value that is not a whole number.
std::chrono::milliseconds heartbeat_timeout_from_env();

/// Runs `command` as ranks node_rank*nproc_per_node ... of nnodes*nproc_per_node, each with
/// RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, GROUP_WORLD_SIZE, ROLE_RANK,
/// ROLE_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, and waits for them. SIGINT and SIGTERM
/// received meanwhile are forwarded to every rank. When a rank exits non-zero (or is killed), the
/// others get SIGTERM, then SIGKILL after `kill_grace`; the result names the rank that failed
/// first: of the ranks that failed on their own (not by the launcher's signals), one whose error
/// was not a PeerFailure, the earliest by its recorded error time (else its exit time). Throws
/// UsageError on invalid options.
LaunchResult launch(const LaunchOptions& options);

}  // namespace det::distributed
