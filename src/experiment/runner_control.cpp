// The runner obeying commands from other terminals (det-run pause, activate, cancel, kill,
// kill-trial, set max-slots): read from the run directory's control/ a few times a second,
// answered there (det/experiment/control.h); and how an experiment ends (stopped, canceled, or
// its search done).

#include <chrono>
#include <cstdio>

#include "runner_impl.h"

namespace det::experiment::detail {

using Kind = record::ControlCommand::Kind;

void Runner::poll_control() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_control_) return;
  next_control_ = now + std::chrono::milliseconds(200);
  for (const auto& [id, command] : inbox_->pending()) {
    record::ControlAnswer a;
    try {
      a = obey(command);
    } catch (const Error& e) {
      a = {false, util::shorten(e.what(), 300)};
    }
    util::logger()->info("det-run {}: {}", record::to_string(command.kind), a.message);
    inbox_->answer(id, a);
  }
}

record::ControlAnswer Runner::obey(const record::ControlCommand& c) {
  if (canceling_) return {false, "the experiment is being canceled"};
  if (stopping_) return {false, "the experiment is stopping (Ctrl-C or a full disk)"};
  switch (c.kind) {
    case Kind::kPause:
      return pause();
    case Kind::kActivate:
      return activate();
    case Kind::kCancel:
      return cancel(false);
    case Kind::kKill:
      return cancel(true);
    case Kind::kKillTrial:
      return kill_trial(c.trial);
    case Kind::kSetMaxSlots:
      return set_max_slots(c.slots);
  }
  return {false, "unknown command"};
}

record::ControlAnswer Runner::pause() {
  if (paused_) return {false, "the experiment is PAUSED already"};
  paused_ = true;
  int stopping = 0;
  for (auto& [id, t] : trials_)
    if (t.active()) {
      sched_->stop(t.job);
      ++stopping;
    }
  settle_pause();
  return {true, "pausing: " + std::to_string(stopping) + " running trial(s) checkpoint and stop"};
}

void Runner::settle_pause() {
  if (!paused_ || running_ > 0 || rec_.summary().state == RunState::kPaused) return;
  rec_.set_experiment_state(RunState::kPaused);
  save();
  util::logger()->info("experiment {} PAUSED: det-run activate {} goes on", rec_.experiment_id(),
                       rec_.experiment_id());
}

record::ControlAnswer Runner::activate() {
  if (!paused_) return {false, "the experiment is ACTIVE, not PAUSED"};
  paused_ = false;
  // The trials the pause stopped go first, in their order, then the queue as it was.
  std::deque<int64_t> order;
  for (auto& [id, t] : trials_)
    if (t.state == TrialStatus::kQueued && t.target &&
        std::find(ready_.begin(), ready_.end(), id) == ready_.end())
      order.push_back(id);
  order.insert(order.end(), ready_.begin(), ready_.end());
  ready_ = std::move(order);
  rec_.set_experiment_state(RunState::kActive);
  save();
  return {true, "ACTIVE: " + std::to_string(ready_.size()) + " trial(s) queued"};
}

record::ControlAnswer Runner::cancel(bool kill) {
  canceling_ = true;
  stopping_ = true;
  int running = 0;
  for (auto& [id, t] : trials_) {
    if (!t.active()) continue;
    ++running;
    t.killed = kill;
    if (kill)
      sched_->kill(t.job);
    else
      sched_->stop(t.job);
  }
  return {true, std::string(kill ? "killing" : "canceling") + ": " + std::to_string(running) +
                    " running trial(s) " + (kill ? "end now" : "checkpoint and stop")};
}

record::ControlAnswer Runner::kill_trial(int64_t number) {
  auto it = trials_.find(number);
  if (it == trials_.end())
    return {false, "experiment " + std::to_string(rec_.experiment_id()) + " has no trial " +
                       std::to_string(number)};
  TrialRun& t = it->second;
  if (t.final())
    return {false,
            "trial " + std::to_string(number) + " is " + record::to_string(t.state) + " already"};
  if (t.active()) {  // its job's end tells the searcher (restart_policy: kKilled)
    t.killed = true;
    sched_->kill(t.job);
    return {true, "killing trial " + std::to_string(number) + "'s worker"};
  }
  t.target.reset();
  set_state(t, TrialStatus::kCanceled);
  util::logger()->warn("trial {}: killed on request (CANCELED)", t.id);
  exited_early(t, search::ExitedReason::kUserCanceled);
  return {true, "trial " + std::to_string(number) + " CANCELED"};
}

