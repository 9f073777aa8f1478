#pragma once
// Internal to the experiment layer: the runner (runner.cpp drives it; runner_events.cpp holds
// how it follows its workers' events). One class: the trial table, the searcher's operations,
// slots and launches, the restart policy applied, the snapshot saved after every decision.
#include "det/experiment/runner.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "det/config/metric.h"
#include "det/experiment/control.h"
#include "det/record/control.h"
#include "det/record/run_dir.h"
#include "det/record/runner_snapshot.h"
#include "det/record/states.h"
#include "det/record/worker_channel.h"
#include "det/record/worker_protocol.h"
#include "det/search/searcher.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/log.h"
#include "det/util/process.h"
#include "det/util/progress.h"
#include "det/util/strings.h"
#include "det/util/threads.h"
#include "launcher.h"
#include "restart_policy.h"
#include "scheduler.h"
#include "search_status.h"

namespace det::experiment {
namespace fs = std::filesystem;
using json = nlohmann::json;
using record::RunState;
using record::TrialStatus;

namespace detail {

/// One trial as the runner sees it: what it saves (record::TrialSnapshot: PAUSED, nothing to
/// do; QUEUED, has a target and waits for slots; RUNNING, a worker trains it; or final) and what
/// holds only while this runner follows its launch.
struct TrialRun : record::TrialSnapshot {
  std::optional<record::FileId> events_file;  ///< The events file read so far (this runner).
  /// The open events file of this launch (held open: a deletion or a replacement is seen).
  std::shared_ptr<record::LineTail> events_tail;
  bool channel_fault = false;  ///< The channel was tampered with: the worker is being stopped.
  bool replaying = false;      ///< Re-attached: reports already recorded are skipped.
  bool killed = false;         ///< det-run kill or kill-trial ended its worker.
  std::vector<int> slot_ids;
  std::optional<record::WorkerExit::Reason>
      exit_reason;  ///< The worker's last word, if it said one.
  std::string exit_message;

  bool final() const { return record::is_final(state); }
  /// A launch is in flight (submitted, running, or not yet seen to end).
  bool active() const { return !job.empty(); }
};

class Runner {
 public:
  Runner(config::ExperimentConfig cfg, Recorder& recorder, uint32_t seed, const RunnerOptions& opt)
      : cfg_(std::move(cfg)), rec_(recorder), seed_(seed), opt_(opt), searcher_(cfg_, seed) {
    spt_ = std::max(1, cfg_.resources.slots_per_trial);
    if (opt_.slots <= 0) opt_.slots = default_slots(cfg_, opt_.scheduler);
    check_slots(cfg_, opt_.slots);
    slot_used_.assign(static_cast<size_t>(opt_.slots), false);
    int by_slots = opt_.slots / spt_;
    int mct = cfg_.searcher.max_concurrent_trials;
    concurrency_ = mct > 0 ? std::min(mct, by_slots) : by_slots;
    unit_ = config::unit_name(cfg_.searcher.max_length ? cfg_.searcher.max_length->unit
                                                       : config::Unit::kBatches);
    if (cfg_.slurm && opt_.scheduler == "local")
      util::logger()->info("the config's slurm: section is not used: the trials run here (local)");
    if (opt_.scheduler == "slurm") {
      sched_ = make_slurm_scheduler(cfg_.slurm.value_or(config::SlurmConfig{}),
                                    record::RunDir(rec_.run_dir()).slurm_script());
    } else {
      sched_ = make_local_scheduler();
    }
    job_tag_ = job_tag(rec_.run_dir());
    inbox_ = std::make_unique<ControlInbox>(rec_.run_dir());
    warm_start_ = warm_start_checkpoint(cfg_, rec_.store());
    paused_ = rec_.summary().state == RunState::kPaused;  // resumed as it was left
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    host_ = host;
  }

  void start() { handle(searcher_.initial_operations()); }

