#include "det/experiment/runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <spdlog/spdlog.h>

#include "det/search/searcher.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/log.h"
#include "det/util/process.h"
#include "det/util/strings.h"

namespace det::experiment {
namespace fs = std::filesystem;
using json = nlohmann::json;

void record_trial_event(ExperimentSummary& summary, ExperimentStore& store, int64_t trial, int64_t store_trial,
                        const json& event) {
  const std::string kind = event.value("event", "");
  if (kind != "training" && kind != "validation" && kind != "checkpoint") return;
  auto& t = summary.trial(trial);
  if (kind == "training") {
    int64_t batches = event.at("batches").get<int64_t>();
    const json& report = event.at("report");
    t["batches_trained"] = batches;
    t["latest_training"] = {{"batches", batches}, {"metrics", report.at("metrics")}};
    store.add_metrics(store_trial, "training", batches, report.value("epochs", 0.0), report.at("metrics"));
    store.set_trial_progress(store_trial, batches, std::nullopt);
  } else if (kind == "validation") {
    int64_t batches = event.at("batches").get<int64_t>();
    const json& report = event.at("report");
    json v = {{"batches", batches}, {"metrics", report.at("metrics")}};
    t["latest_validation"] = v;
    const auto& s = summary.json()["searcher"];
    const std::string metric = s.value("metric", "");
    const bool sib = s.value("smaller_is_better", true);
    std::optional<double> value;
    if (report["metrics"].contains(metric) && report["metrics"][metric].is_number())
      value = report["metrics"][metric].get<double>();
    bool best = false;
    if (value) {
      const json& b = t.contains("best_validation") ? t["best_validation"]["metrics"] : json();
      best = !b.is_object() || !b.contains(metric) || !b[metric].is_number() ||
             (sib ? *value < b[metric].get<double>() : *value > b[metric].get<double>());
    }
    if (best) t["best_validation"] = v;
    if (!t.contains("batches_trained") || t["batches_trained"].get<int64_t>() < batches) t["batches_trained"] = batches;
    store.add_metrics(store_trial, "validation", batches, report.value("epochs", 0.0), report.at("metrics"));
    store.set_trial_progress(store_trial, t["batches_trained"].get<int64_t>(), best ? value : std::nullopt);
  } else {
    const json& c = event.at("checkpoint");
    t["checkpoints"] = event.value("kept", json::array());
    t["latest_checkpoint"] = c.at("uuid");
    std::optional<double> metric;
    if (c.contains("metric") && c["metric"].is_number()) metric = c["metric"].get<double>();
    store.add_checkpoint(store_trial, c.at("uuid").get<std::string>(), c.at("batches").get<int64_t>(),
                         c.at("path").get<std::string>(), metric);
    std::vector<std::string> kept;
    for (const auto& k : event.value("kept", json::array())) kept.push_back(k.at("uuid").get<std::string>());
    store.keep_checkpoints(store_trial, kept);
  }
  summary.save();
}

void check_slots(const config::ExperimentConfig& config, int slots) {
  int spt = std::max(1, config.resources.slots_per_trial);
  if (slots < spt)
    throw UsageError("--slots " + std::to_string(slots) + " is fewer than resources.slots_per_trial (" +
                     std::to_string(spt) + ") in " + config.source + ": give at least --slots " + std::to_string(spt));
}

int64_t attach_store(ExperimentSummary& summary, ExperimentStore& store, const config::ExperimentConfig& config) {
  const auto& doc = summary.json();
  if (doc.contains("store") && doc["store"].contains("experiment_id")) return doc["store"]["experiment_id"].get<int64_t>();
  int64_t id = store.add_experiment(config.name, config.description, config::to_json(config), summary.run_dir().string());
  summary.set_store(store.path().string(), id);
  summary.save();
  return id;
}

namespace {

/// Exit codes of `__worker` besides 0 (done or paused) and 130 (stopped by a signal).
constexpr int kWorkerInvalidHP = 3;

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
  std::string latest_checkpoint;  ///< Directory to resume from ("" = from scratch).
  int64_t checkpoint_batches = 0;  ///< Batches trained at that checkpoint.
  int64_t batches = 0;

