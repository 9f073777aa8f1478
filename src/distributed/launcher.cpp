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
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "det/distributed/distributed_context.h"
#include "det/record/rank_failure.h"
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
  record::RankFailure failure;
  failure.message = msg.substr(0, msg.find('\n'));
  failure.peer_failure = dynamic_cast<const PeerFailure*>(&error) != nullptr;
  failure.unix_ns = unix_ns(std::chrono::system_clock::now());
  std::ofstream(path) << failure.to_json().dump() << "\n";
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

namespace {

void validate(const LaunchOptions& o) {
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
  if (o.master_port == 0 && o.nnodes > 1)
    throw UsageError(
        "det-launch: --master-port is required with --nnodes > 1 (every node must use the same "
        "one)");
}

// The ranks' common environment: ours without the launch variables of an outer launcher.
std::vector<std::string> base_environment(const LaunchOptions& o) {
  std::vector<std::string> env =
      util::environment({"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                         "GROUP_WORLD_SIZE", "ROLE_RANK", "ROLE_WORLD_SIZE", "MASTER_ADDR",
                         "MASTER_PORT", "OMP_NUM_THREADS", "DET_ERROR_FILE"});
  // Unless the user chose: each rank's share of the CPUs this launcher may use, so ranks do not
  // fight for cores (torchrun gives each one thread). It is the count det-run gives its ranks
  // under every other launcher (app::apply_intra_op_threads: the CPUs divided among the ranks on
  // the node), so a run trains bit for bit alike whichever launcher started it.
  if (const char* omp = std::getenv("OMP_NUM_THREADS")) {
    env.push_back(std::string("OMP_NUM_THREADS=") + omp);
  } else if (o.nproc_per_node > 1) {
    env.push_back("OMP_NUM_THREADS=" +
                  std::to_string(std::max(1, util::usable_cpus() / o.nproc_per_node)));
  }
  return env;
}

// Where each rank records its error (record_failure), to tell the first failure from its
// echoes, and beats its heartbeat; one node's ranks also meet through a file store here. Removed
// on every way out of the launch.
class ScratchDir {
 public:
  ScratchDir() {
    char dir_template[] = "/tmp/det-launch-XXXXXX";
    if (::mkdtemp(dir_template)) path_ = dir_template;
  }
  ~ScratchDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  bool ok() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  std::string error_file(int rank) const {
    return path_ + "/rank" + std::to_string(rank) + ".json";
  }
  std::string heartbeat_file(int rank) const {
    return path_ + "/rank" + std::to_string(rank) + ".alive";
  }

