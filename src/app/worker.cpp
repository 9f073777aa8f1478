#include "worker.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>

#include <spdlog/spdlog.h>

#include "det/config/experiment_config.h"
#include "det/core/controller.h"
#include "det/core/registry.h"
#include "det/distributed/distributed_context.h"
#include "det/distributed/launcher.h"
#include "det/record/experiment_summary.h"
#include "det/record/rank_broadcast.h"
#include "det/record/run_dir.h"
#include "det/record/worker_channel.h"
#include "det/record/worker_protocol.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "det/util/process.h"
#include "det/util/strings.h"
#include "det/util/threads.h"
#include "ranks.h"

namespace det::app {
namespace fs = std::filesystem;

namespace {

// The worker channel to the runner (det/record/worker_channel.h): events appended to one file,
// answers read from the other.
class RunnerChannel : public TrialListener {
 public:
  RunnerChannel(const record::ChannelFiles& files, const std::atomic<bool>* stop_flag)
      : files_(files), answers_(files.answers), stop_flag_(stop_flag) {}

  /// Appends an event; returns its number (what the runner's answer names in "re").
  int64_t send(const record::WorkerEvent& event) {
    std::string line = record::encode(event);
    line.pop_back();  // encode ends the line; the channel adds the newline
    record::append_channel_line(files_.events, line);
    return sent_++;
  }

  /// The runner's answer to event `re`. Waits as long as the runner takes (a runner that is
  /// restarted with --resume-experiment answers from where it stopped); with `give_up_on_stop`,
  /// returns nullopt once this process is asked to stop (SIGTERM: the trial checkpoints and
  /// exits instead of training on).
  std::optional<record::RunnerAnswer> receive(int64_t re, bool give_up_on_stop) {
    auto pause = std::chrono::milliseconds(1);
    for (;;) {
      for (const auto& [line, end] : answers_.read()) {
        record::RunnerAnswer a = record::decode_answer(line);
        if (a.re < re) continue;  // an answer written again by a restarted runner
        if (a.re > re)
          throw Error("the experiment runner answered event " + std::to_string(a.re) +
                      " while this worker waits on event " + std::to_string(re) + " in " +
                      files_.answers.string() + ": runner and worker disagree");
        return a;
      }
      if (give_up_on_stop && stop_flag_ && stop_flag_->load()) return std::nullopt;
      std::this_thread::sleep_for(pause);
      pause = std::min(pause * 2, std::chrono::milliseconds(50));
    }
  }

  void on_report(const record::MetricsReport& report) override { send(report); }

  // Returns once the runner has recorded the checkpoint; the controller deletes older ones only
  // then.
  void on_checkpoint(const record::CheckpointEvent& event) override {
    const int64_t re = send(event);
    auto answer = receive(re, false);
    if (answer->kind != record::RunnerAnswer::Kind::kRecorded ||
        answer->uuid != event.checkpoint.uuid)
      throw Error(
          "the experiment runner answered a checkpoint with something else; runner and worker "
          "disagree");
  }

 private:
  record::ChannelFiles files_;
  record::LineTail answers_;
  const std::atomic<bool>* stop_flag_;
  int64_t sent_ = 0;
};

using Reason = record::WorkerExit::Reason;

// How a worker ends after an error: the reason the runner records, the exit code, and how the
// error is logged. Every error is also recorded for det-launch (which rank failed first).
struct Ending {
  Reason reason;
  int code;
};

Ending ending_of(const std::exception& e, int64_t trial, const std::string& msg) {
  distributed::record_failure(e);
  if (dynamic_cast<const StorageError*>(&e)) {
    util::logger()->error("trial {}: {}", trial, msg);
    return {Reason::kStorage, 1};
  }
  if (dynamic_cast<const NonFiniteMetric*>(&e)) {
    util::logger()->error("{}", msg);
    return {Reason::kNonFinite, 1};
  }
  if (dynamic_cast<const InvalidHP*>(&e)) {
    util::logger()->warn("trial {}: rejected its hyperparameters: {}", trial, msg);
    return {Reason::kInvalidHP, record::kWorkerExitInvalidHP};
  }
  util::logger()->error("trial {}: {}", trial, msg);
  return {Reason::kError, 1};
}

// One launch of a trial on this process: its config and entry, its ranks, the controller run,
// and the last word to the runner.
class Worker {
 public:
  Worker(const WorkerArgs& w, const std::atomic<bool>* stop_flag)
      : w_(w),
        stop_flag_(stop_flag),
        trial_dir_(record::RunDir(w.run_dir).trial(w.trial).path()),
        channel_(record::ChannelFiles::of(trial_dir_, w.launch), stop_flag) {
    // Until the ranks are known, the process a launcher made rank 0 (or the only one) speaks for
    // the trial: the channel's files have one writer.
    const auto launch_env = distributed::detect_launch_environment();
    chief_ = !launch_env || launch_env->rank == 0;
  }

  int run() {
    try {
      return train();
    } catch (const std::exception& e) {
      const std::string what = e.what();
      const std::string msg = util::shorten(what.substr(0, what.find('\n')), 300);
      const Ending ending = ending_of(e, w_.trial, msg);
      return finish(ending.reason, msg, ending.code);
    }
  }