  // While a worker runs.
  pid_t pid = -1;
  int report_fd = -1, control_fd = -1;
  std::string buffer;
  std::vector<int> slot_ids;
  std::string exit_reason, exit_message;

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

/// The store's name for a runner state.
std::string store_state(const std::string& s) { return s == "RUNNING" ? "ACTIVE" : s; }

class Runner {
 public:
  Runner(config::ExperimentConfig cfg, ExperimentSummary& summary, ExperimentStore& store, int64_t experiment_id,
         uint32_t seed, const RunnerOptions& opt)
      : cfg_(std::move(cfg)), summary_(summary), store_(store), experiment_id_(experiment_id), seed_(seed), opt_(opt),
        searcher_(cfg_, seed) {
    spt_ = std::max(1, cfg_.resources.slots_per_trial);
    check_slots(cfg_, opt_.slots);
    slot_used_.assign(static_cast<size_t>(opt_.slots), false);
    int by_slots = opt_.slots / spt_;
    int mct = cfg_.searcher.max_concurrent_trials;
    concurrency_ = mct > 0 ? std::min(mct, by_slots) : by_slots;
    unit_ = config::unit_name(cfg_.searcher.max_length ? cfg_.searcher.max_length->unit : config::Unit::kBatches);
  }

  void start() { handle(searcher_.initial_operations()); }