record::ControlAnswer Runner::set_max_slots(int slots) {
  check_slots(cfg_, slots);
  const int before = opt_.slots;
  opt_.slots = slots;
  if (slot_used_.size() < static_cast<size_t>(slots)) slot_used_.resize(static_cast<size_t>(slots));
  const int by_slots = slots / spt_;
  const int mct = cfg_.searcher.max_concurrent_trials;
  concurrency_ = mct > 0 ? std::min(mct, by_slots) : by_slots;
  save();
  return {true, "max slots " + std::to_string(before) + " -> " + std::to_string(slots) +
                    " (from the next launch; up to " + std::to_string(concurrency_) +
                    " trial(s) at once)"};
}

int Runner::finish_stopped() {
  const std::string dir = rec_.run_dir().string();
  rec_.set_experiment_state(RunState::kStopped);
  if (!storage_error_.empty()) {
    std::fprintf(stderr,
                 "det-run: error: %s; the experiment stopped: free space, then continue with: "
                 "det-run --resume-experiment %s\n",
                 util::shorten(storage_error_, 300).c_str(), dir.c_str());
    return 1;
  }
  std::fprintf(stderr, "det-run: stopped; continue with: det-run --resume-experiment %s\n",
               dir.c_str());
  return 130;
}

const TrialRun* Runner::best_trial(std::optional<double>* best_value) const {
  const TrialRun* best = nullptr;
  const std::string& metric = cfg_.searcher.metric;
  for (const auto& [id, t] : trials_) {
    const auto* s = rec_.summary().find_trial(id);
    if (!s || !s->best_validation) continue;
    const auto& m = s->best_validation->metrics;
    if (!m.contains(metric) || !m[metric].is_number()) continue;
    const double v = m[metric].get<double>();
    if (!best || config::is_better(v, *best_value, cfg_.searcher.smaller_is_better)) {
      *best_value = v;
      best = &t;
    }
  }
  return best;
}

int Runner::finish_search() {
  int completed = 0, errored = 0, invalid = 0;
  std::string first_error;
  for (const auto& [id, t] : trials_) {
    completed += t.state == TrialStatus::kCompleted;
    errored += t.state == TrialStatus::kError;
    invalid += t.state == TrialStatus::kInvalidHP;
    if (t.state == TrialStatus::kError && first_error.empty())
      first_error = " (trial " + std::to_string(id) + ": " + rec_.trial(id).message + ")";
  }
  std::optional<double> best_value;
  const TrialRun* best = best_trial(&best_value);
  const bool failed = (completed == 0 && !trials_.empty()) || !searcher_.shutdown();
  rec_.summary_mut().best_trial = best ? std::optional<int64_t>(best->id) : std::nullopt;
  rec_.set_experiment_state(failed ? RunState::kError : RunState::kCompleted);
  util::logger()->info(
      "experiment {}: {} trial(s): {} completed, {} errored, {} rejected their hyperparameters",
      failed ? "failed" : "completed", trials_.size(), completed, errored, invalid);
  if (best)
    util::logger()->info("best trial {}: {} = {:.6g} with {}", best->id, cfg_.searcher.metric,
                         *best_value, rec_.trial(best->id).hparams.dump());
  const record::RunDir dir(rec_.run_dir());
  util::logger()->info("run directory: {}", dir.path().string());
  if (failed)
    std::fprintf(stderr, "det-run: error: the experiment failed: %s%s; see %s\n",
                 completed == 0 ? "no trial completed" : "the searcher did not finish",
                 first_error.c_str(), dir.log().string().c_str());
  return failed ? 1 : 0;
}

int Runner::finish_canceled() {
  for (auto& [id, t] : trials_)
    if (!t.final()) {
      t.target.reset();
      set_state(t, TrialStatus::kCanceled);
    }
  rec_.set_experiment_state(RunState::kCanceled);
  save();
  util::logger()->info("experiment {} CANCELED; its checkpoints are kept ({})",
                       rec_.experiment_id(), rec_.run_dir().string());
  std::fprintf(stderr, "det-run: the experiment was canceled on request; run directory %s\n",
               rec_.run_dir().string().c_str());
  return 1;
}

}  // namespace det::experiment::detail
