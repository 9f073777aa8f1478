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

}  // namespace

int run_worker(const WorkerArgs& w, const std::atomic<bool>* stop_flag) {
  const fs::path trial_dir = record::RunDir(w.run_dir).trial(w.trial).path();
  RunnerChannel channel(record::ChannelFiles::of(trial_dir, w.launch), stop_flag);
  // Until the ranks are known, the process a launcher made rank 0 (or the only one) speaks for
  // the trial: the channel's files have one writer.
  const auto launch_env = distributed::detect_launch_environment();
  bool chief = !launch_env || launch_env->rank == 0;
  auto finish = [&](record::WorkerExit::Reason reason, const std::string& message, int code) {
    try {
      if (chief) {
        util::logger()->info("trial {}: launch {} ends ({})", w.trial, w.launch,
                             record::reason_name(reason));
        channel.send(record::WorkerExit{reason, message});
      }
    } catch (const std::exception& e) {  // the runner counts a worker without a last word
      util::logger()->error("cannot tell the runner why the worker exits: {}", e.what());
    }
    return code;
  };
  using Reason = record::WorkerExit::Reason;
  try {
    fs::path run_dir = w.run_dir;
    auto cfg = config::load_experiment_config(record::RunDir(run_dir).config().string(), {});
    const TrialFactory& factory = TrialRegistry::instance().find(cfg.entrypoint, cfg.source);
    // Several slots: this process becomes the launcher of that many ranks, each running this same
    // command line. Only the chief (rank 0) writes to the channel.
    if (auto launched = relaunch_if_needed(cfg.resources.slots_per_trial)) {
      // The ranks are gone. When one failed, the launcher knows which (a dead or hung rank):
      // its word goes to the runner last, so it is the reason the runner records.
      if (launched->exit_code != 0 && !launched->message.empty())
        return finish(Reason::kError, util::shorten(launched->message, 300), launched->exit_code);
      return launched->exit_code;
    }
    auto ranks = trial_ranks(cfg);
    chief = ranks->is_chief();
    const auto summary = record::ExperimentSummary::load(run_dir);
    const record::TrialSummary* entry = summary.find_trial(w.trial);
    if (!entry)
      throw Error(record::RunDir(run_dir).summary().string() + " has no trial " +
                  std::to_string(w.trial));
    if (!w.console_level.empty()) util::set_console_level(w.console_level);
    if (chief) {
      fs::create_directories(trial_dir);
      util::add_log_file(record::TrialDir(trial_dir).log());
      char host[256] = {0};
      ::gethostname(host, sizeof host - 1);
      util::logger()->info("trial {}: launch {} on {} (pid {}, started {:.2f} s ago), {} rank(s)",
                           w.trial, w.launch, host, ::getpid(), util::process_age_seconds(),
                           ranks->size());
    } else {
      util::logger()->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(ranks->rank()) +
                                  "] [%^%l%$] %v");
    }
    // Intra-op threads: this process's share of the CPUs (docs/performance.md, Threads).
    apply_intra_op_threads(w.threads, ranks->local_size());

    TrialRunOptions opt;
    opt.distributed = ranks;
    opt.trial_id = w.trial;
    opt.hparams = entry->hparams;
    opt.trial_seed = entry->seed;
    opt.trial_dir = trial_dir;
    opt.show_progress = !w.no_progress && chief;
    opt.stop_flag = stop_flag;
    opt.listener = chief ? &channel : nullptr;
    if (!w.resume.empty()) opt.resume_from = fs::path(w.resume);
    const config::Unit unit =
        cfg.searcher.max_length ? cfg.searcher.max_length->unit : config::Unit::kBatches;
    opt.target = config::Length{unit, w.target};
    opt.next_target = [&](const config::Length& reached,
                          double metric) -> std::optional<config::Length> {
      record::NextTargetBroadcast answer;
      if (chief) {
        const int64_t re = channel.send(record::TargetReached{reached.value, metric});
        auto a = channel.receive(re, true);
        if (a && a->kind == record::RunnerAnswer::Kind::kTarget) answer.target = a->target;
      }
      // Every rank trains to the same target.
      answer = record::NextTargetBroadcast::from_json(ranks->broadcast(answer.to_json()));
      if (answer.target) return config::Length{unit, *answer.target};
      return std::nullopt;
    };
    TrialController controller(cfg, factory, opt);
    TrialResult result = controller.run();
    switch (result.exit) {
      case TrialResult::Exit::kCompleted:
        return finish(Reason::kCompleted, "", 0);
      case TrialResult::Exit::kStopRequested:
        return finish(Reason::kStopRequested, "", 0);
      case TrialResult::Exit::kStopped:
        return finish(Reason::kStopped, "", 130);
    }
    return 0;
  } catch (const StorageError& e) {
    distributed::record_failure(e);
    std::string msg =
        util::shorten(std::string(e.what()).substr(0, std::string(e.what()).find('\n')), 300);
    util::logger()->error("trial {}: {}", w.trial, msg);
    return finish(Reason::kStorage, msg, 1);
  } catch (const NonFiniteMetric& e) {
    distributed::record_failure(e);
    std::string msg =
        util::shorten(std::string(e.what()).substr(0, std::string(e.what()).find('\n')), 300);
    util::logger()->error("{}", msg);
    return finish(Reason::kNonFinite, msg, 1);
  } catch (const InvalidHP& e) {
    distributed::record_failure(e);  // for det-launch: which rank failed first
    std::string msg =
        util::shorten(std::string(e.what()).substr(0, std::string(e.what()).find('\n')), 300);
    util::logger()->warn("trial {}: rejected its hyperparameters: {}", w.trial, msg);
    return finish(Reason::kInvalidHP, msg, record::kWorkerExitInvalidHP);
  } catch (const std::exception& e) {
    distributed::record_failure(e);
    std::string msg =
        util::shorten(std::string(e.what()).substr(0, std::string(e.what()).find('\n')), 300);
    util::logger()->error("trial {}: {}", w.trial, msg);
    return finish(Reason::kError, msg, 1);
  }
}

}  // namespace det::app
