#include "det/distributed/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "det/distributed/distributed_context.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/heartbeat.h"
#include "det/util/process.h"
#include "det/util/strings.h"
#include "det/util/threads.h"

namespace det::distributed {

namespace {

using Clock = std::chrono::steady_clock;

volatile std::sig_atomic_t g_signal = 0;   // the last signal received, to forward
volatile std::sig_atomic_t g_signals = 0;  // how many were received

extern "C" void on_launcher_signal(int sig) {
  g_signal = sig;
  g_signals = g_signals + 1;
}

// A port nobody listens on now (the kernel picks it); rank 0 binds it moments later.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw DistributedError(std::string("det-launch: socket: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw DistributedError(std::string("det-launch: could not find a free port: ") +
                           std::strerror(errno));
  }
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

struct Child {
  pid_t pid = -1;
  int rank = 0, local_rank = 0;
  bool running = false;
  int status = 0;
  std::chrono::system_clock::time_point ended;
  // When the launcher first signalled it, and whether SIGKILL was among the signals.
  std::chrono::system_clock::time_point signalled = std::chrono::system_clock::time_point::max();
  bool sent_kill = false;
  void signal(int sig) {
    if (!running) return;
    ::kill(pid, sig);
    signalled = std::min(signalled, std::chrono::system_clock::now());
    sent_kill = sent_kill || sig == SIGKILL;
  }
};

int64_t unix_ns(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

}  // namespace

void record_failure(const std::exception& error) {
  const char* path = std::getenv("DET_ERROR_FILE");
  if (!path || !*path) return;
  std::string msg = error.what();
  msg = msg.substr(0, msg.find('\n'));
  nlohmann::json j = {{"message", msg},
                      {"peer_failure", dynamic_cast<const PeerFailure*>(&error) != nullptr},
                      {"unix_ns", unix_ns(std::chrono::system_clock::now())}};
  std::ofstream(path) << j.dump() << "\n";
}

std::chrono::milliseconds heartbeat_timeout_from_env() {
  const char* v = std::getenv("DET_HEARTBEAT_TIMEOUT");
  if (!v || !*v) return std::chrono::milliseconds(60000);
  char* end = nullptr;
  long long s = std::strtoll(v, &end, 10);
  if (*end != '\0' || s < 0 || s > 86400)
    throw UsageError("DET_HEARTBEAT_TIMEOUT='" + util::shorten(v, 20) +
                     "': give whole seconds from 0 (off) to 86400");
  return std::chrono::milliseconds(s * 1000);
}

