#include "worker.h"

#include <signal.h>

#include <algorithm>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "det/config/experiment_config.h"
#include "det/core/controller.h"
#include "det/core/registry.h"
#include "det/dist/launcher.h"
#include "det/record/experiment_summary.h"
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

// The two pipes to the runner: events out, answers in.
class RunnerChannel : public TrialListener {
 public:
  RunnerChannel(int out, int in) : out_(out), in_(in) {}

  void send(const record::WorkerEvent& event) {
    if (!util::write_all(out_, record::encode(event)) && !lost_) {
      lost_ = true;
      util::logger()->warn("lost the experiment runner; reports are dropped");
    }
  }
  /// The runner's next answer; nullopt when the runner is gone.
  std::optional<record::RunnerAnswer> receive() {
    auto line = util::read_line(in_, buffer_);
    if (!line) return std::nullopt;
    return record::decode_answer(*line);
  }

  void on_report(const record::MetricsReport& report) override { send(report); }

  // Returns once the runner has recorded the checkpoint; the controller deletes older ones only
  // then. Without an answer nothing is deleted: the trial stops instead.
  void on_checkpoint(const record::CheckpointEvent& event) override {
    send(event);
    auto answer = receive();
    if (!answer)
      throw Error("lost the experiment runner before it recorded checkpoint " +
                  event.checkpoint.uuid);
    if (answer->kind != record::RunnerAnswer::Kind::kRecorded ||
        answer->uuid != event.checkpoint.uuid)
      throw Error(
          "the experiment runner answered a checkpoint with something else; runner and worker "
          "disagree");
  }

 private:
  int out_, in_;
  util::LineBuffer buffer_;
  bool lost_ = false;
};

}  // namespace

int run_worker(const WorkerArgs& w, const std::atomic<bool>* stop_flag) {
  ::signal(SIGPIPE, SIG_IGN);
  RunnerChannel channel(w.report_fd, w.control_fd);
  bool chief =
      true;  // until the ranks are known: a failure before that is reported by every process
  auto finish = [&](record::WorkerExit::Reason reason, const std::string& message, int code) {
    if (chief) channel.send(record::WorkerExit{reason, message});
    return code;
  };
  using Reason = record::WorkerExit::Reason;
  try {
    fs::path run_dir = w.run_dir;
    auto cfg = config::load_experiment_config((run_dir / "config.yaml").string(), {});
    const TrialFactory& factory = TrialRegistry::instance().find(cfg.entrypoint, cfg.source);
    // Several slots: this process becomes the launcher of that many ranks, each running this same
    // command line. The ranks inherit the pipes; only the chief uses them.
    if (auto launched = relaunch_if_needed(cfg.resources.slots_per_trial)) {
      // The ranks are gone. When one failed, the launcher knows which (a dead or hung rank):
      // its word goes to the runner last, so it is the reason the runner records.
      if (launched->exit_code != 0 && !launched->message.empty())
        channel.send(record::WorkerExit{Reason::kError, util::shorten(launched->message, 300)});
      return launched->exit_code;
    }
    auto ranks = trial_ranks(cfg);
    chief = ranks->is_chief();
    const auto summary = record::ExperimentSummary::load(run_dir);
    const record::TrialSummary* entry = summary.find_trial(w.trial);
    if (!entry)
      throw Error((run_dir / "experiment.json").string() + " has no trial " +
                  std::to_string(w.trial));
    fs::path trial_dir = run_dir / ("trial-" + std::to_string(w.trial));
    if (!w.console_level.empty()) util::set_console_level(w.console_level);
    if (chief) {
      fs::create_directories(trial_dir);
      util::add_log_file(trial_dir / "trial.log");
    } else {
      util::logger()->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(ranks->rank()) +
                                  "] [%^%l%$] %v");
    }
    // Intra-op threads: this process's share of the CPUs (docs/performance.md, Threads): the
    // runner's share when it runs several trials at once, divided among this node's ranks,
    // unless the user's DET_INTRA_OP_THREADS or OMP_NUM_THREADS says otherwise.
    const int local = std::max(1, ranks->local_size());
    const bool users = std::getenv("DET_INTRA_OP_THREADS") || std::getenv("OMP_NUM_THREADS");
    const int threads = w.threads > 0 && !users ? std::max(1, w.threads / local)
                                                : util::default_intra_op_threads(local);
    if (threads > 0) torch::set_num_threads(threads);
    util::logger()->debug("intra-op threads: {} ({} usable CPUs, {} rank(s) on this node)",
                          torch::get_num_threads(), util::usable_cpus(), local);

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
      nlohmann::json answer;
      if (chief) {
        channel.send(record::TargetReached{reached.value, metric});
        auto a = channel.receive();
        if (a && a->kind == record::RunnerAnswer::Kind::kTarget) answer = {{"target", a->target}};
      }
      answer = ranks->broadcast(answer);  // every rank trains to the same target
      if (answer.is_object() && answer.contains("target"))
        return config::Length{unit, answer["target"].get<int64_t>()};
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
    dist::record_failure(e);
    std::string msg =
        util::shorten(std::string(e.what()).substr(0, std::string(e.what()).find('\n')), 300);
    util::logger()->error("trial {}: {}", w.trial, msg);
    return finish(Reason::kStorage, msg, 1);
  } catch (const NonFiniteMetric& e) {
    dist::record_failure(e);
    std::string msg =
        util::shorten(std::string(e.what()).substr(0, std::string(e.what()).find('\n')), 300);
    util::logger()->error("{}", msg);
    return finish(Reason::kNonFinite, msg, 1);
  } catch (const InvalidHP& e) {
    dist::record_failure(e);  // for det-launch: which rank failed first
    std::string msg =
        util::shorten(std::string(e.what()).substr(0, std::string(e.what()).find('\n')), 300);
    util::logger()->warn("trial {}: rejected its hyperparameters: {}", w.trial, msg);
    return finish(Reason::kInvalidHP, msg, record::kWorkerExitInvalidHP);
  } catch (const std::exception& e) {
    dist::record_failure(e);
    std::string msg =
        util::shorten(std::string(e.what()).substr(0, std::string(e.what()).find('\n')), 300);
    util::logger()->error("trial {}: {}", w.trial, msg);
    return finish(Reason::kError, msg, 1);
  }
}

}  // namespace det::app
