#include <cstdio>

#include <spdlog/spdlog.h>

#include "det/experiment/control.h"
#include "det/experiment/runner.h"
#include "det/record/run_dir.h"
#include "det/record/runner_snapshot.h"
#include "det/record/states.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "launcher.h"

namespace det::experiment {
namespace fs = std::filesystem;
using record::RunState;

int resume_experiment(const fs::path& run_dir, const RunnerOptions& options) {
  auto recorder = Recorder::open(run_dir);
  RunnerLock lock(run_dir);  // one runner per experiment
  auto saved = recorder->runner_snapshot();
  if (!saved || !saved->contains("trials"))
    throw Error(recorder->store().path().string() + ": experiment " +
                std::to_string(recorder->experiment_id()) +
                " has no runner snapshot (was it run by det-run --test or --resume?); it cannot be "
                "resumed");
  const auto snap = record::RunnerSnapshot::from_json(
      *saved, recorder->store().path().string() + ": the runner snapshot of experiment " +
                  std::to_string(recorder->experiment_id()));
  const RunState state = recorder->summary().state;
  if (state == RunState::kCompleted || state == RunState::kCanceled) {
    std::printf("experiment in %s is already %s; nothing to do\n", run_dir.string().c_str(),
                record::to_string(state));
    return 0;
  }
  auto cfg = config::load_experiment_config(record::RunDir(run_dir).config().string(), {});
  // The experiment's own scheduler: its jobs, if they outlive runners, are found there.
  RunnerOptions opt = options;
  const std::string ran_on = snap.scheduler;
  if (!opt.scheduler.empty() && opt.scheduler != ran_on)
    throw UsageError("the experiment in " + run_dir.string() + " runs its trials on " + ran_on +
                     "; resume it without --scheduler " + opt.scheduler);
  opt.scheduler = choose_scheduler(cfg, ran_on);
  // The slots are the experiment's, as its config is: a resume keeps them unless told otherwise
  // (the trials' workers pick their thread counts from them, and so their exact results).
  const int ran_with = snap.slots;
  if (opt.slots <= 0 && ran_with > 0) {
    opt.slots = ran_with;
    util::logger()->info("resuming experiment '{}' in {} with its {} slot(s) (--slots changes it)",
                         cfg.name, run_dir.string(), ran_with);
  } else if (ran_with > 0 && opt.slots != ran_with) {
    util::logger()->info(
        "resuming experiment '{}' in {} with {} slot(s) (--slots); it ran with {} before, so "
        "its trials' thread counts and exact results may differ from an uninterrupted run",
        cfg.name, run_dir.string(), opt.slots, ran_with);
  } else {
    util::logger()->info("resuming experiment '{}' in {}", cfg.name, run_dir.string());
  }
  return continue_experiment(cfg, *recorder, snap, opt);
}

}  // namespace det::experiment