LaunchResult launch(const LaunchOptions& o) {
  if (o.nproc_per_node < 1)
    throw UsageError("det-launch: --nproc-per-node must be >= 1, got " +
                     std::to_string(o.nproc_per_node));
  if (o.nnodes < 1)
    throw UsageError("det-launch: --nnodes must be >= 1, got " + std::to_string(o.nnodes));
  if (o.node_rank < 0 || o.node_rank >= o.nnodes)
    throw UsageError("det-launch: --node-rank " + std::to_string(o.node_rank) + " is not in [0, " +
                     std::to_string(o.nnodes) + ")");
  if (o.command.empty())
    throw UsageError("det-launch: no command given: det-launch --nproc-per-node N -- COMMAND ...");
  if (o.master_port < 0 || o.master_port > 65535)
    throw UsageError("det-launch: --master-port " + std::to_string(o.master_port) +
                     " is not a TCP port");
  int port = o.master_port;
  if (port == 0) {
    if (o.nnodes > 1)
      throw UsageError(
          "det-launch: --master-port is required with --nnodes > 1 (every node must use the same "
          "one)");
    port = free_port();
  }
  const int world = o.nnodes * o.nproc_per_node;

  // The ranks' environment: ours without the launch variables of an outer launcher.
  std::vector<std::string> base_env =
      util::environment({"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                         "GROUP_WORLD_SIZE", "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR",
                         "MASTER_PORT", "OMP_NUM_THREADS", "DET_ERROR_FILE"});
  const char* omp = std::getenv("OMP_NUM_THREADS");
  const std::string omp_threads = omp ? std::string("OMP_NUM_THREADS=") + omp : std::string();
  // Unless the user chose: each rank's share of the CPUs this launcher may use, so ranks do not
  // fight for cores (torchrun gives each one thread). It is the count det-run gives its ranks
  // under every other launcher (app::apply_intra_op_threads: the CPUs divided among the ranks on
  // the node), so a run trains bit for bit alike whichever launcher started it.
  if (!omp_threads.empty()) {
    base_env.push_back(omp_threads);
  } else if (o.nproc_per_node > 1) {
    base_env.push_back("OMP_NUM_THREADS=" +
                       std::to_string(std::max(1, util::usable_cpus() / o.nproc_per_node)));
  }
  // Where each rank records its error (record_failure), to tell the first failure from its echoes.
  char dir_template[] = "/tmp/det-launch-XXXXXX";
  const std::string error_dir = ::mkdtemp(dir_template) ? dir_template : "";
  auto error_file = [&](int rank) { return error_dir + "/rank" + std::to_string(rank) + ".json"; };
  auto heartbeat_file = [&](int rank) {
    return error_dir + "/rank" + std::to_string(rank) + ".alive";
  };
  std::vector<std::vector<std::string>> envs(static_cast<size_t>(o.nproc_per_node));
  std::vector<Child> children(static_cast<size_t>(o.nproc_per_node));
  for (int l = 0; l < o.nproc_per_node; ++l) {
    auto& env = envs[static_cast<size_t>(l)];
    env = base_env;
    int rank = o.node_rank * o.nproc_per_node + l;
    env.push_back("RANK=" + std::to_string(rank));
    env.push_back("WORLD_SIZE=" + std::to_string(world));
    env.push_back("LOCAL_RANK=" + std::to_string(l));
    env.push_back("LOCAL_WORLD_SIZE=" + std::to_string(o.nproc_per_node));
    env.push_back("GROUP_RANK=" + std::to_string(o.node_rank));
    env.push_back("GROUP_WORLD_SIZE=" + std::to_string(o.nnodes));
    env.push_back("ROLE_RANK=" + std::to_string(rank));
    env.push_back("ROLE_WORLD_SIZE=" + std::to_string(world));
    env.push_back("MASTER_ADDR=" + o.master_addr);
    env.push_back("MASTER_PORT=" + std::to_string(port));
    if (!error_dir.empty()) {
      env.push_back("DET_ERROR_FILE=" + error_file(rank));
      if (o.heartbeat_timeout.count() > 0)
        env.push_back("DET_HEARTBEAT_FILE=" + heartbeat_file(rank));
      // One node: the ranks meet through a file here instead of a TCP port (nothing listens).
      if (o.nnodes == 1) env.push_back("DET_STORE_DIR=" + error_dir);
    }
    children[static_cast<size_t>(l)].rank = rank;
    children[static_cast<size_t>(l)].local_rank = l;
  }
  // Signals: recorded here, forwarded from the loop below.
  struct sigaction sa {
  }, old_int{}, old_term{};
  sa.sa_handler = on_launcher_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  g_signal = 0;
  g_signals = 0;

  for (int l = 0; l < o.nproc_per_node; ++l) {
    // Own process group: a terminal's Ctrl-C reaches the launcher only, which forwards it once.
    // Dies with the launcher, so no rank outlives it.
    util::SpawnOptions so;
    so.argv = o.command;
    so.env = envs[static_cast<size_t>(l)];
    so.new_process_group = true;
    so.parent_death_signal = SIGKILL;
    try {
      children[static_cast<size_t>(l)].pid = util::spawn(so);
      children[static_cast<size_t>(l)].running = true;
    } catch (const Error& e) {
      for (auto& c : children)
        if (c.running) ::kill(c.pid, SIGKILL), ::waitpid(c.pid, nullptr, 0);
      ::sigaction(SIGINT, &old_int, nullptr);
      ::sigaction(SIGTERM, &old_term, nullptr);
      throw DistributedError(std::string("det-launch: ") + e.what());
    }
  }

  LaunchResult result;
  int forwarded = 0;
  bool killing = false;
  Clock::time_point kill_deadline;
  int first_nonzero = 0;
  std::string first_message;
  const Child* hung = nullptr;  // the rank whose heartbeat stopped, if any
  auto running = [&] {
    int n = 0;
    for (auto& c : children) n += c.running ? 1 : 0;
    return n;
  };
  while (running() > 0) {
    while (forwarded < g_signals) {  // forward what the launcher received
      ++forwarded;
      for (auto& c : children) c.signal(g_signal);
    }
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid > 0) {
      for (auto& c : children) {
        if (c.pid != pid || !c.running) continue;
        c.running = false;
        c.status = status;
        c.ended = std::chrono::system_clock::now();
        bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        if (failed && first_nonzero == 0) first_nonzero = util::exit_code_of(status);
        // A rank failing on its own (not after a signal we forwarded or sent) stops the rest.
        if (failed && forwarded == 0 && !killing) {
          int others = running();
          first_message =
              "det-launch: rank " + std::to_string(c.rank) + " (local rank " +
              std::to_string(c.local_rank) + ", pid " + std::to_string(c.pid) + ") " +
              util::describe_wait_status(status) +
              (others > 0 ? "; stopping the other " + std::to_string(others) + " rank(s)" : "");
          std::fprintf(stderr, "%s\n", first_message.c_str());
          std::fflush(stderr);
          killing = true;
          kill_deadline = Clock::now() + o.kill_grace;
          // A rank that has recorded its own error is already on its way out: let it exit with
          // its own status (SIGKILL after the grace period still covers one that hangs).
          for (auto& other : children) {
            std::error_code ec;
            if (!error_dir.empty() && std::filesystem::exists(error_file(other.rank), ec)) continue;
            other.signal(SIGTERM);
          }
        }
      }
      continue;
    }
    if (pid < 0 && errno != EINTR && errno != ECHILD) break;
    // A rank whose heartbeat stopped is stopped or hung: name it and tear the group down now,
    // rather than when some collective times out and blames a healthy rank.
    if (!killing && forwarded == 0 && o.heartbeat_timeout.count() > 0 && !error_dir.empty()) {
      const double limit = std::chrono::duration<double>(o.heartbeat_timeout).count();
      for (auto& c : children) {
        const double age = util::Heartbeat::age_seconds(heartbeat_file(c.rank));
        if (!c.running || age < limit) continue;
        hung = &c;
        first_message =
            "det-launch: rank " + std::to_string(c.rank) + " (local rank " +
            std::to_string(c.local_rank) + ", pid " + std::to_string(c.pid) +
            ") is not responding: no heartbeat for " + std::to_string(static_cast<int>(age)) +
            " s (stopped or hung); stopping all " + std::to_string(running()) + " rank(s)";
        std::fprintf(stderr, "%s\n", first_message.c_str());
        std::fflush(stderr);
        killing = true;
        for (auto& other : children) other.signal(SIGKILL);
        break;
      }
    }
    if (killing && Clock::now() >= kill_deadline) {
      for (auto& c : children) c.signal(SIGKILL);
      kill_deadline = Clock::now() + std::chrono::hours(1);  // once
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);

  // The root cause: of the ranks that failed on their own (before any signal of ours reached
  // them, or by a signal we did not send), prefer one whose error was not a PeerFailure, then the
  // earliest (recorded error time, else exit time).
  const Child* root = nullptr;
  bool root_peer = true;
  int64_t root_time = 0;
  std::string root_error;
  for (const auto& c : children) {
    if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) continue;
    int64_t t = unix_ns(c.ended);
    bool peer = false, recorded = false;
    std::string error;
    if (!error_dir.empty()) {
      try {
        std::error_code ec;
        if (std::filesystem::exists(error_file(c.rank), ec)) {
          // A rank's own small file; read bounded, as a regular file, like every file det reads.
          auto j = nlohmann::json::parse(
              util::read_file(error_file(c.rank), 1 << 20, "a rank's error file"));
          t = std::min(t, j.at("unix_ns").get<int64_t>());
          peer = j.at("peer_failure").get<bool>();
          recorded = true;
          error = j.at("message").get<std::string>();
        }
      } catch (const std::exception&) {
      }
    }
    const bool signalled = c.signalled != std::chrono::system_clock::time_point::max();
    const bool foreign_signal =
        WIFSIGNALED(c.status) && !(WTERMSIG(c.status) == SIGKILL && c.sent_kill) &&
        !(WTERMSIG(c.status) == SIGTERM) && !(forwarded > 0 && WTERMSIG(c.status) == g_signal);
    const bool own = !signalled || (recorded && t < unix_ns(c.signalled)) || foreign_signal;
    if (!own) continue;  // may be our signals' doing
    if (!root || (root_peer && !peer) || (root_peer == peer && t < root_time)) {
      root = &c;
      root_peer = peer;
      root_time = t;
      root_error = error;
    }
  }
  if (!error_dir.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(error_dir, ec);
  }
  if (hung) {  // the hung rank is the root cause, whatever its peers reported
    result.failed_rank = hung->rank;
    result.exit_code = 1;
    result.message = first_message.substr(0, first_message.find("; stopping"));
    std::fprintf(stderr, "%s\n", result.message.c_str());
  } else if (root) {
    result.failed_rank = root->rank;
    result.exit_code = util::exit_code_of(root->status);
    result.message = "det-launch: rank " + std::to_string(root->rank) + " (local rank " +
                     std::to_string(root->local_rank) + ", pid " + std::to_string(root->pid) +
                     ") failed first: it " + util::describe_wait_status(root->status) +
                     (root_error.empty() ? "" : ": " + root_error);
    std::fprintf(stderr, "%s\n", result.message.c_str());
  } else {
    result.exit_code = first_nonzero;
  }
  return result;
}

}  // namespace det::distributed
