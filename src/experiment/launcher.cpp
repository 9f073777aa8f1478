#include "launcher.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>

#include "det/experiment/runner.h"
#include "det/util/error.h"
#include "det/util/process.h"
#include "det/util/strings.h"

namespace det::experiment {
namespace fs = std::filesystem;

void check_slots(const config::ExperimentConfig& config, int slots) {
  int spt = std::max(1, config.resources.slots_per_trial);
  if (slots < spt)
    throw UsageError("--slots " + std::to_string(slots) +
                     " is fewer than resources.slots_per_trial (" + std::to_string(spt) + ") in " +
                     config.source + ": give at least --slots " + std::to_string(spt));
}

std::string choose_scheduler(const config::ExperimentConfig& config, const std::string& requested) {
  if (!requested.empty() && requested != "local" && requested != "slurm")
    throw UsageError("--scheduler " + requested + ": use local or slurm");
  const std::string s = requested.empty() ? (config.slurm ? "slurm" : "local") : requested;
  if (s == "slurm") {
    bool found = false;
    const char* path = std::getenv("PATH");
    for (const auto& dir : util::split(path ? path : "", ':')) {
      if (!dir.empty() && ::access((fs::path(dir) / "sbatch").c_str(), X_OK) == 0) found = true;
    }
    if (!found)
      throw UsageError(std::string(requested.empty() ? config.source + " has a slurm: section"
                                                     : "--scheduler slurm") +
                       ", but sbatch is not on PATH: run det-run where Slurm's commands are, or "
                       "run the trials here with --scheduler local");
  }
  return s;
}

int default_slots(const config::ExperimentConfig& config, const std::string& scheduler) {
  const int spt = std::max(1, config.resources.slots_per_trial);
  const int mct = config.searcher.max_concurrent_trials;
  return config.resources.max_slots.value_or(scheduler == "slurm" ? spt * (mct > 0 ? mct : 16)
                                                                  : spt);
}

std::vector<std::string> worker_argv(const WorkerLaunch& w) {
  std::vector<std::string> args = {w.executable.string(),
                                   "__worker",
                                   "--run-dir",
                                   w.run_dir.string(),
                                   "--trial",
                                   std::to_string(w.trial),
                                   "--target",
                                   std::to_string(w.target),
                                   "--launch",
                                   std::to_string(w.launch)};
  if (!w.resume.empty()) args.insert(args.end(), {"--resume", w.resume});
  if (!w.warm_start.empty()) args.insert(args.end(), {"--warm-start", w.warm_start});
  if (!w.own_progress) args.push_back("--no-progress");
  // A worker's own log lines go to its trial.log (and `det-run logs`), only its warnings to the
  // terminal the search's line owns.
  if (w.quiet_console) args.insert(args.end(), {"--console-level", "warn"});
  if (w.threads > 0) args.insert(args.end(), {"--threads", std::to_string(w.threads)});
  args.insert(args.end(), w.extra_args.begin(), w.extra_args.end());
  return args;
}

std::vector<std::string> worker_env(const std::vector<int>& slot_ids) {
  std::vector<std::string> devices;
  const char* cvd = std::getenv("CUDA_VISIBLE_DEVICES");
  std::vector<std::string> visible = cvd ? util::split(cvd, ',') : std::vector<std::string>{};
  std::vector<std::string> ids;
  for (int s : slot_ids) {
    ids.push_back(std::to_string(s));
    devices.push_back(static_cast<size_t>(s) < visible.size() ? visible[static_cast<size_t>(s)]
                                                              : std::to_string(s));
  }
  return util::environment(
      {"CUDA_VISIBLE_DEVICES", "DET_SLOT_IDS"},
      {"DET_SLOT_IDS=" + util::join(ids, ","), "CUDA_VISIBLE_DEVICES=" + util::join(devices, ",")});
}

std::string job_tag(const fs::path& run_dir) {
  uint32_t h = 2166136261u;  // FNV-1a
  for (char ch : fs::absolute(run_dir).string()) {
    h ^= static_cast<unsigned char>(ch);
    h *= 16777619u;
  }
  char tag[16];
  std::snprintf(tag, sizeof tag, "%08x", h);
  return std::string("det-") + tag;
}

record::RunnerAnswer answer_for(const record::OwedAnswer& owed, std::optional<int64_t> target,
                                bool stopping) {
  record::RunnerAnswer a;
  a.re = owed.re;
  if (owed.kind == record::OwedAnswer::Kind::kRecorded) {
    a.kind = record::RunnerAnswer::Kind::kRecorded;
    a.uuid = owed.uuid;
  } else if (target && !stopping) {
    a.kind = record::RunnerAnswer::Kind::kTarget;
    a.target = *target;
  } else {
    a.kind = record::RunnerAnswer::Kind::kExit;
  }
  return a;
}

int exit_code_for(record::WorkerExit::Reason reason) {
  using Reason = record::WorkerExit::Reason;
  switch (reason) {
    case Reason::kCompleted:
    case Reason::kStopRequested:
      return 0;
    case Reason::kStopped:
      return 130;
    case Reason::kInvalidHP:
      return record::kWorkerExitInvalidHP;
    default:
      return 1;
  }
}

void crash_point(const char* point) {
  static const std::string spec = [] {
    const char* v = std::getenv("DET_TEST_RUNNER_CRASH");
    return std::string(v ? v : "");
  }();
  if (spec.empty()) return;
  static std::map<std::string, int> passed;
  const auto colon = spec.rfind(':');
  if (spec.compare(0, colon, point) != 0) return;
  if (++passed[point] == std::atoi(spec.c_str() + colon + 1)) ::raise(SIGKILL);
}

}  // namespace det::experiment