  void restore(const record::RunnerSnapshot& snap) {
    searcher_.restore(snap.searcher);
    next_id_ = snap.next_trial;
    std::vector<int64_t> running_before, attached;
    for (const auto& saved : snap.trials) {
      TrialRun t;
      static_cast<record::TrialSnapshot&>(t) = saved;
      if (reattach(t)) {
        attached.push_back(t.id);
      } else {
        if (t.state == TrialStatus::kRunning) running_before.push_back(t.id);
        resume_from_disk(t);
      }
      by_request_[t.request_id] = t.id;
      trials_[t.id] = t;
    }
    // The trials that were running go first (they held slots), then the queue in its order.
    std::vector<int64_t> order = running_before;
    order.insert(order.end(), snap.ready.begin(), snap.ready.end());
    for (auto& [id, t] : trials_) order.push_back(id);
    std::set<int64_t> seen;
    for (int64_t id : order) {
      auto it = trials_.find(id);
      if (it == trials_.end() || !seen.insert(id).second) continue;
      if (it->second.state == TrialStatus::kQueued) ready_.push_back(id);
    }
    for (auto& [id, t] : trials_) set_state(t, t.state);
    for (int64_t id : attached) {
      TrialRun& t = trials_[id];
      ++running_;
      take_slots(t);
      send_owed(t);  // the answer the worker may still wait on
    }
    save();
  }

  // A running trial whose job may outlive the runner that submitted it: re-attached to it, it is
  // read on where that runner stopped (nothing is trained twice). A launch saved as submitting is
  // looked up by its job name. False when there is no job to re-attach to.
  bool reattach(TrialRun& t) {
    if (t.state != TrialStatus::kRunning || !sched_->jobs_outlive_runner()) return false;
    if (t.job.empty()) {
      if (auto found = sched_->find(job_name(t))) t.job = *found;
    }
    if (t.job.empty()) return false;
    util::logger()->info("trial {}: re-attached to its {} job {}", t.id, sched_->name(), t.job);
    t.replaying = true;
    return true;
  }

  // The disk decides where a trial without a job continues: the newest recorded, complete
  // checkpoint; what it reported after that checkpoint is trained and reported again.
  void resume_from_disk(TrialRun& t) {
    t.job.clear();
    t.owed.reset();
    auto latest = rec_.reconcile_checkpoints(t.id);
    t.latest_checkpoint = latest ? latest->path.string() : "";
    t.checkpoint_batches = latest ? latest->batches : 0;
    if (!t.final()) {
      rec_.rollback(t.id, t.checkpoint_batches);
      t.batches = t.checkpoint_batches;
    }
    if (t.state == TrialStatus::kRunning || t.state == TrialStatus::kQueued)
      t.state = t.target ? TrialStatus::kQueued : TrialStatus::kPaused;
  }

  // Runs the experiment. A failure of the runner itself (its records cannot be written: a full
  // disk) stops every worker at once, tries to record the experiment as STOPPED, and says how
  // to continue: what is recorded is consistent, and --resume-experiment reconciles the rest.
  int run() {
    try {
      return run_loop();
    } catch (const Error& e) {
      // Local workers are killed; jobs that outlive the runner checkpoint and end (the runner
      // that continues the experiment would find them waiting on answers).
      for (auto& [id, t] : trials_) {
        if (!t.active()) continue;
        if (sched_->jobs_outlive_runner())
          sched_->stop(t.job);
        else
          sched_->kill(t.job);
      }
      try {
        rec_.set_experiment_state(RunState::kStopped);
      } catch (const Error&) {  // the disk that failed may still be full
      }
      throw Error(util::shorten(e.what(), 300) + "; the experiment stopped: " +
                  (dynamic_cast<const StorageError*>(&e) ? "free space, then " : "") +
                  "continue with det-run --resume-experiment " + rec_.run_dir().string());
    }
  }

 private:
  int run_loop() {
    util::logger()->info(
        "experiment '{}': searcher {}, {} slot(s), {} slot(s) per trial, up to {} trial(s) at once",
        cfg_.name, cfg_.searcher.name, opt_.slots, spt_, concurrency_);
    rec_.set_experiment_state(paused_ ? RunState::kPaused : RunState::kActive);
    if (paused_)
      util::logger()->info("experiment {} is PAUSED: det-run activate {} goes on",
                           rec_.experiment_id(), rec_.experiment_id());
    if (many_trials())  // a resumed search has done part already: the ETA is from here
      status_ =
          std::make_unique<SearchStatus>(cfg_.searcher, opt_.show_progress, searcher_.progress());
    for (;;) {
      if (opt_.stop_flag && opt_.stop_flag->load() && !stopping_) begin_stop();
      poll_control();
      schedule();
      if (running_ == 0) {
        if (stopping_ || searcher_.shutdown()) break;
        if (paused_) {
          settle_pause();
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
          continue;
        }
        if (ready_.empty() && !close_stranded_trials()) break;
        continue;
      }
      wait_for_events();
      show_search_status();
    }
    if (status_) {
      status_->finish(counts(), rec_.summary(), searcher_.progress());
      status_.reset();
    }
    return finish();
  }

