#include "scheduler.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <set>
#include <thread>

#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/process.h"
#include "det/util/strings.h"

namespace det::experiment {
namespace fs = std::filesystem;

namespace {

// ---- local ----

class LocalScheduler : public Scheduler {
 public:
  const char* name() const override { return "local"; }
  bool jobs_outlive_runner() const override { return false; }

  std::string submit(const JobRequest& r) override {
    util::SpawnOptions so;
    so.argv = r.argv;
    so.env = r.env;
    // Own process group: a Ctrl-C reaches the runner, which stops the workers in order.
    so.new_process_group = true;
    // A worker dies with its runner: nothing writes into the run directory unowned. The
    // experiment continues with --resume-experiment from what is recorded.
    so.parent_death_signal = SIGKILL;
    const pid_t pid = util::spawn(so);
    return std::to_string(pid);
  }

  std::map<std::string, JobState> poll(const std::vector<std::string>& jobs) override {
    std::map<std::string, JobState> out;
    for (const auto& job : jobs) {
      JobState s;
      int status = 0;
      const pid_t pid = static_cast<pid_t>(std::stol(job));
      pid_t got;
      do got = ::waitpid(pid, &status, WNOHANG);
      while (got < 0 && errno == EINTR);
      if (got == pid) {
        s.phase = JobState::Phase::kEnded;
        s.wait_status = status;
        s.state = util::describe_wait_status(status);
      } else if (got < 0) {  // not our child (any more): nothing to wait for
        s.phase = JobState::Phase::kEnded;
        s.state = "gone";
      } else {
        s.phase = JobState::Phase::kRunning;
        s.state = "RUNNING";
      }
      out[job] = s;
    }
    return out;
  }

  std::optional<std::string> find(const std::string&) override { return std::nullopt; }

  void stop(const std::string& job) override {
    ::kill(static_cast<pid_t>(std::stol(job)), SIGTERM);  // a launcher forwards it to its ranks
  }
  void kill(const std::string& job) override {
    ::kill(static_cast<pid_t>(std::stol(job)), SIGKILL);
  }
};

// ---- Slurm ----

// What a Slurm command printed, and how it ended.
struct Output {
  int status = 0;
  std::string out, err;
};

// Reads both pipes into `into` (up to 4 MiB each) until both close; false when `deadline`
// passed first.
bool drain(pollfd (&fds)[2], std::array<std::string*, 2> into,
           std::chrono::steady_clock::time_point deadline) {
  int open = 2;
  while (open > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    const int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[4096];
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got > 0 && into[i]->size() < (size_t{4} << 20)) {
        into[i]->append(buf, static_cast<size_t>(got));
      } else if (got <= 0 && !(got < 0 && errno == EINTR)) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      }
    }
  }
  return true;
}

// Runs a Slurm client command (never through a shell) for at most `timeout`.
Output run_command(const std::vector<std::string>& argv, std::chrono::seconds timeout) {
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) throw Error(std::string("pipe: ") + std::strerror(errno));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    ::close(out[0]);
    ::close(out[1]);
    throw Error(std::string("pipe: ") + std::strerror(errno));
  }
  util::SpawnOptions so;
  so.argv = argv;
  so.fds = {{1, out[1]}, {2, err[1]}};
  so.new_process_group = true;
  pid_t pid;
  try {
    pid = util::spawn(so);
  } catch (...) {
    for (int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    throw;
  }
  ::close(out[1]);
  ::close(err[1]);
  Output o;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  const bool timed_out = !drain(fds, {&o.out, &o.err}, std::chrono::steady_clock::now() + timeout);
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);
  if (timed_out) ::kill(-pid, SIGKILL);
  while (::waitpid(pid, &o.status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out)
    throw Error(argv[0] + " did not answer within " + std::to_string(timeout.count()) +
                " s: is slurmctld up (scontrol ping)?");
  return o;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  return util::shorten(trim(line), 300);
}

