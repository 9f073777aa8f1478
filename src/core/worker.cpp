#include "worker.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "det/config/experiment_config.h"
#include "det/core/distributed_run.h"
#include "det/core/registry.h"
#include "det/dist/launcher.h"
#include "det/experiment/run_dir.h"
#include <spdlog/spdlog.h>

#include "det/util/error.h"
#include "det/util/log.h"

namespace det {
namespace fs = std::filesystem;
using json = nlohmann::json;

json checkpoint_json(const CheckpointRecord& r) {
  return {{"uuid", r.uuid},
          {"batches", r.batches},
          {"path", r.path.string()},
          {"metric", r.metric ? json(*r.metric) : json(nullptr)}};
}

void EventListener::on_training_metrics(int64_t batches, const json& report) {
  sink_({{"event", "training"}, {"batches", batches}, {"report", report}});
}

void EventListener::on_validation_metrics(int64_t batches, const json& report) {
  sink_({{"event", "validation"}, {"batches", batches}, {"report", report}});
}

void EventListener::on_checkpoint(const CheckpointRecord& record, const std::vector<CheckpointRecord>& kept) {
  json k = json::array();
  for (const auto& r : kept) k.push_back(checkpoint_json(r));
  sink_({{"event", "checkpoint"}, {"checkpoint", checkpoint_json(record)}, {"kept", k}});
}

namespace {

// The two pipes to the runner: JSON lines out on one, answers in on the other.
class RunnerPipe {
 public:
  RunnerPipe(int out, int in) : out_(out), in_(in) {}
  void send(const json& message) {
    std::string line = message.dump() + "\n";
    size_t done = 0;
    while (done < line.size()) {
      ssize_t n = ::write(out_, line.data() + done, line.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        if (!warned_) util::logger()->warn("lost the experiment runner ({}); reports are dropped", std::strerror(errno));
        warned_ = true;
        return;
      }
      done += static_cast<size_t>(n);
    }
  }
  /// The runner's next answer; null when the runner is gone.
  json receive() {
    for (;;) {
      size_t pos = buffer_.find('\n');
      if (pos != std::string::npos) {
        std::string line = buffer_.substr(0, pos);
        buffer_.erase(0, pos + 1);
        try {
          return json::parse(line);
        } catch (const json::exception&) {
          throw Error("the experiment runner sent a malformed answer: " + line.substr(0, 200));
        }
      }
      char buf[4096];
      ssize_t n = ::read(in_, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return nullptr;
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int out_, in_;
  std::string buffer_;
  bool warned_ = false;
};

}  // namespace

int run_worker(const WorkerArgs& w, const std::atomic<bool>* stop_flag) {
  ::signal(SIGPIPE, SIG_IGN);
  RunnerPipe pipe(w.report_fd, w.control_fd);
  bool chief = true;  // until the ranks are known: a failure before that is reported by every process
  auto fail = [&](const std::string& reason, const std::string& message, int code) {
    if (chief) pipe.send({{"event", "exit"}, {"reason", reason}, {"message", message}});
    return code;
  };
  try {
    fs::path run_dir = w.run_dir;
    auto cfg = config::load_experiment_config((run_dir / "config.yaml").string(), {});
    const TrialFactory& factory = TrialRegistry::instance().find(cfg.entrypoint, cfg.source);
    // Several slots: this process becomes the launcher of that many ranks, each running this same
    // command line. The ranks inherit the pipes; only the chief uses them.
    if (auto rc = dist::relaunch_if_needed(cfg.resources.slots_per_trial)) return *rc;
    auto ranks = trial_ranks(cfg);
    chief = ranks->is_chief();
    auto summary = experiment::ExperimentSummary::load(run_dir);
    const json& entry = summary.trial(w.trial);
    fs::path trial_dir = run_dir / ("trial-" + std::to_string(w.trial));
    if (chief) {
      fs::create_directories(trial_dir);
      util::add_log_file(trial_dir / "trial.log");
    } else {
      util::logger()->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " + std::to_string(ranks->rank()) + "] [%^%l%$] %v");
    }
    if (w.threads > 0) torch::set_num_threads(w.threads);

    EventListener listener([&](const json& e) { pipe.send(e); });
    TrialRunOptions opt;
    opt.distributed = ranks;
    opt.trial_id = w.trial;
    opt.hparams = entry.value("hparams", json::object());
    opt.trial_seed = entry.value("seed", 0u);
    opt.trial_dir = trial_dir;
    opt.show_progress = !w.no_progress && chief;
    opt.stop_flag = stop_flag;
    opt.listener = chief ? &listener : nullptr;
    if (!w.resume.empty()) opt.resume_from = fs::path(w.resume);
    const config::Unit unit = cfg.searcher.max_length ? cfg.searcher.max_length->unit : config::Unit::kBatches;
    opt.target = config::Length{unit, w.target};
    opt.next_target = [&](const config::Length& reached, double metric) -> std::optional<config::Length> {
      json answer;
      if (chief) {
        pipe.send({{"event", "target_reached"}, {"length", reached.value}, {"metric", metric}});
        answer = pipe.receive();
      }
      answer = ranks->broadcast(answer);  // every rank trains to the same target
      if (answer.is_object() && answer.contains("target")) return config::Length{unit, answer["target"].get<int64_t>()};
      return std::nullopt;
    };
    TrialController controller(cfg, factory, opt);
    TrialResult result = controller.run();
    switch (result.exit) {
      case TrialResult::Exit::kCompleted: return fail("completed", "", 0);
      case TrialResult::Exit::kStopRequested: return fail("stop_requested", "", 0);
      case TrialResult::Exit::kStopped: return fail("stopped", "", 130);
    }
    return 0;
  } catch (const InvalidHP& e) {
    dist::record_failure(e);  // for det-launch: which rank failed first
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    util::logger()->warn("trial {}: rejected its hyperparameters: {}", w.trial, msg);
    return fail("invalid_hp", msg, 3);
  } catch (const std::exception& e) {
    dist::record_failure(e);
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    util::logger()->error("trial {}: {}", w.trial, msg);
    return fail("error", msg, 1);
  }
}

}  // namespace det