  // ---- search progress ----

  // Whether the runner shows the search's line (a search of several trials) rather than a lone
  // worker its own.
  bool many_trials() const { return cfg_.searcher.name != "single"; }

  TrialCounts counts() const {
    TrialCounts c;
    for (const auto& [id, t] : trials_) c.add(t.state);
    return c;
  }

  void show_search_status() {
    if (status_) status_->show(counts(), rec_.summary(), searcher_.progress());
  }

  // ---- searcher operations ----

  void handle(std::vector<search::Operation> ops) {
    std::deque<search::Operation> queue(ops.begin(), ops.end());
    auto push = [&](std::vector<search::Operation> more) {
      queue.insert(queue.end(), more.begin(), more.end());
    };
    while (!queue.empty()) {
      search::Operation op = std::move(queue.front());
      queue.pop_front();
      util::logger()->debug("searcher: {}", search::to_string(op));
      if (auto* c = std::get_if<search::Create>(&op)) {
        TrialRun t;
        t.id = next_id_++;
        t.request_id = c->request_id;
        t.store_id = rec_.add_trial(t.id, c->request_id, c->hparams, c->trial_seed);
        by_request_[t.request_id] = t.id;
        trials_[t.id] = t;
        set_state(trials_[t.id], TrialStatus::kPaused);
        util::logger()->info("trial {}: created with {}", t.id, c->hparams.dump());
        push(searcher_.trial_created(c->request_id));
      } else if (auto* v = std::get_if<search::ValidateAfter>(&op)) {
        TrialRun* t = find(v->request_id);
        if (!t || t->final()) continue;
        t->target = v->length;
        rec_.trial(t->id).target = v->length;
        if (t->state == TrialStatus::kPaused) queue_trial(*t);
      } else if (auto* cl = std::get_if<search::Close>(&op)) {
        TrialRun* t = find(cl->request_id);
        if (!t || t->final()) continue;
        // Close comes after the trial's last ValidateAfter: it closes once that work is done.
        t->close_requested = true;
        if (t->state == TrialStatus::kPaused) {
          set_state(*t, TrialStatus::kCompleted);
          push(searcher_.trial_closed(t->request_id));
        }
      } else if (auto* sd = std::get_if<search::Shutdown>(&op)) {
        util::logger()->info("searcher: shutdown{}{}",
                             sd->cancel ? " (every trial was cancelled)" : "",
                             sd->failure ? " (every trial failed)" : "");
      }
    }
    save();
  }

  TrialRun* find(const std::string& request_id) {
    auto it = by_request_.find(request_id);
    return it == by_request_.end() ? nullptr : &trials_[it->second];
  }

  void queue_trial(TrialRun& t) {
    set_state(t, TrialStatus::kQueued);
    ready_.push_back(t.id);
  }

  void set_state(TrialRun& t, TrialStatus state) {
    t.state = state;
    rec_.set_trial_state(t.id, state);
  }

  // ---- state ----

  record::RunnerSnapshot snapshot() const {
    record::RunnerSnapshot snap;
    snap.experiment_seed = seed_;
    snap.searcher = searcher_.snapshot();
    snap.next_trial = next_id_;
    for (const auto& [id, t] : trials_) snap.trials.push_back(t);
    for (int64_t id : ready_)
      if (trials_.at(id).state == TrialStatus::kQueued) snap.ready.push_back(id);
    snap.scheduler = sched_->name();
    snap.slots = opt_.slots;
    return snap;
  }

  void save() {
    rec_.summary_mut().searcher_progress = searcher_.progress();
    rec_.save();
    rec_.save_runner_snapshot(snapshot().to_json());
  }

  // ---- workers ----

  void schedule() {
    while (!stopping_ && !paused_ && !ready_.empty() && running_ < concurrency_ &&
           free_slots() >= spt_) {
      int64_t id = ready_.front();
      ready_.pop_front();
      TrialRun& t = trials_[id];
      if (t.state != TrialStatus::kQueued || !t.target) continue;
      launch(t);
    }
  }

