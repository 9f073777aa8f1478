#include "det/experiment/runner.h"

#include <fcntl.h>
#include <poll.h>
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
#include <optional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "det/config/metric.h"
#include "det/record/worker_protocol.h"
#include "det/search/searcher.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/log.h"
#include "det/util/process.h"
#include "det/util/progress.h"
#include "det/util/strings.h"
#include "det/util/threads.h"

namespace det::experiment {
namespace fs = std::filesystem;
using json = nlohmann::json;

void check_slots(const config::ExperimentConfig& config, int slots) {
  int spt = std::max(1, config.resources.slots_per_trial);
  if (slots < spt)
    throw UsageError("--slots " + std::to_string(slots) +
                     " is fewer than resources.slots_per_trial (" + std::to_string(spt) + ") in " +
                     config.source + ": give at least --slots " + std::to_string(spt));
}

namespace {

/// One trial as the runner sees it.
struct TrialRun {
  int64_t id = 0, store_id = 0;
  std::string request_id;
  /// PAUSED: nothing to do; QUEUED: has a target, waits for slots; RUNNING: a worker trains it;
  /// final: COMPLETED, ERROR, INVALID_HP.
  std::string state = "PAUSED";
  std::optional<int64_t> target;  ///< The ValidateAfter length it trains toward.
  bool close_requested = false;
  int restarts = 0;
  int launches = 0;
  std::string latest_checkpoint;   ///< Directory to resume from ("" = from scratch).
  int64_t checkpoint_batches = 0;  ///< Batches trained at that checkpoint.
  int64_t batches = 0;

  // While a worker runs.
  pid_t pid = -1;
  int report_fd = -1, control_fd = -1;
  util::LineBuffer buffer;
  std::vector<int> slot_ids;
  std::optional<record::WorkerExit::Reason>
      exit_reason;  ///< The worker's last word, if it said one.
  std::string exit_message;

  bool final() const { return state == "COMPLETED" || state == "ERROR" || state == "INVALID_HP"; }

  json to_json() const {
    return {{"id", id},
            {"store_id", store_id},
            {"request_id", request_id},
            {"state", state},
            {"target", target ? json(*target) : json(nullptr)},
            {"close_requested", close_requested},
            {"restarts", restarts},
            {"launches", launches},
            {"latest_checkpoint", latest_checkpoint},
            {"checkpoint_batches", checkpoint_batches},
            {"batches", batches}};
  }
  static TrialRun from_json(const json& j) {
    TrialRun t;
    t.id = j.at("id").get<int64_t>();
    t.store_id = j.at("store_id").get<int64_t>();
    t.request_id = j.at("request_id").get<std::string>();
    t.state = j.at("state").get<std::string>();
    if (!j.at("target").is_null()) t.target = j["target"].get<int64_t>();
    t.close_requested = j.at("close_requested").get<bool>();
    t.restarts = j.at("restarts").get<int>();
    t.launches = j.value("launches", 0);
    t.latest_checkpoint = j.at("latest_checkpoint").get<std::string>();
    t.checkpoint_batches = j.value("checkpoint_batches", int64_t{0});
    t.batches = j.at("batches").get<int64_t>();
    return t;
  }
};

// Test hook (docs/testing.md): DET_TEST_RUNNER_CRASH="<point>:<n>" kills the runner with
// SIGKILL the n-th time it passes <point>, so tests can show that an experiment survives its
// runner dying at any of them.
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

class Runner {
 public:
  Runner(config::ExperimentConfig cfg, Recorder& recorder, uint32_t seed, const RunnerOptions& opt)
      : cfg_(std::move(cfg)), rec_(recorder), seed_(seed), opt_(opt), searcher_(cfg_, seed) {
    spt_ = std::max(1, cfg_.resources.slots_per_trial);
    check_slots(cfg_, opt_.slots);
    slot_used_.assign(static_cast<size_t>(opt_.slots), false);
    int by_slots = opt_.slots / spt_;
    int mct = cfg_.searcher.max_concurrent_trials;
    concurrency_ = mct > 0 ? std::min(mct, by_slots) : by_slots;
    unit_ = config::unit_name(cfg_.searcher.max_length ? cfg_.searcher.max_length->unit
                                                       : config::Unit::kBatches);
  }