  void restore(const json& snap) {
    searcher_.restore(snap.at("searcher"));
    next_id_ = snap.at("next_trial").get<int64_t>();
    std::vector<int64_t> running_before;
    for (const auto& j : snap.at("trials")) {
      TrialRun t = TrialRun::from_json(j);
      if (t.state == "RUNNING") {
        running_before.push_back(t.id);
        // The runner died with this worker running: what it reported after its latest checkpoint
        // will be trained and reported again.
        store_.rollback_metrics(t.store_id, t.checkpoint_batches);
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

  int run() {
    util::logger()->info("experiment '{}': searcher {}, {} slot(s), {} slot(s) per trial, up to {} trial(s) at once",
                         cfg_.name, cfg_.searcher.name, opt_.slots, spt_, concurrency_);
    summary_.set_state("ACTIVE");
    summary_.save();
    store_.set_experiment_state(experiment_id_, "ACTIVE");
    for (;;) {
      if (opt_.stop_flag && opt_.stop_flag->load() && !stopping_) begin_stop();
      schedule();
      if (running_ == 0) {
        if (stopping_ || searcher_.shutdown()) break;
        if (ready_.empty() && !close_stranded_trials()) break;
        continue;
      }
      wait_for_events();
    }
    return finish();
  }

 private:
  // ---- searcher operations ----

  void handle(std::vector<search::Operation> ops) {
    std::deque<search::Operation> queue(ops.begin(), ops.end());
    auto push = [&](std::vector<search::Operation> more) { queue.insert(queue.end(), more.begin(), more.end()); };
    while (!queue.empty()) {
      search::Operation op = std::move(queue.front());
      queue.pop_front();
      util::logger()->debug("searcher: {}", search::to_string(op));
      if (auto* c = std::get_if<search::Create>(&op)) {
        TrialRun t;
        t.id = next_id_++;
        t.request_id = c->request_id;
        t.store_id = store_.add_trial(experiment_id_, t.id, c->request_id, c->hparams, c->trial_seed);
        auto& s = summary_.trial(t.id);
        s["request_id"] = c->request_id;
        s["hparams"] = c->hparams;
        s["seed"] = c->trial_seed;
        s["restarts"] = 0;
        by_request_[t.request_id] = t.id;
        trials_[t.id] = t;
        set_state(trials_[t.id], "PAUSED");
        util::logger()->info("trial {}: created with {}", t.id, c->hparams.dump());
        push(searcher_.trial_created(c->request_id));
      } else if (auto* v = std::get_if<search::ValidateAfter>(&op)) {
        TrialRun* t = find(v->request_id);
        if (!t || t->final()) continue;
        t->target = v->length;
        summary_.trial(t->id)["target"] = v->length;
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
        util::logger()->info("searcher: shutdown{}{}", sd->cancel ? " (every trial was cancelled)" : "",
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
    auto& s = summary_.trial(t.id);
    s["state"] = state;
    s["restarts"] = t.restarts;
    store_.set_trial_state(t.store_id, store_state(state));
  }

  // ---- state ----

  json snapshot() const {
    json trials = json::array();
    for (const auto& [id, t] : trials_) trials.push_back(t.to_json());
    json ready = json::array();
    for (int64_t id : ready_)
      if (trials_.at(id).state == "QUEUED") ready.push_back(id);
    return {{"format_version", 1}, {"experiment_seed", seed_}, {"searcher", searcher_.snapshot()}, {"next_trial", next_id_},
            {"trials", trials}, {"ready", ready}};
  }

  void save() {
    summary_.json_mut()["searcher_progress"] = searcher_.progress();
    summary_.save();
    store_.save_searcher_snapshot(experiment_id_, snapshot());
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

  int free_slots() const { return static_cast<int>(std::count(slot_used_.begin(), slot_used_.end(), false)); }

  void launch(TrialRun& t) {
    t.slot_ids.clear();
    for (size_t i = 0; i < slot_used_.size() && static_cast<int>(t.slot_ids.size()) < spt_; ++i)
      if (!slot_used_[i]) {
        slot_used_[i] = true;
        t.slot_ids.push_back(static_cast<int>(i));
      }
    std::vector<std::string> args = {opt_.executable.string(), "__worker", "--run-dir", summary_.run_dir().string(),
                                     "--trial", std::to_string(t.id), "--target", std::to_string(*t.target)};
    if (!t.latest_checkpoint.empty()) args.insert(args.end(), {"--resume", t.latest_checkpoint});
    if (!(opt_.show_progress && concurrency_ == 1)) args.push_back("--no-progress");
    if (concurrency_ > 1) {
      unsigned hw = std::max(1u, std::thread::hardware_concurrency());
      args.insert(args.end(), {"--threads", std::to_string(std::max(1u, hw / static_cast<unsigned>(concurrency_)))});
    }
    args.insert(args.end(), opt_.worker_args.begin(), opt_.worker_args.end());

    // The child's environment: ours plus the slots it owns.
    std::vector<std::string> devices;
    const char* cvd = std::getenv("CUDA_VISIBLE_DEVICES");
    std::vector<std::string> visible = cvd ? util::split(cvd, ',') : std::vector<std::string>{};
    std::vector<std::string> ids;
    for (int s : t.slot_ids) {
      ids.push_back(std::to_string(s));
      devices.push_back(static_cast<size_t>(s) < visible.size() ? visible[static_cast<size_t>(s)] : std::to_string(s));
    }
    int report[2], control[2];
    if (::pipe2(report, O_CLOEXEC) != 0 || ::pipe2(control, O_CLOEXEC) != 0)
      throw Error(std::string("cannot create a pipe for a trial worker: ") + std::strerror(errno));
    util::SpawnOptions so;
    so.argv = args;
    so.env = util::environment({"CUDA_VISIBLE_DEVICES", "DET_SLOT_IDS"},
                               {"DET_SLOT_IDS=" + util::join(ids, ","), "CUDA_VISIBLE_DEVICES=" + util::join(devices, ",")});
    so.fds = {{3, report[1]}, {4, control[0]}};
    // Own process group: a Ctrl-C reaches the runner, which stops the workers in order.
    so.new_process_group = true;
    so.parent_death_signal = SIGTERM;
    pid_t pid = util::spawn(so);
    ::close(report[1]);
    ::close(control[0]);
    t.pid = pid;
    t.report_fd = report[0];
    t.control_fd = control[1];
    t.buffer.clear();
    t.exit_reason.clear();
    t.exit_message.clear();
    ++t.launches;
    ++running_;
    set_state(t, "RUNNING");
    summary_.trial(t.id)["launches"] = t.launches;
    util::logger()->info("trial {}: worker {} started: train to {} {}{}", t.id, pid, *t.target, unit_,
                         t.latest_checkpoint.empty() ? "" : " from checkpoint " + fs::path(t.latest_checkpoint).filename().string());
    save();
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
        size_t pos;
        while ((pos = t.buffer.find('\n')) != std::string::npos) {
          std::string line = t.buffer.substr(0, pos);
          t.buffer.erase(0, pos + 1);
          on_event(t, line);
        }
      } else {
        worker_exited(t);
      }
    }
  }

  void reply(TrialRun& t, const json& message) {
    std::string line = message.dump() + "\n";
    if (t.control_fd < 0) return;
    // A dead worker makes this fail with EPIPE; its exit is handled when its report pipe closes.
    (void)!::write(t.control_fd, line.data(), line.size());
  }

  void on_event(TrialRun& t, const std::string& line) {
    json ev;
    try {
      ev = json::parse(line);
    } catch (const json::exception&) {
      util::logger()->warn("trial {}: ignoring a malformed report from its worker: {}", t.id, line.substr(0, 200));
      return;
    }
    const std::string kind = ev.value("event", "");
    if (kind == "training" || kind == "validation" || kind == "checkpoint") {
      record_trial_event(summary_, store_, t.id, t.store_id, ev);
      if (kind == "checkpoint") {
        t.latest_checkpoint = ev["checkpoint"]["path"].get<std::string>();
        t.checkpoint_batches = ev["checkpoint"]["batches"].get<int64_t>();
        save();
      } else {
        t.batches = std::max(t.batches, ev["batches"].get<int64_t>());
      }
    } else if (kind == "target_reached") {
      int64_t length = ev.at("length").get<int64_t>();
      double metric = ev.at("metric").get<double>();
      util::logger()->info("trial {}: reached {} {}, {} = {:.6g}", t.id, length, unit_, cfg_.searcher.metric, metric);
      t.target.reset();
      handle(searcher_.validation_completed(t.request_id, metric, length));
      if (t.target && !stopping_) {
        reply(t, {{"target", *t.target}});
      } else {
        reply(t, {{"exit", true}});
      }
    } else if (kind == "exit") {
      t.exit_reason = ev.value("reason", "");
      t.exit_message = ev.value("message", "");
    } else {
      util::logger()->warn("trial {}: ignoring an unknown report '{}' from its worker", t.id, kind);
    }
  }

  void worker_exited(TrialRun& t) {
    ::close(t.report_fd);
    ::close(t.control_fd);
    t.report_fd = t.control_fd = -1;
    int status = 0;
    while (::waitpid(t.pid, &status, 0) < 0 && errno == EINTR) {
    }
    util::logger()->info("trial {}: worker {} ended ({}{})", t.id, t.pid, t.exit_reason.empty() ? "no report" : t.exit_reason,
                         WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "" : ", " + util::describe_wait_status(status));
    t.pid = -1;
    --running_;
    for (int s : t.slot_ids) slot_used_[static_cast<size_t>(s)] = false;
    t.slot_ids.clear();
    const bool exited = WIFEXITED(status);
    const int code = exited ? WEXITSTATUS(status) : -1;

    if (t.exit_reason == "invalid_hp" && code == kWorkerInvalidHP) {
      util::logger()->warn("trial {}: rejected its hyperparameters ({}); the searcher replaces it", t.id, t.exit_message);
      summary_.trial(t.id)["message"] = t.exit_message;
      t.target.reset();
      set_state(t, "INVALID_HP");
      exited_early(t, search::ExitedReason::kInvalidHP);
    } else if (t.exit_reason == "stop_requested" && code == 0) {
      util::logger()->info("trial {}: stopped early at its own request", t.id);
      t.target.reset();
      set_state(t, "COMPLETED");
      summary_.trial(t.id)["early_exit"] = true;
      exited_early(t, search::ExitedReason::kUserCanceled);
    } else if ((t.exit_reason == "completed" && code == 0) || (t.exit_reason == "stopped" && code == 130)) {
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
      std::string why = t.exit_reason == "error" && !t.exit_message.empty() ? t.exit_message : "it " + util::describe_wait_status(status);
      if (stopping_) {
        util::logger()->warn("trial {}: the worker failed while stopping: {}", t.id, why);
        set_state(t, t.target ? "QUEUED" : "PAUSED");
        save();
        return;
      }
      ++t.restarts;
      store_.add_restart(t.store_id);
      // What it reported after its latest checkpoint is trained again from that checkpoint.
      store_.rollback_metrics(t.store_id, t.checkpoint_batches);
      t.batches = t.checkpoint_batches;
      summary_.trial(t.id)["batches_trained"] = t.checkpoint_batches;
      summary_.trial(t.id)["message"] = why;
      if (t.restarts > cfg_.max_restarts) {
        util::logger()->error("trial {}: the worker failed ({}); max_restarts ({}) reached, the trial is ERROR and the "
                              "experiment goes on", t.id, why, cfg_.max_restarts);
        t.target.reset();
        set_state(t, "ERROR");
        exited_early(t, search::ExitedReason::kErrored);
        return;
      }
      util::logger()->warn("trial {}: the worker failed ({}); restart {} of {} from {}", t.id, why, t.restarts,
                           cfg_.max_restarts, t.latest_checkpoint.empty() ? "the start" : t.latest_checkpoint);
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
      util::logger()->error("the searcher neither gives work nor shuts down after {} trial(s); ending the experiment",
                            trials_.size());
      return false;
    }
    handle(std::move(ops));
    return true;
  }

  void begin_stop() {
    stopping_ = true;
    util::logger()->warn("stopping: the {} running worker(s) checkpoint and exit (Ctrl-C again to kill them)", running_);
    for (auto& [id, t] : trials_)
      if (t.pid > 0) ::kill(t.pid, SIGTERM);  // a launcher forwards it to its ranks
  }

  int finish() {
    save();
    const fs::path dir = summary_.run_dir();
    if (stopping_) {
      summary_.set_state("STOPPED");
      summary_.save();
      store_.set_experiment_state(experiment_id_, "STOPPED");
      std::fprintf(stderr, "det-run: stopped; continue with: det-run --resume-experiment %s\n", dir.string().c_str());
      return 130;
    }
    int completed = 0, errored = 0, invalid = 0;
    const TrialRun* best = nullptr;
    std::optional<double> best_value;
    const bool sib = cfg_.searcher.smaller_is_better;
    for (const auto& [id, t] : trials_) {
      completed += t.state == "COMPLETED";
      errored += t.state == "ERROR";
      invalid += t.state == "INVALID_HP";
      const auto& s = summary_.trial(id);
      if (s.contains("best_validation")) {
        const auto& m = s["best_validation"]["metrics"];
        if (m.contains(cfg_.searcher.metric) && m[cfg_.searcher.metric].is_number()) {
          double v = m[cfg_.searcher.metric].get<double>();
          if (!best_value || (sib ? v < *best_value : v > *best_value)) {
            best_value = v;
            best = &t;
          }
        }
      }
    }
    bool failed = completed == 0 && !trials_.empty();
    if (!searcher_.shutdown() && !failed) failed = true;
    summary_.json_mut()["best_trial"] = best ? json(best->id) : json(nullptr);
    summary_.set_state(failed ? "ERROR" : "COMPLETED");
    summary_.save();
    store_.set_experiment_state(experiment_id_, failed ? "ERROR" : "COMPLETED");
    util::logger()->info("experiment {}: {} trial(s): {} completed, {} errored, {} rejected their hyperparameters",
                         failed ? "failed" : "completed", trials_.size(), completed, errored, invalid);
    if (best)
      util::logger()->info("best trial {}: {} = {:.6g} with {}", best->id, cfg_.searcher.metric, *best_value,
                           summary_.trial(best->id)["hparams"].dump());
    util::logger()->info("run directory: {}", dir.string());
    if (failed) {
      std::string first;
      for (const auto& [id, t] : trials_)
        if (t.state == "ERROR" && first.empty()) first = " (trial " + std::to_string(id) + ": " + summary_.trial(id).value("message", "") + ")";
      std::fprintf(stderr, "det-run: error: the experiment failed: %s%s; see %s\n",
                   completed == 0 ? "no trial completed" : "the searcher did not finish", first.c_str(),
                   (dir / "det.log").string().c_str());
    }
    return failed ? 1 : 0;
  }

  config::ExperimentConfig cfg_;
  ExperimentSummary& summary_;
  ExperimentStore& store_;
  int64_t experiment_id_;
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
};

/// Ignores SIGPIPE while the runner writes to workers that may be gone.
struct IgnoreSigpipe {
  IgnoreSigpipe() { old_ = ::signal(SIGPIPE, SIG_IGN); }
  ~IgnoreSigpipe() { ::signal(SIGPIPE, old_); }
  sighandler_t old_;
};

}  // namespace

int run_experiment(const config::ExperimentConfig& config, const fs::path& run_dir, uint32_t seed,
                   const RunnerOptions& options) {
  IgnoreSigpipe guard;
  ExperimentSummary summary(run_dir, config, seed);
  ExperimentStore store(run_dir.parent_path() / "det.db");
  int64_t experiment_id = attach_store(summary, store, config);
  Runner runner(config, summary, store, experiment_id, seed, options);
  runner.start();
  return runner.run();
}

int resume_experiment(const fs::path& run_dir, const RunnerOptions& options) {
  IgnoreSigpipe guard;
  auto summary = ExperimentSummary::load(run_dir);
  const auto& doc = summary.json();
  if (!doc.contains("store") || !doc["store"].contains("experiment_id"))
    throw Error((run_dir / "experiment.json").string() + ": names no experiment store; it cannot be resumed");
  fs::path store_path = doc["store"].value("path", (run_dir.parent_path() / "det.db").string());
  if (!fs::exists(store_path)) store_path = run_dir.parent_path() / "det.db";
  ExperimentStore store(store_path);
  int64_t experiment_id = doc["store"]["experiment_id"].get<int64_t>();
  auto snap = store.searcher_snapshot(experiment_id);
  if (!snap || !snap->contains("trials"))
    throw Error(store_path.string() + ": experiment " + std::to_string(experiment_id) +
                " has no runner snapshot (was it run by det-run --test or --resume?); it cannot be resumed");
  std::string state = doc.value("state", "");
  if (state == "COMPLETED") {
    std::printf("experiment in %s is already COMPLETED; nothing to do\n", run_dir.string().c_str());
    return 0;
  }
  auto cfg = config::load_experiment_config((run_dir / "config.yaml").string(), {});
  uint32_t seed = (*snap).at("experiment_seed").get<uint32_t>();
  util::logger()->info("resuming experiment '{}' in {}", cfg.name, run_dir.string());
  Runner runner(cfg, summary, store, experiment_id, seed, options);
  runner.restore(*snap);
  return runner.run();
}

}  // namespace det::experiment