  // The budget less the slots in use (det-run set max-slots may have shrunk it below them).
  int free_slots() const {
    const int used = static_cast<int>(std::count(slot_used_.begin(), slot_used_.end(), true));
    return std::max(0, opt_.slots - used);
  }

  std::string job_name(const TrialRun& t) const {
    return job_tag_ + "-" + std::to_string(t.id) + "." + std::to_string(t.launches);
  }

  record::ChannelFiles channel(const TrialRun& t) const {
    return record::ChannelFiles::of(rec_.trial_dir(t.id), t.launches);
  }

  // The first free slots, one trial's worth (a re-attached job may find fewer when --slots
  // shrank: it runs on, and the runner starts nothing new until the budget allows).
  void take_slots(TrialRun& t) {
    t.slot_ids.clear();
    for (size_t i = 0; i < slot_used_.size() && static_cast<int>(t.slot_ids.size()) < spt_; ++i)
      if (!slot_used_[i]) {
        slot_used_[i] = true;
        t.slot_ids.push_back(static_cast<int>(i));
      }
  }

  void launch(TrialRun& t) {
    take_slots(t);
    ++t.launches;
    t.events_offset = 0;
    t.events_file.reset();
    t.events_tail.reset();
    t.channel_fault = false;
    t.events_seen = 0;
    t.owed.reset();
    t.job_started = false;
    t.node.clear();
    t.replaying = false;
    t.exit_reason.reset();
    t.exit_message.clear();
    const bool remote = sched_->jobs_outlive_runner();
    WorkerLaunch w;
    w.executable = opt_.executable;
    w.run_dir = rec_.run_dir();
    w.trial = t.id;
    w.target = *t.target;
    w.launch = t.launches;
    w.resume = t.latest_checkpoint;
    if (w.resume.empty() && warm_start_) w.warm_start = warm_start_->string();
    w.own_progress = !remote && opt_.show_progress && concurrency_ == 1 && !many_trials();
    w.quiet_console = !remote && status_ && status_->on_terminal();
    // Trials at once share this machine's CPUs; a Slurm job's worker uses its allocation's.
    if (!remote && concurrency_ > 1) w.threads = util::default_intra_op_threads(concurrency_);
    w.extra_args = opt_.worker_args;

    JobRequest job;
    job.name = job_name(t);
    job.argv = worker_argv(w);
    job.slots = spt_;
    const fs::path trial_dir = rec_.trial_dir(t.id);
    fs::create_directories(trial_dir);
    job.output = record::TrialDir(trial_dir).slurm_output(t.launches);
    // Files of this launch number left by a runner that died before it saved the launch.
    const auto files = channel(t);
    fs::remove(files.events);
    fs::remove(files.answers);
    if (!remote) {
      job.env = worker_env(t.slot_ids);  // ours plus the slots it owns
    } else {
      // Saved before sbatch: a runner that dies in between finds the job by its name.
      set_state(t, TrialStatus::kRunning);
      rec_.trial(t.id).launches = t.launches;
      save();
    }
    t.job = sched_->submit(job);
    ++running_;
    rec_.trial(t.id).launches = t.launches;
    rec_.store().add_job(t.store_id, t.launches, sched_->name(), t.job);
    if (!remote) {
      t.node = host_;
      t.job_started = true;
      rec_.store().job_running(t.store_id, t.launches, host_);
    }
    set_state(t, TrialStatus::kRunning);
    util::logger()->info(
        "trial {}: {} {} started: train to {} {}{}", t.id, remote ? "Slurm job" : "worker", t.job,
        *t.target, unit_,
        t.latest_checkpoint.empty()
            ? ""
            : " from checkpoint " + fs::path(t.latest_checkpoint).filename().string());
    save();
    crash_point("launch");
  }

  // Reads what the workers wrote, then asks the scheduler which jobs ended; sleeps a little
  // (up to 50 ms) when nothing happened.
  void wait_for_events();

  // ---- control: commands from det-run pause|activate|cancel|kill|kill-trial|set
  // (runner_control.cpp) ----

  void poll_control();
  record::ControlAnswer obey(const record::ControlCommand& command);
  record::ControlAnswer pause();
  record::ControlAnswer activate();
  record::ControlAnswer cancel(bool kill);
  record::ControlAnswer kill_trial(int64_t number);
  record::ControlAnswer set_max_slots(int slots);
  // PAUSED once the last worker stopped.
  void settle_pause();
  int finish_canceled();