  void start() { handle(searcher_.initial_operations()); }

  void restore(const json& snap) {
    searcher_.restore(snap.at("searcher"));
    next_id_ = snap.at("next_trial").get<int64_t>();
    std::vector<int64_t> running_before;
    for (const auto& j : snap.at("trials")) {
      TrialRun t = TrialRun::from_json(j);
      // The disk decides where each trial continues: the newest recorded, complete checkpoint.
      auto latest = rec_.reconcile_checkpoints(t.id);
      t.latest_checkpoint = latest ? latest->path.string() : "";
      t.checkpoint_batches = latest ? latest->batches : 0;
      if (t.state == "RUNNING") running_before.push_back(t.id);
      if (!t.final()) {
        // What a trial reported after that checkpoint is trained and reported again.
        rec_.rollback(t.id, t.checkpoint_batches);
        t.batches = t.checkpoint_batches;
      }
      if (t.state == "RUNNING" || t.state == "QUEUED") t.state = t.target ? "QUEUED" : "PAUSED";
      by_request_[t.request_id] = t.id;
      trials_[t.id] = t;
    }
    // The trials that were running go first (they held slots), then the queue in its order.
    std::vector<int64_t> order = running_before;
    for (const auto& id : snap.value("ready", json::array())) order.push_back(id.get<int64_t>());
    for (auto& [id, t] : trials_) order.push_back(id);
    std::set<int64_t> seen;
    for (int64_t id : order) {
      auto it = trials_.find(id);
      if (it == trials_.end() || !seen.insert(id).second) continue;
      if (it->second.state == "QUEUED") ready_.push_back(id);
    }
    for (auto& [id, t] : trials_) set_state(t, t.state);
    save();
  }