JobState::Phase phase_of(const std::string& state) {
  static const std::set<std::string> pending = {"PENDING",     "REQUEUED", "REQUEUE_HOLD",
                                                "REQUEUE_FED", "RESIZING", "CONFIGURING"};
  // COMPLETING: its processes end and the epilog runs; the state it ends in comes after.
  static const std::set<std::string> running = {"RUNNING",   "SIGNALING", "STAGE_OUT",
                                                "SUSPENDED", "STOPPED",   "COMPLETING"};
  if (pending.count(state)) return JobState::Phase::kPending;
  if (running.count(state)) return JobState::Phase::kRunning;
  // COMPLETED, CANCELLED, FAILED, TIMEOUT, NODE_FAIL, PREEMPTED, OUT_OF_MEMORY, BOOT_FAIL, ...
  return JobState::Phase::kEnded;
}

class SlurmScheduler : public Scheduler {
 public:
  SlurmScheduler(config::SlurmConfig config, fs::path script)
      : cfg_(std::move(config)), script_(std::move(script)) {
    // The job script is fixed text: the worker's command line reaches it as arguments ("$@"),
    // never as shell text. sbatch keeps a copy, so it needs no shared file system.
    util::write_file_atomic(
        script_,
        "#!/bin/sh\n"
        "# Written by det-run: one trial's worker (docs/distributed.md). A job\n"
        "# of one task runs it here, in the batch step; srun starts the ranks\n"
        "# of a job of several (resources.slots_per_trial tasks).\n"
        "[ \"${SLURM_NTASKS:-1}\" = 1 ] && exec \"$@\"\n"
        "exec srun --kill-on-bad-exit=1 \"$@\"\n");
  }

  const char* name() const override { return "slurm"; }
  bool jobs_outlive_runner() const override { return true; }