 private:
  std::string path_;
};

// SIGINT and SIGTERM recorded (to be forwarded to the ranks) while the launch lives.
class SignalCapture {
 public:
  SignalCapture() {
    struct sigaction sa {};
    sa.sa_handler = on_launcher_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGINT, &sa, &old_int_);
    ::sigaction(SIGTERM, &sa, &old_term_);
    g_signal = 0;
    g_signals = 0;
  }
  ~SignalCapture() {
    ::sigaction(SIGINT, &old_int_, nullptr);
    ::sigaction(SIGTERM, &old_term_, nullptr);
  }
  SignalCapture(const SignalCapture&) = delete;
  SignalCapture& operator=(const SignalCapture&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

std::string describe(const Child& c) {
  return "rank " + std::to_string(c.rank) + " (local rank " + std::to_string(c.local_rank) +
         ", pid " + std::to_string(c.pid) + ")";
}

// One launch: starts the ranks, supervises them, then names the root cause of a failure.
class Launch {
 public:
  explicit Launch(const LaunchOptions& o) : o_(o) {
    validate(o);
    port_ = o.master_port != 0 ? o.master_port : free_port();
  }

  LaunchResult run() {
    SignalCapture signals;
    start_ranks();
    while (running() > 0) {
      forward_signals();
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid > 0) {
        reaped(pid, status);
        continue;
      }
      if (pid < 0 && errno != EINTR && errno != ECHILD) break;
      watch_heartbeats();
      if (killing_ && Clock::now() >= kill_deadline_) {
        for (auto& c : children_) c.signal(SIGKILL);
        kill_deadline_ = Clock::now() + std::chrono::hours(1);  // once
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return result();
  }

 private:
  std::vector<std::string> rank_environment(const std::vector<std::string>& base, int local) const {
    const int world = o_.nnodes * o_.nproc_per_node;
    const int rank = o_.node_rank * o_.nproc_per_node + local;
    std::vector<std::string> env = base;
    for (const auto& [name, value] : {std::pair<const char*, int>{"RANK", rank},
                                      {"WORLD_SIZE", world},
                                      {"LOCAL_RANK", local},
                                      {"LOCAL_WORLD_SIZE", o_.nproc_per_node},
                                      {"GROUP_RANK", o_.node_rank},
                                      {"GROUP_WORLD_SIZE", o_.nnodes},
                                      {"ROLE_RANK", rank},
                                      {"ROLE_WORLD_SIZE", world},
                                      {"MASTER_PORT", port_}})
      env.push_back(std::string(name) + "=" + std::to_string(value));
    env.push_back("MASTER_ADDR=" + o_.master_addr);
    if (scratch_.ok()) {
      env.push_back("DET_ERROR_FILE=" + scratch_.error_file(rank));
      if (o_.heartbeat_timeout.count() > 0)
        env.push_back("DET_HEARTBEAT_FILE=" + scratch_.heartbeat_file(rank));
      // One node: the ranks meet through a file here instead of a TCP port (nothing listens).
      if (o_.nnodes == 1) env.push_back("DET_STORE_DIR=" + scratch_.path());
    }
    return env;
  }

  void start_ranks() {
    const std::vector<std::string> base = base_environment(o_);
    children_.resize(static_cast<size_t>(o_.nproc_per_node));
    for (int l = 0; l < o_.nproc_per_node; ++l) {
      Child& child = children_[static_cast<size_t>(l)];
      child.rank = o_.node_rank * o_.nproc_per_node + l;
      child.local_rank = l;
      // Own process group: a terminal's Ctrl-C reaches the launcher only, which forwards it
      // once. Dies with the launcher, so no rank outlives it.
      util::SpawnOptions so;
      so.argv = o_.command;
      so.env = rank_environment(base, l);
      so.new_process_group = true;
      so.parent_death_signal = SIGKILL;
      try {
        child.pid = util::spawn(so);
        child.running = true;
      } catch (const Error& e) {
        for (auto& c : children_)
          if (c.running) ::kill(c.pid, SIGKILL), ::waitpid(c.pid, nullptr, 0);
        throw DistributedError(std::string("det-launch: ") + e.what());
      }
    }
  }

  int running() const {
    int n = 0;
    for (auto& c : children_) n += c.running ? 1 : 0;
    return n;
  }

  void forward_signals() {
    while (forwarded_ < g_signals) {
      ++forwarded_;
      for (auto& c : children_) c.signal(g_signal);
    }
  }

  void reaped(pid_t pid, int status) {
    for (auto& c : children_) {
      if (c.pid != pid || !c.running) continue;
      c.running = false;
      c.status = status;
      c.ended = std::chrono::system_clock::now();
      const bool failed = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
      if (failed && first_nonzero_ == 0) first_nonzero_ = util::exit_code_of(status);
      // A rank failing on its own (not after a signal we forwarded or sent) stops the rest.
      if (failed && forwarded_ == 0 && !killing_) stop_the_others(c);
    }
  }

  void announce(std::string message) {
    first_message_ = std::move(message);
    std::fprintf(stderr, "%s\n", first_message_.c_str());
    std::fflush(stderr);
    killing_ = true;
  }

  void stop_the_others(const Child& failed) {
    const int others = running();
    announce("det-launch: " + describe(failed) + " " + util::describe_wait_status(failed.status) +
             (others > 0 ? "; stopping the other " + std::to_string(others) + " rank(s)" : ""));
    kill_deadline_ = Clock::now() + o_.kill_grace;
    // A rank that has recorded its own error is already on its way out: let it exit with its
    // own status (SIGKILL after the grace period still covers one that hangs).
    for (auto& other : children_) {
      std::error_code ec;
      if (scratch_.ok() && std::filesystem::exists(scratch_.error_file(other.rank), ec)) continue;
      other.signal(SIGTERM);
    }
  }

  // A rank whose heartbeat stopped is stopped or hung: name it and tear the group down now,
  // rather than when some collective times out and blames a healthy rank.
  void watch_heartbeats() {
    if (killing_ || forwarded_ > 0 || o_.heartbeat_timeout.count() <= 0 || !scratch_.ok()) return;
    const double limit = std::chrono::duration<double>(o_.heartbeat_timeout).count();
    for (auto& c : children_) {
      const double age = util::Heartbeat::age_seconds(scratch_.heartbeat_file(c.rank));
      if (!c.running || age < limit) continue;
      hung_ = &c;
      announce("det-launch: " + describe(c) + " is not responding: no heartbeat for " +
               std::to_string(static_cast<int>(age)) + " s (stopped or hung); stopping all " +
               std::to_string(running()) + " rank(s)");
      for (auto& other : children_) other.signal(SIGKILL);
      return;
    }
  }

  // What a failed rank recorded of its error, if it did and the file reads.
  std::optional<record::RankFailure> recorded_failure(const Child& c) const {
    if (!scratch_.ok()) return std::nullopt;
    const std::string path = scratch_.error_file(c.rank);
    try {
      std::error_code ec;
      if (!std::filesystem::exists(path, ec)) return std::nullopt;
      // A rank's own small file; read bounded, as a regular file, like every file det reads.
      return record::RankFailure::from_json(
          nlohmann::json::parse(util::read_file(path, 1 << 20, "a rank's error file")), path);
    } catch (const std::exception&) {
      return std::nullopt;  // a rank killed while writing it: judged by its exit alone
    }
  }

  // Whether `c` failed on its own: before any signal of ours reached it, or by a signal we did
  // not send. `failed_at`: its recorded error time, else its exit time.
  bool failed_on_its_own(const Child& c, int64_t failed_at, bool recorded) const {
    const bool signalled = c.signalled != std::chrono::system_clock::time_point::max();
    const bool foreign_signal =
        WIFSIGNALED(c.status) && !(WTERMSIG(c.status) == SIGKILL && c.sent_kill) &&
        !(WTERMSIG(c.status) == SIGTERM) && !(forwarded_ > 0 && WTERMSIG(c.status) == g_signal);
    return !signalled || (recorded && failed_at < unix_ns(c.signalled)) || foreign_signal;
  }

  // The root cause: of the ranks that failed on their own, one whose error was not a
  // PeerFailure, then the earliest. `error`: what it recorded.
  const Child* root_cause(std::string* error) const {
    const Child* root = nullptr;
    bool root_peer = true;
    int64_t root_time = 0;
    for (const auto& c : children_) {
      if (WIFEXITED(c.status) && WEXITSTATUS(c.status) == 0) continue;
      const auto failure = recorded_failure(c);
      const int64_t t = failure ? std::min(unix_ns(c.ended), failure->unix_ns) : unix_ns(c.ended);
      const bool peer = failure && failure->peer_failure;
      if (!failed_on_its_own(c, t, failure.has_value())) continue;  // may be our signals' doing
      if (!root || (root_peer && !peer) || (root_peer == peer && t < root_time)) {
        root = &c;
        root_peer = peer;
        root_time = t;
        *error = failure ? failure->message : "";
      }
    }
    return root;
  }

  LaunchResult result() const {
    LaunchResult result;
    std::string root_error;
    const Child* root = root_cause(&root_error);
    if (hung_) {  // the hung rank is the root cause, whatever its peers reported
      result.failed_rank = hung_->rank;
      result.exit_code = 1;
      result.message = first_message_.substr(0, first_message_.find("; stopping"));
    } else if (root) {
      result.failed_rank = root->rank;
      result.exit_code = util::exit_code_of(root->status);
      result.message = "det-launch: " + describe(*root) + " failed first: it " +
                       util::describe_wait_status(root->status) +
                       (root_error.empty() ? "" : ": " + root_error);
    } else {
      result.exit_code = first_nonzero_;
    }
    if (!result.message.empty()) std::fprintf(stderr, "%s\n", result.message.c_str());
    return result;
  }

  const LaunchOptions& o_;
  int port_ = 0;
  ScratchDir scratch_;
  std::vector<Child> children_;
  int forwarded_ = 0;  // signals forwarded so far
  bool killing_ = false;
  Clock::time_point kill_deadline_;
  int first_nonzero_ = 0;
  std::string first_message_;
  const Child* hung_ = nullptr;  // the rank whose heartbeat stopped, if any
};

}  // namespace

LaunchResult launch(const LaunchOptions& options) { return Launch(options).run(); }

}  // namespace det::distributed