  // Runs the experiment. A failure of the runner itself (its records cannot be written: a full
  // disk) stops every worker at once, tries to record the experiment as STOPPED, and says how
  // to continue: what is recorded is consistent, and --resume-experiment reconciles the rest.
  int run() {
    try {
      return run_loop();
    } catch (const Error& e) {
      for (auto& [id, t] : trials_)
        if (t.pid > 0) ::kill(t.pid, SIGKILL);
      for (auto& [id, t] : trials_)
        if (t.pid > 0) ::waitpid(t.pid, nullptr, 0);
      try {
        rec_.set_experiment_state("STOPPED");
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
    rec_.set_experiment_state("ACTIVE");
    started_ = std::chrono::steady_clock::now();
    last_status_log_ = started_;
    progress_at_start_ = searcher_.progress();  // a resumed search has done part already
    if (many_trials()) status_line_ = std::make_unique<util::ProgressLine>(opt_.show_progress);
    for (;;) {
      if (opt_.stop_flag && opt_.stop_flag->load() && !stopping_) begin_stop();
      schedule();
      if (running_ == 0) {
        if (stopping_ || searcher_.shutdown()) break;
        if (ready_.empty() && !close_stranded_trials()) break;
        continue;
      }
      wait_for_events();
      show_search_status();
    }
    if (status_line_) {
      status_line_.reset();
      util::logger()->info("{}", search_status());  // where the search ended, in the log too
    }
    return finish();
  }

  // ---- search progress ----

  // Whether the runner shows the search's line (a search of several trials) rather than a lone
  // worker its own.
  bool many_trials() const { return cfg_.searcher.name != "single"; }

  std::string search_status() const {
    int done = 0, running = 0, waiting = 0, failed = 0;
    for (const auto& [id, t] : trials_) {
      if (t.state == "COMPLETED" || t.state == "STOPPED")
        ++done;
      else if (t.state == "RUNNING")
        ++running;
      else if (t.state == "ERROR" || t.state == "INVALID_HP")
        ++failed;
      else
        ++waiting;
    }
    std::string line = "search: " + std::to_string(done);
    if (cfg_.searcher.name != "grid") line += "/" + std::to_string(cfg_.searcher.max_trials);
    line += " trials done, " + std::to_string(running) + " running, " + std::to_string(waiting) +
            " paused, " + std::to_string(failed) + " failed";
    std::optional<double> best;
    int64_t best_trial = 0, batches = 0;
    for (const auto& t : rec_.summary().trials) {
      batches += t.batches_trained;
      if (!t.best_validation) continue;
      auto v = record::metric_value(t.best_validation->metrics.value(cfg_.searcher.metric, json()));
      if (v && config::is_better(*v, best, cfg_.searcher.smaller_is_better)) {
        best = v;
        best_trial = t.id;
      }
    }
    char buf[160];
    if (best) {
      std::snprintf(buf, sizeof buf, " | best %s %.6g (trial %lld)", cfg_.searcher.metric.c_str(),
                    *best, static_cast<long long>(best_trial));
      line += buf;
    }
    const double p = searcher_.progress();
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
    const double rate = (p - progress_at_start_) / std::max(elapsed, 1e-9);  // this runner's
    if (p > 0.001 && p < 1 && rate > 0) {
      // The searcher's progress is its share of the planned training: the plan in batches follows.
      std::snprintf(buf, sizeof buf, " | %lld/~%lld batches (%.0f%%) | ETA %s",
                    static_cast<long long>(batches),
                    static_cast<long long>(std::llround(static_cast<double>(batches) / p)), 100 * p,
                    util::format_duration((1 - p) / rate).c_str());
    } else {
      std::snprintf(buf, sizeof buf, " | %lld batches", static_cast<long long>(batches));
    }
    line += buf;
    return line;
  }

  // On a terminal, the search's line, redrawn; elsewhere a log line every 30 s when it changed.
  void show_search_status() {
    if (!status_line_) return;
    const std::string text = search_status();
    if (status_line_->enabled()) {
      status_line_->update(text);
      return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (text != last_status_ && now - last_status_log_ >= std::chrono::seconds(30)) {
      util::logger()->info("{}", text);
      last_status_ = text;
      last_status_log_ = now;
    }
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
        set_state(trials_[t.id], "PAUSED");
        util::logger()->info("trial {}: created with {}", t.id, c->hparams.dump());
        push(searcher_.trial_created(c->request_id));
      } else if (auto* v = std::get_if<search::ValidateAfter>(&op)) {
        TrialRun* t = find(v->request_id);
        if (!t || t->final()) continue;
        t->target = v->length;
        rec_.trial(t->id).target = v->length;
        if (t->state == "PAUSED") queue_trial(*t);
      } else if (auto* cl = std::get_if<search::Close>(&op)) {
        TrialRun* t = find(cl->request_id);
        if (!t || t->final()) continue;
        // Close comes after the trial's last ValidateAfter: it closes once that work is done.
        t->close_requested = true;
        if (t->state == "PAUSED") {
          set_state(*t, "COMPLETED");
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
    set_state(t, "QUEUED");
    ready_.push_back(t.id);
  }

  void set_state(TrialRun& t, const std::string& state) {
    t.state = state;
    rec_.set_trial_state(t.id, state);
  }

  // ---- state ----

  json snapshot() const {
    json trials = json::array();
    for (const auto& [id, t] : trials_) trials.push_back(t.to_json());
    json ready = json::array();
    for (int64_t id : ready_)
      if (trials_.at(id).state == "QUEUED") ready.push_back(id);
    return {
        {"format_version", 1},    {"experiment_seed", seed_}, {"searcher", searcher_.snapshot()},
        {"next_trial", next_id_}, {"trials", trials},         {"ready", ready}};
  }

  void save() {
    rec_.summary_mut().searcher_progress = searcher_.progress();
    rec_.save();
    rec_.save_runner_snapshot(snapshot());
  }

  // ---- workers ----

  void schedule() {
    while (!stopping_ && !ready_.empty() && running_ < concurrency_ && free_slots() >= spt_) {
      int64_t id = ready_.front();
      ready_.pop_front();
      TrialRun& t = trials_[id];
      if (t.state != "QUEUED" || !t.target) continue;
      launch(t);
    }
  }

  int free_slots() const {
    return static_cast<int>(std::count(slot_used_.begin(), slot_used_.end(), false));
  }

  void launch(TrialRun& t) {
    t.slot_ids.clear();
    for (size_t i = 0; i < slot_used_.size() && static_cast<int>(t.slot_ids.size()) < spt_; ++i)
      if (!slot_used_[i]) {
        slot_used_[i] = true;
        t.slot_ids.push_back(static_cast<int>(i));
      }
    std::vector<std::string> args = {opt_.executable.string(),
                                     "__worker",
                                     "--run-dir",
                                     rec_.run_dir().string(),
                                     "--trial",
                                     std::to_string(t.id),
                                     "--target",
                                     std::to_string(*t.target)};
    if (!t.latest_checkpoint.empty()) args.insert(args.end(), {"--resume", t.latest_checkpoint});
    if (!(opt_.show_progress && concurrency_ == 1) || many_trials())
      args.push_back("--no-progress");
    // The search's line owns the terminal: a worker's own log lines go to its trial.log (and
    // `det-run logs`), and only its warnings to the terminal.
    if (status_line_ && status_line_->enabled())
      args.insert(args.end(), {"--console-level", "warn"});
    if (concurrency_ > 1) {  // trials at once share the CPUs
      if (int threads = util::default_intra_op_threads(concurrency_); threads > 0)
        args.insert(args.end(), {"--threads", std::to_string(threads)});
    }
    args.insert(args.end(), opt_.worker_args.begin(), opt_.worker_args.end());

    // The child's environment: ours plus the slots it owns.
    std::vector<std::string> devices;
    const char* cvd = std::getenv("CUDA_VISIBLE_DEVICES");
    std::vector<std::string> visible = cvd ? util::split(cvd, ',') : std::vector<std::string>{};
    std::vector<std::string> ids;
    for (int s : t.slot_ids) {
      ids.push_back(std::to_string(s));
      devices.push_back(static_cast<size_t>(s) < visible.size() ? visible[static_cast<size_t>(s)]
                                                                : std::to_string(s));
    }
    int report[2], control[2];
    if (::pipe2(report, O_CLOEXEC) != 0 || ::pipe2(control, O_CLOEXEC) != 0)
      throw Error(std::string("cannot create a pipe for a trial worker: ") + std::strerror(errno));
    util::SpawnOptions so;
    so.argv = args;
    so.env = util::environment({"CUDA_VISIBLE_DEVICES", "DET_SLOT_IDS"},
                               {"DET_SLOT_IDS=" + util::join(ids, ","),
                                "CUDA_VISIBLE_DEVICES=" + util::join(devices, ",")});
    so.fds = {{3, report[1]}, {4, control[0]}};
    // Own process group: a Ctrl-C reaches the runner, which stops the workers in order.
    so.new_process_group = true;
    // A worker dies with its runner: nothing writes into the run directory unowned. The
    // experiment continues with --resume-experiment from what is recorded.
    so.parent_death_signal = SIGKILL;
    pid_t pid = util::spawn(so);
    ::close(report[1]);
    ::close(control[0]);
    t.pid = pid;
    t.report_fd = report[0];
    t.control_fd = control[1];
    t.buffer = util::LineBuffer();
    t.exit_reason.reset();
    t.exit_message.clear();
    ++t.launches;
    ++running_;
    rec_.trial(t.id).launches = t.launches;
    set_state(t, "RUNNING");
    util::logger()->info(
        "trial {}: worker {} started: train to {} {}{}", t.id, pid, *t.target, unit_,
        t.latest_checkpoint.empty()
            ? ""
            : " from checkpoint " + fs::path(t.latest_checkpoint).filename().string());
    save();
    crash_point("launch");
  }

  void wait_for_events() {
    std::vector<pollfd> fds;
    std::vector<int64_t> ids;
    for (auto& [id, t] : trials_)
      if (t.pid > 0) {
        fds.push_back({t.report_fd, POLLIN, 0});
        ids.push_back(id);
      }
    int n = ::poll(fds.data(), fds.size(), 200);
    if (n < 0) {
      if (errno == EINTR) return;
      throw Error(std::string("poll on the trial workers failed: ") + std::strerror(errno));
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      TrialRun& t = trials_[ids[i]];
      char buf[65536];
      ssize_t got = ::read(t.report_fd, buf, sizeof buf);
      if (got < 0 && errno == EINTR) continue;
      if (got > 0) {
        t.buffer.append(buf, static_cast<size_t>(got));
        while (auto line = t.buffer.next_line()) on_event(t, *line);
      } else {
        worker_exited(t);
      }
    }
  }

  void reply(TrialRun& t, const record::RunnerAnswer& answer) {
    // A dead worker makes this fail with EPIPE; its exit is handled when its report pipe closes.
    if (t.control_fd >= 0) util::write_all(t.control_fd, record::encode(answer));
  }

  void on_event(TrialRun& t, const std::string& line) {
    record::WorkerEvent ev;
    try {
      ev = record::decode_event(line);
    } catch (const Error& e) {
      util::logger()->warn("trial {}: ignoring a malformed report from its worker: {}", t.id,
                           e.what());
      return;
    }
    if (auto* r = std::get_if<record::MetricsReport>(&ev)) {
      rec_.record_report(t.id, *r);
      t.batches = std::max(t.batches, r->batches);
      crash_point(r->kind == record::MetricsReport::Kind::kTraining ? "report" : "validation");
    } else if (auto* c = std::get_if<record::CheckpointEvent>(&ev)) {
      crash_point("checkpoint_received");
      rec_.record_checkpoint(t.id, *c);
      t.latest_checkpoint = c->checkpoint.path.string();
      t.checkpoint_batches = c->checkpoint.batches;
      save();
      crash_point("checkpoint_recorded");
      // Recorded: the worker may now commit it and delete the checkpoints it no longer keeps.
      reply(t, {record::RunnerAnswer::Kind::kRecorded, 0, c->checkpoint.uuid});
      crash_point("checkpoint_answered");
    } else if (auto* tr = std::get_if<record::TargetReached>(&ev)) {
      util::logger()->info("trial {}: reached {} {}, {} = {:.6g}", t.id, tr->length, unit_,
                           cfg_.searcher.metric, tr->metric);
      t.target.reset();
      // A NaN or infinite metric is the worst value to the searcher (the trial diverged).
      const double metric = std::isfinite(tr->metric)
                                ? tr->metric
                                : config::worst_value(cfg_.searcher.smaller_is_better);
      handle(searcher_.validation_completed(t.request_id, metric, tr->length));
      crash_point("decision");
      if (t.target && !stopping_) {
        reply(t, {record::RunnerAnswer::Kind::kTarget, *t.target, ""});
      } else {
        reply(t, {record::RunnerAnswer::Kind::kExit, 0, ""});
      }
    } else {
      const auto& x = std::get<record::WorkerExit>(ev);
      t.exit_reason = x.reason;
      t.exit_message = x.message;
    }
  }

  void worker_exited(TrialRun& t) {
    ::close(t.report_fd);
    ::close(t.control_fd);
    t.report_fd = t.control_fd = -1;
    int status = 0;
    while (::waitpid(t.pid, &status, 0) < 0 && errno == EINTR) {
    }
    using Reason = record::WorkerExit::Reason;
    util::logger()->info("trial {}: worker {} ended ({}{})", t.id, t.pid,
                         t.exit_reason ? record::reason_name(*t.exit_reason) : "no report",
                         WIFEXITED(status) && WEXITSTATUS(status) == 0
                             ? ""
                             : ", " + util::describe_wait_status(status));
    t.pid = -1;
    --running_;
    for (int s : t.slot_ids) slot_used_[static_cast<size_t>(s)] = false;
    t.slot_ids.clear();
    const bool exited = WIFEXITED(status);
    const int code = exited ? WEXITSTATUS(status) : -1;

    if (t.exit_reason == Reason::kInvalidHP && code == record::kWorkerExitInvalidHP) {
      util::logger()->warn("trial {}: rejected its hyperparameters ({}); the searcher replaces it",
                           t.id, t.exit_message);
      rec_.trial(t.id).message = t.exit_message;
      t.target.reset();
      set_state(t, "INVALID_HP");
      exited_early(t, search::ExitedReason::kInvalidHP);
    } else if (t.exit_reason == Reason::kStorage) {
      // A full disk is not the trial's fault and a restart would fail again: the experiment
      // stops with every trial resumable from its last recorded checkpoint.
      util::logger()->error("trial {}: {}", t.id, t.exit_message);
      storage_error_ = t.exit_message;
      set_state(t, t.target ? "QUEUED" : "PAUSED");
      if (!stopping_) begin_stop();
      save();
    } else if (t.exit_reason == Reason::kNonFinite) {
      // Deterministic: a restart would diverge again.
      util::logger()->error(
          "trial {}: {}; the trial is ERROR (not restarted) and the experiment goes on", t.id,
          t.exit_message);
      rec_.trial(t.id).message = t.exit_message;
      t.target.reset();
      set_state(t, "ERROR");
      exited_early(t, search::ExitedReason::kErrored);
    } else if (t.exit_reason == Reason::kStopRequested && code == 0) {
      util::logger()->info("trial {}: stopped early at its own request", t.id);
      t.target.reset();
      rec_.trial(t.id).early_exit = true;
      set_state(t, "COMPLETED");
      exited_early(t, search::ExitedReason::kUserCanceled);
    } else if ((t.exit_reason == Reason::kCompleted && code == 0) ||
               (t.exit_reason == Reason::kStopped && code == 130)) {
      // Paused (nothing to do), closed, or stopped by us: the latest checkpoint holds its progress.
      if (t.close_requested && !t.target) {
        set_state(t, "COMPLETED");
        handle(searcher_.trial_closed(t.request_id));
      } else if (t.target && !stopping_) {
        queue_trial(t);  // promoted while it was writing its pause checkpoint
        save();
      } else {
        set_state(t, t.target ? "QUEUED" : "PAUSED");
        save();
      }
    } else {
      std::string why = t.exit_reason == Reason::kError && !t.exit_message.empty()
                            ? t.exit_message
                            : "it " + util::describe_wait_status(status);
      if (stopping_) {
        util::logger()->warn("trial {}: the worker failed while stopping: {}", t.id, why);
        set_state(t, t.target ? "QUEUED" : "PAUSED");
        save();
        return;
      }
      ++t.restarts;
      rec_.add_restart(t.id, why);
      // It may have died writing or committing a checkpoint: the disk and the store agree again,
      // and what it reported after its latest checkpoint is trained again from that checkpoint.
      auto latest = rec_.reconcile_checkpoints(t.id);
      t.latest_checkpoint = latest ? latest->path.string() : "";
      t.checkpoint_batches = latest ? latest->batches : 0;
      rec_.rollback(t.id, t.checkpoint_batches);
      t.batches = t.checkpoint_batches;
      if (t.restarts > cfg_.max_restarts) {
        util::logger()->error(
            "trial {}: the worker failed ({}); max_restarts ({}) reached, the trial is ERROR and "
            "the "
            "experiment goes on",
            t.id, why, cfg_.max_restarts);
        t.target.reset();
        set_state(t, "ERROR");
        exited_early(t, search::ExitedReason::kErrored);
        return;
      }
      util::logger()->warn("trial {}: the worker failed ({}); restart {} of {} from {}", t.id, why,
                           t.restarts, cfg_.max_restarts,
                           t.latest_checkpoint.empty() ? "the start" : t.latest_checkpoint);
      if (t.target) {
        queue_trial(t);
      } else if (t.close_requested) {
        set_state(t, "COMPLETED");
        handle(searcher_.trial_closed(t.request_id));
        return;
      } else {
        set_state(t, "PAUSED");
      }
      save();
    }
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
      if (t.final() || t.state == "RUNNING") continue;
      util::logger()->warn("trial {}: the searcher has no more work for it; closing it", t.id);
      t.target.reset();
      set_state(t, "COMPLETED");
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
      if (t.pid > 0) ::kill(t.pid, SIGTERM);  // a launcher forwards it to its ranks
  }

  int finish() {
    save();
    const fs::path dir = rec_.run_dir();
    if (stopping_) {
      rec_.set_experiment_state("STOPPED");
      if (!storage_error_.empty()) {
        std::fprintf(
            stderr,
            "det-run: error: %s; the experiment stopped: free space, then continue with: det-run "
            "--resume-experiment %s\n",
            util::shorten(storage_error_, 300).c_str(), dir.string().c_str());
        return 1;
      }
      std::fprintf(stderr, "det-run: stopped; continue with: det-run --resume-experiment %s\n",
                   dir.string().c_str());
      return 130;
    }
    int completed = 0, errored = 0, invalid = 0;
    const TrialRun* best = nullptr;
    std::optional<double> best_value;
    for (const auto& [id, t] : trials_) {
      completed += t.state == "COMPLETED";
      errored += t.state == "ERROR";
      invalid += t.state == "INVALID_HP";
      const auto& s = rec_.trial(id);
      if (!s.best_validation) continue;
      const auto& m = s.best_validation->metrics;
      if (!m.contains(cfg_.searcher.metric) || !m[cfg_.searcher.metric].is_number()) continue;
      const double v = m[cfg_.searcher.metric].get<double>();
      if (!best || config::is_better(v, best_value, cfg_.searcher.smaller_is_better)) {
        best_value = v;
        best = &t;
      }
    }
    bool failed = completed == 0 && !trials_.empty();
    if (!searcher_.shutdown() && !failed) failed = true;
    rec_.summary_mut().best_trial = best ? std::optional<int64_t>(best->id) : std::nullopt;
    rec_.set_experiment_state(failed ? "ERROR" : "COMPLETED");
    util::logger()->info(
        "experiment {}: {} trial(s): {} completed, {} errored, {} rejected their hyperparameters",
        failed ? "failed" : "completed", trials_.size(), completed, errored, invalid);
    if (best)
      util::logger()->info("best trial {}: {} = {:.6g} with {}", best->id, cfg_.searcher.metric,
                           *best_value, rec_.trial(best->id).hparams.dump());
    util::logger()->info("run directory: {}", dir.string());
    if (failed) {
      std::string first;
      for (const auto& [id, t] : trials_)
        if (t.state == "ERROR" && first.empty())
          first = " (trial " + std::to_string(id) + ": " + rec_.trial(id).message + ")";
      std::fprintf(stderr, "det-run: error: the experiment failed: %s%s; see %s\n",
                   completed == 0 ? "no trial completed" : "the searcher did not finish",
                   first.c_str(), (dir / "det.log").string().c_str());
    }
    return failed ? 1 : 0;
  }

  config::ExperimentConfig cfg_;
  Recorder& rec_;
  uint32_t seed_;
  RunnerOptions opt_;
  search::Searcher searcher_;
  int spt_ = 1, concurrency_ = 1, running_ = 0;
  std::string unit_;
  std::vector<bool> slot_used_;
  std::map<int64_t, TrialRun> trials_;
  std::map<std::string, int64_t> by_request_;
  std::deque<int64_t> ready_;
  int64_t next_id_ = 1;
  bool stopping_ = false;
  std::unique_ptr<util::ProgressLine> status_line_;
  std::chrono::steady_clock::time_point started_, last_status_log_;
  std::string last_status_;
  double progress_at_start_ = 0;
  std::string storage_error_;  ///< Why a worker could not write (the experiment stops).
};

/// Ignores SIGPIPE while the runner writes to workers that may be gone.
struct IgnoreSigpipe {
  IgnoreSigpipe() { old_ = ::signal(SIGPIPE, SIG_IGN); }
  ~IgnoreSigpipe() { ::signal(SIGPIPE, old_); }
  sighandler_t old_;
};

}  // namespace

int run_experiment(const config::ExperimentConfig& config, Recorder& recorder, uint32_t seed,
                   const RunnerOptions& options) {
  IgnoreSigpipe guard;
  Runner runner(config, recorder, seed, options);
  runner.start();
  return runner.run();
}

int resume_experiment(const fs::path& run_dir, const RunnerOptions& options) {
  IgnoreSigpipe guard;
  auto recorder = Recorder::open(run_dir);
  auto snap = recorder->runner_snapshot();
  if (!snap || !snap->contains("trials"))
    throw Error(recorder->store().path().string() + ": experiment " +
                std::to_string(recorder->experiment_id()) +
                " has no runner snapshot (was it run by det-run --test or --resume?); it cannot be "
                "resumed");
  if (recorder->summary().state == "COMPLETED") {
    std::printf("experiment in %s is already COMPLETED; nothing to do\n", run_dir.string().c_str());
    return 0;
  }
  auto cfg = config::load_experiment_config((run_dir / "config.yaml").string(), {});
  uint32_t seed = (*snap).at("experiment_seed").get<uint32_t>();
  util::logger()->info("resuming experiment '{}' in {}", cfg.name, run_dir.string());
  Runner runner(cfg, *recorder, seed, options);
  runner.restore(*snap);
  return runner.run();
}

}  // namespace det::experiment