  std::string submit(const JobRequest& r) override {
    std::vector<std::string> argv = {"sbatch",
                                     "--parsable",
                                     "--job-name=" + r.name,
                                     "--output=" + r.output.string(),
                                     "--open-mode=append",
                                     "--no-requeue",
                                     "--ntasks=" + std::to_string(r.slots)};
    if (cfg_.slots_per_node) {
      const int per_node = std::min(*cfg_.slots_per_node, r.slots);
      argv.push_back("--nodes=" + std::to_string((r.slots + per_node - 1) / per_node));
      argv.push_back("--ntasks-per-node=" + std::to_string(per_node));
    }
    if (!cfg_.gpu_type.empty()) argv.push_back("--gpus-per-task=" + cfg_.gpu_type + ":1");
    argv.insert(argv.end(), cfg_.sbatch_args.begin(), cfg_.sbatch_args.end());
    argv.push_back(script_.string());
    argv.insert(argv.end(), r.argv.begin(), r.argv.end());
    Output o;
    try {
      o = run_command(argv, std::chrono::seconds(60));
    } catch (const Error& e) {
      throw Error(std::string("cannot submit a trial to Slurm: ") + e.what());
    }
    // --parsable prints "<id>" or "<id>;<cluster>".
    const std::string id = trim(o.out.substr(0, o.out.find_first_of(";\n")));
    const bool numeric = !id.empty() && id.find_first_not_of("0123456789_") == std::string::npos;
    if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0 || !numeric)
      throw Error("sbatch refused trial job " + r.name + ": " +
                  (o.err.empty() ? util::describe_wait_status(o.status) : first_line(o.err)) +
                  "; check slurm.sbatch_args in the config (sbatch " +
                  util::join(cfg_.sbatch_args, " ") + ")");
    last_[id] = JobState{};
    slots_[id] = r.slots;
    last_poll_ = {};  // look at the new job at the next poll
    return id;
  }

  std::map<std::string, JobState> poll(const std::vector<std::string>& jobs) override {
    const auto now = std::chrono::steady_clock::now();
    if (jobs.empty() || now - last_poll_ < std::chrono::seconds(1)) return {};
    last_poll_ = now;
    auto listed = list();
    if (!listed) return {};
    std::map<std::string, JobState> out;
    for (const auto& job : jobs) {
      auto it = listed->find(job);
      if (it != listed->end()) {
        out[job] = it->second.first;
      } else {  // no longer known to slurmctld (past MinJobAge)
        JobState s;
        s.phase = JobState::Phase::kEnded;
        s.state = "gone";
        out[job] = s;
      }
      last_[job] = out[job];
    }
    return out;
  }

  std::optional<std::string> find(const std::string& name) override {
    auto listed = list();
    if (!listed) throw Error("cannot ask Slurm for job " + name + " (squeue failed)");
    for (const auto& [id, job] : *listed)
      if (job.second == name && job.first.phase != JobState::Phase::kEnded) return id;
    return std::nullopt;
  }

  void stop(const std::string& job) override {
    auto it = last_.find(job);
    const bool waiting = it == last_.end() || it->second.phase == JobState::Phase::kPending;
    // A job that has not started is cancelled; a running one gets SIGTERM in its ranks,
    // checkpoints and ends: in the batch step for a job of one task, else in srun's step (not in
    // srun itself, which would pass a second SIGTERM on to the ranks).
    const auto s = slots_.find(job);
    if (waiting)
      scancel({job});
    else if (s != slots_.end() && s->second == 1)
      scancel({"--signal=TERM", "--batch", job});
    else
      scancel({"--signal=TERM", job});
  }
  void kill(const std::string& job) override { scancel({job}); }

 private:
  // Every job of this user that slurmctld still knows: id -> (state, name).
  std::optional<std::map<std::string, std::pair<JobState, std::string>>> list() {
    Output o;
    try {
      o = run_command({"squeue", "--noheader", "--me", "--states=all", "--format=%i|%T|%N|%j"},
                      std::chrono::seconds(60));
    } catch (const Error& e) {
      warn(e.what());
      return std::nullopt;
    }
    if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0) {
      warn("squeue failed: " + first_line(o.err));
      return std::nullopt;
    }
    failures_ = 0;
    std::map<std::string, std::pair<JobState, std::string>> jobs;
    for (const auto& line : util::split(o.out, '\n')) {
      auto f = util::split(line, '|');
      if (f.size() < 4) continue;
      JobState s;
      s.state = f[1];
      s.phase = phase_of(f[1]);
      s.cancelled = f[1] == "CANCELLED" || f[1] == "PREEMPTED";
      s.node = f[2] == "(null)" ? "" : f[2];
      std::string name = f[3];
      for (size_t i = 4; i < f.size(); ++i) name += "|" + f[i];
      jobs[f[0]] = {s, name};
    }
    return jobs;
  }

  void warn(const std::string& what) {
    // squeue failing now and then (slurmctld restarting) is waited out; the runner keeps asking.
    if (failures_++ % 30 == 0)
      std::fprintf(stderr, "det-run: warning: cannot follow the trials' Slurm jobs: %s\n",
                   what.c_str());
  }

  void scancel(std::vector<std::string> args) {
    args.insert(args.begin(), "scancel");
    try {
      Output o = run_command(args, std::chrono::seconds(60));
      if (!WIFEXITED(o.status) || WEXITSTATUS(o.status) != 0)
        warn("scancel " + args.back() + " failed: " + first_line(o.err));
    } catch (const Error& e) {
      warn(e.what());
    }
  }

  config::SlurmConfig cfg_;
  fs::path script_;
  std::map<std::string, JobState> last_;
  std::map<std::string, int> slots_;  ///< Ranks of each job submitted.
  std::chrono::steady_clock::time_point last_poll_{};
  int failures_ = 0;
};

}  // namespace

std::unique_ptr<Scheduler> make_local_scheduler() { return std::make_unique<LocalScheduler>(); }

std::unique_ptr<Scheduler> make_slurm_scheduler(const config::SlurmConfig& config,
                                                const fs::path& script) {
  return std::make_unique<SlurmScheduler>(config, script);
}

}  // namespace det::experiment
