#include "det/util/process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "det/util/error.h"

extern char** environ;

namespace det::util {

namespace {

std::string env_name(const std::string& kv) { return kv.substr(0, kv.find('=')); }

// Only async-signal-safe calls from here to exec: the parent may have other threads.
[[noreturn]] void exec_child(const SpawnOptions& o, pid_t parent, char* const* argv,
                             char* const* envp, int devnull) {
  if (o.new_process_group) ::setpgid(0, 0);
  if (o.parent_death_signal != 0) {
    ::prctl(PR_SET_PDEATHSIG, o.parent_death_signal);
    if (::getppid() != parent) ::_exit(1);  // the parent died before prctl took effect
  }
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGPIPE, SIGHUP}) ::sigaction(sig, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (devnull >= 0) {
    ::dup2(devnull, 0);
    ::dup2(devnull, 1);
    ::dup2(devnull, 2);
  }
  // Two steps so a target number that is also a source is not overwritten before it is copied.
  int moved[64];
  const size_t n = o.fds.size() < 64 ? o.fds.size() : 64;
  for (size_t i = 0; i < n; ++i) {
    moved[i] = ::fcntl(o.fds[i].second, F_DUPFD, 100);
    if (moved[i] < 0) ::_exit(127);
  }
  for (size_t i = 0; i < n; ++i) {
    if (::dup2(moved[i], o.fds[i].first) < 0) ::_exit(127);
    ::close(moved[i]);
  }
  if (envp != nullptr) {
    ::execvpe(argv[0], argv, envp);
  } else {
    ::execvp(argv[0], argv);
  }
  const char* what = "det: cannot run ";
  const char* why = ::strerror(errno);
  (void)!::write(2, what, std::strlen(what));
  (void)!::write(2, argv[0], std::strlen(argv[0]));
  (void)!::write(2, ": ", 2);
  (void)!::write(2, why, std::strlen(why));
  (void)!::write(2, "\n", 1);
  ::_exit(127);
}

}  // namespace

pid_t spawn(const SpawnOptions& o) {
  if (o.argv.empty() || o.argv[0].empty()) throw Error("spawn: no program given");
  if (o.fds.size() > 64) throw Error("spawn: too many descriptors to pass");
  // Everything the child needs is built before fork.
  std::vector<char*> argv;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (o.env) {
    for (const auto& e : *o.env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  int devnull = -1;
  if (o.null_stdio) {
    devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0)
      throw Error(std::string("spawn: cannot open /dev/null: ") + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) exec_child(o, parent, argv.data(), o.env ? envp.data() : nullptr, devnull);
  const int fork_errno = errno;
  if (devnull >= 0) ::close(devnull);
  if (pid < 0) throw Error("cannot start " + o.argv[0] + " (fork): " + std::strerror(fork_errno));
  // Set the group from both sides so a signal sent right after spawn already finds it.
  if (o.new_process_group) ::setpgid(pid, pid);
  return pid;
}

std::optional<int> run(const SpawnOptions& o, std::chrono::milliseconds timeout) {
  pid_t pid = spawn(o);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return status;
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::vector<std::string> environment(const std::vector<std::string>& drop,
                                     const std::vector<std::string>& set) {
  std::vector<std::string> out;
  auto named = [](const std::vector<std::string>& list, const std::string& name, bool kv) {
    for (const auto& d : list)
      if ((kv ? env_name(d) : d) == name) return true;
    return false;
  };
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    const std::string name = env_name(kv);
    if (named(drop, name, false) || named(set, name, true)) continue;
    out.push_back(std::move(kv));
  }
  out.insert(out.end(), set.begin(), set.end());
  return out;
}

std::string describe_wait_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "was killed by signal " + std::to_string(sig) +
           (name ? std::string(" (") + name + ")" : std::string());
  }
  return "ended with wait status " + std::to_string(status);
}

int exit_code_of(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

double process_age_seconds() {
  std::ifstream stat("/proc/self/stat"), uptime("/proc/uptime");
  std::string line;
  double up = 0;
  if (!std::getline(stat, line) || !(uptime >> up)) return 0;
  // Fields after the command name (which may hold spaces): state is field 3, starttime field 22.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; i < 22 && rest >> field; ++i) {
  }
  unsigned long long start_ticks = 0;
  if (!(rest >> start_ticks)) return 0;
  const long hz = ::sysconf(_SC_CLK_TCK);
  if (hz <= 0) return 0;
  return std::max(0.0, up - static_cast<double>(start_ticks) / static_cast<double>(hz));
}

void LineBuffer::append(const char* data, size_t size) {
  if (start_ > 0 && start_ * 2 >= buffer_.size()) {  // drop what was consumed, amortised
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(data, size);
  if (buffer_.find('\n', start_) == std::string::npos && pending() > max_line_)
    throw Error("a message line is longer than " + std::to_string(max_line_) +
                " bytes; the other end is broken");
}

std::optional<std::string> LineBuffer::next_line() {
  size_t pos = buffer_.find('\n', start_);
  if (pos == std::string::npos) return std::nullopt;
  std::string line = buffer_.substr(start_, pos - start_);
  start_ = pos + 1;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
  return line;
}

}  // namespace det::util