  // The final states of jobs whose workers already said their last word.
  void record_finished_jobs(const std::map<std::string, JobState>& states);

  // Consumes the events the trial's worker appended since the last call. True if there were any.
  bool read_events(TrialRun& t);

  // Writes the answer the trial's worker is owed (again, after a restart: the worker skips
  // answers to events it is past).
  void send_owed(TrialRun& t);

  // A report of a re-attached trial that the runner before this one already recorded.
  bool already_recorded(const TrialRun& t, const record::MetricsReport& r);

  void on_event(TrialRun& t, const record::WorkerEvent& ev, int64_t number);

  void job_ended(TrialRun& t, const JobState& js) {
    using Reason = record::WorkerExit::Reason;
    // A local worker's exit status; a Slurm job's worker said its status in its last word.
    int code = -1;
    if (js.wait_status)
      code = WIFEXITED(*js.wait_status) ? WEXITSTATUS(*js.wait_status) : -1;
    else if (t.exit_reason)
      code = exit_code_for(*t.exit_reason);
    const std::string how = js.wait_status     ? util::describe_wait_status(*js.wait_status)
                            : js.state.empty() ? "said its last word"
                                               : "ended as " + js.state;
    util::logger()->info("trial {}: {} {} ended ({}{})", t.id,
                         sched_->jobs_outlive_runner() ? "job" : "worker", t.job,
                         t.exit_reason ? record::reason_name(*t.exit_reason) : "no report",
                         code == 0 ? "" : ", " + how);
    if (!js.state.empty()) rec_.store().job_ended(t.store_id, t.launches, js.node, js.state);
    JobEndFacts facts;
    facts.exit_reason = t.exit_reason;
    facts.exit_code = code;
    facts.never_ran = t.events_seen == 0;
    facts.cancelled_by_scheduler = js.cancelled;
    facts.stopping = stopping_ || paused_;
    facts.killed = t.killed;
    facts.has_target = t.target.has_value();
    facts.close_requested = t.close_requested;
    facts.restarts = t.restarts;
    facts.max_restarts = cfg_.max_restarts;
    release(t);
    const std::string why = t.exit_reason == Reason::kError && !t.exit_message.empty()
                                ? t.exit_message
                                : (js.wait_status ? "it " + how : "its job " + how);
    apply(t, decide_job_end(facts), why, js.state);
  }

  // The launch is over: its job, descriptor, owed answer and slots are let go.
  void release(TrialRun& t) {
    t.job.clear();
    t.events_tail.reset();  // its descriptor: a search of many trials holds one per running trial
    t.owed.reset();
    t.replaying = false;
    --running_;
    for (int s : t.slot_ids) slot_used_[static_cast<size_t>(s)] = false;
    t.slot_ids.clear();
  }

  // Carries out the restart policy's decision for a trial whose job ended.
  void apply(TrialRun& t, const JobEndDecision& d, const std::string& why,
             const std::string& job_state) {
    if (d.count_restart) restart_from_checkpoint(t, why);
    if (d.kind == JobEnd::kKilled)
      rec_.reconcile_checkpoints(t.id);  // it may have died writing one
    log_job_end(t, d, why, job_state);
    if (d.keep_message) rec_.trial(t.id).message = t.exit_message;
    if (d.kind == JobEnd::kStopRequested) rec_.trial(t.id).early_exit = true;
    if (d.kind == JobEnd::kStorageFull) storage_error_ = t.exit_message;
    if (d.clear_target) t.target.reset();
    set_state(t, d.next);
    if (d.enqueue) ready_.push_back(t.id);
    if (d.stop_experiment) begin_stop();
    if (d.exited_early)
      exited_early(t, *d.exited_early);
    else if (d.close)
      handle(searcher_.trial_closed(t.request_id));
    else
      save();
  }

  // A restart is counted and recorded. The worker may have died writing or committing a
  // checkpoint: the disk and the store agree again, and what it reported after its latest
  // checkpoint is trained again from that checkpoint.
  void restart_from_checkpoint(TrialRun& t, const std::string& why) {
    ++t.restarts;
    rec_.add_restart(t.id, why);
    auto latest = rec_.reconcile_checkpoints(t.id);
    t.latest_checkpoint = latest ? latest->path.string() : "";
    t.checkpoint_batches = latest ? latest->batches : 0;
    rec_.rollback(t.id, t.checkpoint_batches);
    t.batches = t.checkpoint_batches;
  }

