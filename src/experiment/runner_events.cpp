// The runner following its workers: waiting for events and job ends, reading each launch's
// events file, answering what is owed, recording reports once.
#include "runner_impl.h"

namespace det::experiment::detail {

void Runner::wait_for_events() {
  bool busy = false;
  std::vector<std::string> jobs;
  const bool remote = sched_->jobs_outlive_runner();
  for (auto& [id, t] : trials_) {
    if (!t.active()) continue;
    busy |= read_events(t);
    if (remote && t.exit_reason) {
      // The worker's last word: its launch is over (its processes are ending). Slurm's word
      // on the job follows later and goes to the store; the next job need not wait for it.
      finishing_[t.job] = {t.store_id, t.launches};
      JobState js;
      js.phase = JobState::Phase::kEnded;
      js.node = t.node;
      job_ended(t, js);
      busy = true;
      continue;
    }
    jobs.push_back(t.job);
  }
  for (const auto& [job, launch] : finishing_) jobs.push_back(job);
  const auto states = sched_->poll(jobs);
  for (auto& [id, t] : trials_) {
    if (!t.active()) continue;
    auto it = states.find(t.job);
    if (it == states.end()) continue;
    const JobState& js = it->second;
    if (js.phase != JobState::Phase::kPending && !t.job_started) {
      t.job_started = true;
      t.node = js.node;
      rec_.store().job_running(t.store_id, t.launches, js.node);
      util::logger()->info("trial {}: job {} runs on {}", t.id, t.job,
                           js.node.empty() ? "?" : js.node);
    }
    if (js.phase == JobState::Phase::kEnded) {
      read_events(t);  // its last words were written before it ended
      job_ended(t, js);
      busy = true;
    }
  }
  record_finished_jobs(states);
  idle_ms_ = busy ? 1 : std::min(idle_ms_ * 2, 50);
  if (!busy) std::this_thread::sleep_for(std::chrono::milliseconds(idle_ms_));
}

void Runner::record_finished_jobs(const std::map<std::string, JobState>& states) {
  for (auto it = finishing_.begin(); it != finishing_.end();) {
    auto s = states.find(it->first);
    if (s != states.end() && s->second.phase == JobState::Phase::kEnded) {
      rec_.store().job_ended(it->second.first, it->second.second, s->second.node, s->second.state);
      it = finishing_.erase(it);
    } else {
      ++it;
    }
  }
}

bool Runner::read_events(TrialRun& t) {
  if (t.channel_fault) return false;  // its worker is being stopped
  if (!t.events_tail)
    t.events_tail =
        std::make_shared<record::LineTail>(channel(t).events, t.events_offset, t.events_file);
  // Read and decoded first; a fault in the channel (not in applying an event) stops the worker.
  std::vector<std::pair<record::WorkerEvent, uint64_t>> events;
  std::string fault;
  try {
    for (const auto& [line, end] : t.events_tail->read()) {
      try {
        events.emplace_back(record::decode_event(line), end);
      } catch (const Error& e) {
        throw Error("the worker channel " + channel(t).events.string() +
                    " holds a line that is not a det worker's event at byte " +
                    std::to_string(events.empty() ? t.events_offset : events.back().second) + " (" +
                    e.what() + "): something else writes it");
      }
    }
    t.events_file = t.events_tail->file();
  } catch (const StorageError&) {
    throw;
  } catch (const Error& e) {
    fault = e.what();
  }
  for (const auto& [ev, end] : events) {
    // Consumed before it is applied: a save inside applies both, and a runner that dies in
    // between replays the event (reports and checkpoints are recorded idempotently).
    const int64_t number = t.events_seen++;
    t.events_offset = end;
    on_event(t, ev, number);
  }
  if (!fault.empty()) {
    // The channel is not the worker's alone any more: what it says cannot be trusted, and an
    // answer written into it may never be read. The worker is stopped and the trial goes on
    // from its latest checkpoint in a new launch, with channel files of its own.
    util::logger()->error("trial {}: {}; stopping its worker", t.id, fault);
    t.channel_fault = true;
    t.exit_reason = record::WorkerExit::Reason::kError;
    t.exit_message = util::shorten(fault, 400);
    sched_->kill(t.job);
    return true;
  }
  return !events.empty();
}

void Runner::send_owed(TrialRun& t) {
  if (!t.owed || !t.active()) return;
  std::string line = record::encode(answer_for(*t.owed, t.target, stopping_));
  line.pop_back();
  record::append_channel_line(channel(t).answers, line);
}

bool Runner::already_recorded(const TrialRun& t, const record::MetricsReport& r) {
  if (!t.replaying) return false;
  const auto& s = rec_.trial(t.id);
  const auto& last =
      r.kind == record::MetricsReport::Kind::kTraining ? s.latest_training : s.latest_validation;
  return last && r.batches <= last->batches;
}

void Runner::on_event(TrialRun& t, const record::WorkerEvent& ev, int64_t number) {
  if (auto* r = std::get_if<record::MetricsReport>(&ev)) {
    if (already_recorded(t, *r)) return;
    rec_.record_report(t.id, *r);
    t.batches = std::max(t.batches, r->batches);
    crash_point(r->kind == record::MetricsReport::Kind::kTraining ? "report" : "validation");
  } else if (auto* c = std::get_if<record::CheckpointEvent>(&ev)) {
    crash_point("checkpoint_received");
    rec_.record_checkpoint(t.id, *c);
    t.latest_checkpoint = c->checkpoint.path.string();
    t.checkpoint_batches = c->checkpoint.batches;
    t.owed = record::OwedAnswer{record::OwedAnswer::Kind::kRecorded, number, c->checkpoint.uuid};
    save();
    crash_point("checkpoint_recorded");
    // Recorded: the worker may now commit it and delete the checkpoints it no longer keeps.
    send_owed(t);
    crash_point("checkpoint_answered");
  } else if (auto* tr = std::get_if<record::TargetReached>(&ev)) {
    util::logger()->info("trial {}: reached {} {}, {} = {:.6g}", t.id, tr->length, unit_,
                         cfg_.searcher.metric, tr->metric);
    t.target.reset();
    t.owed = record::OwedAnswer{record::OwedAnswer::Kind::kDecision, number, ""};
    // A NaN or infinite metric is the worst value to the searcher (the trial diverged).
    const double metric = std::isfinite(tr->metric)
                              ? tr->metric
                              : config::worst_value(cfg_.searcher.smaller_is_better);
    handle(searcher_.validation_completed(t.request_id, metric, tr->length));
    crash_point("decision");
    send_owed(t);  // train on to the new target, or checkpoint and exit
  } else {
    const auto& x = std::get<record::WorkerExit>(ev);
    t.exit_reason = x.reason;
    t.exit_message = x.message;
  }
}

}  // namespace det::experiment::detail