 private:
  int train() {
    const record::RunDir run_dir(w_.run_dir);
    auto cfg = config::load_experiment_config(run_dir.config().string(), {});
    const TrialFactory& factory = TrialRegistry::instance().find(cfg.entrypoint, cfg.source);
    // Several slots: this process becomes the launcher of that many ranks, each running this
    // same command line. Only the chief (rank 0) writes to the channel.
    if (auto launched = relaunch_if_needed(cfg.resources.slots_per_trial)) {
      // The ranks are gone. When one failed, the launcher knows which (a dead or hung rank):
      // its word goes to the runner last, so it is the reason the runner records.
      if (launched->exit_code != 0 && !launched->message.empty())
        return finish(Reason::kError, util::shorten(launched->message, 300), launched->exit_code);
      return launched->exit_code;
    }
    ranks_ = trial_ranks(cfg);
    chief_ = ranks_->is_chief();
    const auto summary = record::ExperimentSummary::load(run_dir.path());
    const record::TrialSummary* entry = summary.find_trial(w_.trial);
    if (!entry)
      throw Error(run_dir.summary().string() + " has no trial " + std::to_string(w_.trial));
    open_log();
    // Intra-op threads: this process's share of the CPUs (docs/performance.md, Threads).
    apply_intra_op_threads(w_.threads, ranks_->local_size());
    TrialController controller(cfg, factory, options(cfg, *entry));
    switch (controller.run().exit) {
      case TrialResult::Exit::kCompleted:
        return finish(Reason::kCompleted, "", 0);
      case TrialResult::Exit::kStopRequested:
        return finish(Reason::kStopRequested, "", 0);
      case TrialResult::Exit::kStopped:
        return finish(Reason::kStopped, "", 130);
    }
    return 0;
  }

  // The chief logs to the trial's log file too; every other rank tags its console lines.
  void open_log() {
    if (!w_.console_level.empty()) util::set_console_level(w_.console_level);
    if (!chief_) {
      util::logger()->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(ranks_->rank()) +
                                  "] [%^%l%$] %v");
      return;
    }
    fs::create_directories(trial_dir_);
    util::add_log_file(record::TrialDir(trial_dir_).log());
    char host[256] = {0};
    ::gethostname(host, sizeof host - 1);
    util::logger()->info("trial {}: launch {} on {} (pid {}, started {:.2f} s ago), {} rank(s)",
                         w_.trial, w_.launch, host, ::getpid(), util::process_age_seconds(),
                         ranks_->size());
  }

  TrialRunOptions options(const config::ExperimentConfig& cfg, const record::TrialSummary& entry) {
    TrialRunOptions opt;
    opt.distributed = ranks_;
    opt.trial_id = w_.trial;
    opt.hparams = entry.hparams;
    opt.trial_seed = entry.seed;
    opt.trial_dir = trial_dir_;
    opt.show_progress = !w_.no_progress && chief_;
    opt.stop_flag = stop_flag_;
    opt.listener = chief_ ? &channel_ : nullptr;
    if (!w_.resume.empty()) opt.resume_from = fs::path(w_.resume);
    if (!w_.warm_start.empty()) opt.warm_start_from = fs::path(w_.warm_start);
    unit_ = cfg.searcher.max_length ? cfg.searcher.max_length->unit : config::Unit::kBatches;
    opt.target = config::Length{unit_, w_.target};
    opt.next_target = [this](const config::Length& reached, double metric) {
      return next_target(reached, metric);
    };
    return opt;
  }

  // The runner's answer to a target reached: go on to a new target, or stop. The chief asks;
  // every rank trains to the same target.
  std::optional<config::Length> next_target(const config::Length& reached, double metric) {
    record::NextTargetBroadcast answer;
    if (chief_) {
      const int64_t re = channel_.send(record::TargetReached{reached.value, metric});
      auto a = channel_.receive(re, true);
      if (a && a->kind == record::RunnerAnswer::Kind::kTarget) answer.target = a->target;
    }
    answer = record::NextTargetBroadcast::from_json(ranks_->broadcast(answer.to_json()));
    if (answer.target) return config::Length{unit_, *answer.target};
    return std::nullopt;
  }

  // The last word to the runner (the chief's), then the exit code.
  int finish(Reason reason, const std::string& message, int code) {
    try {
      if (chief_) {
        util::logger()->info("trial {}: launch {} ends ({})", w_.trial, w_.launch,
                             record::reason_name(reason));
        channel_.send(record::WorkerExit{reason, message});
      }
    } catch (const std::exception& e) {  // the runner counts a worker without a last word
      util::logger()->error("cannot tell the runner why the worker exits: {}", e.what());
    }
    return code;
  }

  const WorkerArgs& w_;
  const std::atomic<bool>* stop_flag_;
  const fs::path trial_dir_;
  RunnerChannel channel_;
  bool chief_ = true;
  std::shared_ptr<distributed::DistributedContext> ranks_;
  config::Unit unit_ = config::Unit::kBatches;
};

}  // namespace

int run_worker(const WorkerArgs& w, const std::atomic<bool>* stop_flag) {
  return Worker(w, stop_flag).run();
}

}  // namespace det::app