  void log_job_end(const TrialRun& t, const JobEndDecision& d, const std::string& why,
                   const std::string& job_state) {
    const JobEndLog line = describe_job_end(d, {t.id, why, job_state, t.exit_message, t.restarts,
                                                cfg_.max_restarts, t.latest_checkpoint});
    using Level = JobEndLog::Level;
    if (line.level == Level::kInfo) util::logger()->info("{}", line.text);
    if (line.level == Level::kWarn) util::logger()->warn("{}", line.text);
    if (line.level == Level::kError) util::logger()->error("{}", line.text);
  }

  // Tells the searcher the trial ended before it closed it, then that it is closed.
  void exited_early(TrialRun& t, search::ExitedReason reason) {
    auto ops = searcher_.trial_exited_early(t.request_id, reason);
    auto more = searcher_.trial_closed(t.request_id);
    ops.insert(ops.end(), more.begin(), more.end());
    handle(std::move(ops));
  }

  // Nothing runs and nothing is queued, yet the searcher has not shut down: it waits on trials that
  // will never report. Closes the paused ones so the search can end; false if there were none.
  bool close_stranded_trials() {
    std::vector<search::Operation> ops;
    int closed = 0;
    for (auto& [id, t] : trials_) {
      if (t.final() || t.state == TrialStatus::kRunning) continue;
      util::logger()->warn("trial {}: the searcher has no more work for it; closing it", t.id);
      t.target.reset();
      set_state(t, TrialStatus::kCompleted);
      auto more = searcher_.trial_closed(t.request_id);
      ops.insert(ops.end(), more.begin(), more.end());
      ++closed;
    }
    if (closed == 0) {
      util::logger()->error(
          "the searcher neither gives work nor shuts down after {} trial(s); ending the experiment",
          trials_.size());
      return false;
    }
    handle(std::move(ops));
    return true;
  }

  void begin_stop() {
    stopping_ = true;
    util::logger()->warn(
        "stopping: the {} running worker(s) checkpoint and exit (Ctrl-C again to kill them)",
        running_);
    for (auto& [id, t] : trials_)
      if (t.active()) sched_->stop(t.job);
  }

  int finish() {
    // Slurm's final word on the last jobs (a few seconds at most: their workers have exited).
    for (int i = 0; i < 30 && !finishing_.empty(); ++i) {
      std::vector<std::string> jobs;
      for (const auto& [job, launch] : finishing_) jobs.push_back(job);
      record_finished_jobs(sched_->poll(jobs));
      if (!finishing_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    save();
    if (canceling_) return finish_canceled();
    return stopping_ ? finish_stopped() : finish_search();
  }

  int finish_stopped();
  // The trial with the best validation of the searcher's metric, if any validated.
  const TrialRun* best_trial(std::optional<double>* best_value) const;
  int finish_search();

  config::ExperimentConfig cfg_;
  Recorder& rec_;
  uint32_t seed_;
  RunnerOptions opt_;
  search::Searcher searcher_;
  std::unique_ptr<Scheduler> sched_;
  std::string job_tag_, host_;
  /// Jobs whose workers said their last word, until Slurm says how they ended: job -> (trial's
  /// store id, launch).
  std::map<std::string, std::pair<int64_t, int64_t>> finishing_;
  int idle_ms_ = 1;
  int spt_ = 1, concurrency_ = 1, running_ = 0;
  std::string unit_;
  std::vector<bool> slot_used_;
  std::map<int64_t, TrialRun> trials_;
  std::map<std::string, int64_t> by_request_;
  std::deque<int64_t> ready_;
  int64_t next_id_ = 1;
  bool stopping_ = false;
  bool paused_ = false;     ///< det-run pause: no trial starts; running ones checkpoint and stop.
  bool canceling_ = false;  ///< det-run cancel or kill: the experiment ends CANCELED.
  std::unique_ptr<ControlInbox> inbox_;
  std::optional<fs::path> warm_start_;  ///< searcher.source_*: where new trials start from.
  std::chrono::steady_clock::time_point next_control_{};
  std::unique_ptr<SearchStatus> status_;  ///< The search's line (searches of several trials).
  std::string storage_error_;             ///< Why a worker could not write (the experiment stops).
};

}  // namespace detail
}  // namespace det::experiment
