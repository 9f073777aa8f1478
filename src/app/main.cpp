// det::main: the det-run command line. Parses, dispatches to the commands (commands.h), and turns
// every det::Error into one line on stderr and an exit code.
#include "det/main.h"

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <functional>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "commands.h"
#include "det/distributed/launcher.h"
#include "det/util/allocator.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "det/util/threads.h"
#include "det/util/version.h"
#include "report.h"
#include "worker.h"

namespace det {

namespace app {

std::atomic<bool>& stop_flag() {
  static std::atomic<bool> flag{false};
  return flag;
}

namespace {

extern "C" void on_signal(int sig) {
  if (stop_flag().exchange(true)) {  // a second Ctrl-C: leave now
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

// One line on stderr and the exit code for an error: 2 for the user's mistakes, 1 for the rest.
int report(const std::exception& e, const char* prefix, int code) {
  distributed::record_failure(e);  // for det-launch: which rank failed first
  std::fprintf(stderr, "det-run: %s%s\n", prefix, util::one_line(first_line(e.what())).c_str());
  return code;
}

// One det-run subcommand: where CLI11 parsed it, and what runs it. `interruptible`: it runs
// until done or stopped, so SIGINT and SIGTERM set stop_flag() (a second one ends the process).
struct Command {
  CLI::App* sub = nullptr;
  std::function<int()> run;
  bool interruptible = false;
};

// det-run's command line: the training options on the root, one entry of `commands_` per
// subcommand. Each add_* declares one group of subcommands and what they run.
class CommandLine {
 public:
  CommandLine() {
    cli_.set_version_flag("--version", std::string("det ") + util::version());
    cli_.require_subcommand(0, 1);
    add_training_options();
    add_worker();
    add_config_commands();
    add_store_commands();
    add_run_directory_commands();
    add_control_commands();
  }

  int run(int argc, char** argv) {
    try {
      cli_.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      if (e.get_exit_code() == 0) return cli_.exit(e);  // --help, --version
      // One line, as every other error of det-run's.
      std::fprintf(stderr, "det-run: %s (see det-run --help)\n", util::one_line(e.what()).c_str());
      return 2;
    }
    try {
      util::set_log_level(train_.log_level);
      for (const Command& c : commands_) {
        if (!c.sub->parsed()) continue;
        if (c.interruptible) catch_stop_signals();
        return c.run();
      }
      catch_stop_signals();
      return train();
    } catch (const ConfigError& e) {
      return report(e, "config error: ", 2);
    } catch (const UsageError& e) {
      return report(e, "", 2);
    } catch (const InvalidHP& e) {
      return report(e, "the trial rejected its hyperparameters: ", 1);
    } catch (const std::exception& e) {
      return report(e, "error: ", 1);
    }
  }

 private:
  static void catch_stop_signals() {
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
  }

  void add_store_option(CLI::App* sub) {
    sub->add_option("--store", store_, "the store (default runs/det.db)");
  }

  void add_training_options() {
    TrainArgs& ta = train_;
    cli_.add_option("config", ta.config, "experiment config (YAML)");
    cli_.add_option("--config", ta.overrides,
                    "override a config field: key.path=value (repeatable)");
    cli_.add_flag("--test", ta.test,
                  "test mode: one training batch, one validation batch, one checkpoint");
    cli_.add_option("--resume", ta.resume, "continue the trial from this checkpoint directory");
    cli_.add_option("--log-level", ta.log_level, "trace, debug, info, warn or error")
        ->capture_default_str();
    cli_.add_flag("--no-progress", ta.no_progress, "no progress line on a terminal");
    cli_.add_option("--resume-experiment", ta.resume_experiment,
                    "continue a stopped experiment from its run directory (CONFIG may be left "
                    "out)");
    cli_.add_option("--slots", ta.slots,
                    "slots the experiment may use at once (default resources.max_slots, else one "
                    "trial at a time; on Slurm max_concurrent_trials trials); each trial takes "
                    "resources.slots_per_trial");
    cli_.add_option("--scheduler", ta.scheduler,
                    "where trials run: local (child processes) or slurm (one sbatch job per "
                    "trial); default slurm when the config has a slurm: section, else local");
  }

  // Internal: started by the experiment runner.
  void add_worker() {
    auto wa = std::make_shared<WorkerArgs>();
    auto* wk = cli_.add_subcommand("__worker", "");
    wk->group("");
    wk->add_option("--run-dir", wa->run_dir)->required();
    wk->add_option("--trial", wa->trial)->required();
    wk->add_option("--target", wa->target)->required();
    wk->add_option("--resume", wa->resume);
    wk->add_option("--warm-start", wa->warm_start);
    wk->add_option("--launch", wa->launch)->required();
    wk->add_option("--threads", wa->threads);
    wk->add_option("--console-level", wa->console_level);
    wk->add_flag("--no-progress", wa->no_progress);
    wk->add_option("--log-level", train_.log_level);
    commands_.push_back({wk, [wa] { return run_worker(*wa, &stop_flag()); }, true});
  }

  void add_config_commands() {
    struct Args {
      std::string path, trials;
      std::vector<std::string> overrides;
    };
    auto vc_args = std::make_shared<Args>();
    auto* vc = cli_.add_subcommand("validate-config", "check a config and exit");
    vc->add_option("config", vc_args->path, "experiment config (YAML)")->required();
    vc->add_option("--config", vc_args->overrides, "override a config field: key.path=value");
    commands_.push_back(
        {vc, [vc_args] { return validate_config(vc_args->path, vc_args->overrides); }});

    auto ps_args = std::make_shared<Args>();
    auto* ps = cli_.add_subcommand(
        "preview-search", "show what the searcher will do, or simulate it against given trials");
    ps->add_option("config", ps_args->path, "experiment config (YAML)")->required();
    ps->add_option("--simulate", ps_args->trials,
                   "TRIALS.json: {\"trials\": [{\"metric\": 0.1, \"early_exit_at\": 1}, ...]}");
    ps->add_option("--config", ps_args->overrides, "override a config field: key.path=value");
    commands_.push_back(
        {ps,
         [ps_args] { return preview_search(ps_args->path, ps_args->overrides, ps_args->trials); }});
  }

  void add_store_commands() {
    auto* ex = cli_.add_subcommand("experiments", "list the experiments of an experiment store");
    add_store_option(ex);
    commands_.push_back({ex, [this] { return list_experiments(store_); }});

    auto experiment = std::make_shared<int64_t>(0);
    auto* de = cli_.add_subcommand(
        "describe", "an experiment's trials, hyperparameters, best metrics and checkpoints");
    de->add_option("experiment_id", *experiment, "experiment id (see det-run experiments)")
        ->required();
    add_store_option(de);
    commands_.push_back(
        {de, [this, experiment] { return describe_experiment(*experiment, store_); }});

    struct MetricsArgs {
      int64_t trial = 0;
      std::string kind, format = "table";
    };
    auto m = std::make_shared<MetricsArgs>();
    auto* me = cli_.add_subcommand("metrics", "a trial's training and validation metrics");
    me->add_option("trial_id", m->trial, "trial id (see det-run describe)")->required();
    me->add_option("--kind", m->kind, "training or validation (default both)");
    me->add_option("--format", m->format, "table, csv or json")->capture_default_str();
    add_store_option(me);
    commands_.push_back(
        {me, [this, m] { return show_metrics(m->trial, m->kind, m->format, store_); }});

    auto logs = std::make_shared<std::pair<int64_t, bool>>(0, false);
    auto* lg = cli_.add_subcommand("logs", "a trial's log (trial.log in its run directory)");
    lg->add_option("trial_id", logs->first, "trial id (see det-run describe)")->required();
    lg->add_flag("-f,--follow", logs->second, "keep printing what the trial logs until it ends");
    add_store_option(lg);
    commands_.push_back(
        {lg, [this, logs] { return show_logs(logs->first, logs->second, store_, &stop_flag()); },
         true});
  }

  void add_run_directory_commands() {
    auto run_dir = std::make_shared<std::string>();
    auto* lt = cli_.add_subcommand(
        "list-trials", "list the trials of a run directory (default: the latest under ./runs)");
    lt->add_option("run_dir", *run_dir, "run directory holding experiment.json");
    commands_.push_back({lt, [run_dir] { return list_trials(*run_dir); }});

    auto target = std::make_shared<std::pair<std::string, std::string>>();
    auto* rp = cli_.add_subcommand(
        "report", "write an experiment's report: one HTML file that opens offline in any browser");
    rp->add_option("target", target->first,
                   "a run directory, or an experiment id of the store (default: its latest)");
    rp->add_option("-o,--output", target->second,
                   "the HTML file (default <run dir>/report.html, else experiment-<id>.html)");
    add_store_option(rp);
    commands_.push_back(
        {rp, [this, target] { return write_report(target->first, target->second, store_); }});

    auto listen = std::make_shared<std::pair<std::string, int>>("127.0.0.1", 8080);
    auto* sv =
        cli_.add_subcommand("serve", "a live, read-only view of an experiment store over HTTP");
    sv->add_option("--port", listen->second, "TCP port (0: any free one)")->capture_default_str();
    sv->add_option("--host", listen->first,
                   "address to listen on; anything but loopback shows the store's experiments, "
                   "configs and paths to whoever can reach it (docs/observability.md)")
        ->capture_default_str();
    add_store_option(sv);
    commands_.push_back(
        {sv, [this, listen] { return serve(store_, listen->first, listen->second, &stop_flag()); },
         true});
  }

  // det-run pause|activate|cancel|kill EXP_ID, kill-trial TRIAL_ID, set max-slots EXP_ID N.
  void add_control_commands() {
    using Kind = record::ControlCommand::Kind;
    struct Args {
      int64_t id = 0;
      int slots = 0, timeout = 300;
    };
    auto a = std::make_shared<Args>();
    auto add = [&](CLI::App* parent, const char* name, const char* help, const char* id_help) {
      auto* sub = parent->add_subcommand(name, help);
      sub->add_option(std::string(name) == "kill-trial" ? "trial_id" : "experiment_id", a->id,
                      id_help)
          ->required();
      sub->add_option("--timeout", a->timeout,
                      "seconds to wait for the runner to carry it out (trials checkpoint first)")
          ->capture_default_str();
      add_store_option(sub);
      return sub;
    };
    const char* exp_id = "experiment id (see det-run experiments)";
    const std::tuple<const char*, const char*, Kind> commands[] = {
        {"pause", "pause a running experiment: its trials checkpoint and stop, none starts",
         Kind::kPause},
        {"activate", "go on with a paused experiment", Kind::kActivate},
        {"cancel", "end an experiment: its trials checkpoint and stop; CANCELED", Kind::kCancel},
        {"kill", "end an experiment now: its trials stop without a checkpoint; CANCELED",
         Kind::kKill},
    };
    for (const auto& [name, help, kind] : commands) {
      auto* sub = add(&cli_, name, help, exp_id);
      const Kind k = kind;
      commands_.push_back(
          {sub, [this, a, k] { return control_experiment(k, a->id, 0, store_, a->timeout); }});
    }
    auto fa = std::make_shared<TrainArgs>();
    auto* fk = cli_.add_subcommand(
        "fork", "a new experiment from an experiment's config, with --config changes on top");
    fk->add_option("experiment_id", a->id, exp_id)->required();
    fk->add_option("--config", fa->overrides, "override a config field: key.path=value");
    fk->add_option("--slots", fa->slots, "slots the new experiment may use at once");
    fk->add_option("--scheduler", fa->scheduler, "local or slurm (default: the config's)");
    fk->add_flag("--no-progress", fa->no_progress, "no progress line on a terminal");
    add_store_option(fk);
    commands_.push_back({fk,
                         [this, a, fa] {
                           fa->log_level = train_.log_level;
                           return fork_experiment(a->id, store_, *fa);
                         },
                         true});
    auto* kt = add(&cli_, "kill-trial", "end one trial now (CANCELED); the search goes on",
                   "trial id (see det-run describe)");
    commands_.push_back({kt, [this, a] { return kill_trial(a->id, store_, a->timeout); }});
    auto* set = cli_.add_subcommand("set", "change a running experiment");
    set->require_subcommand(1);
    auto* ms =
        add(set, "max-slots", "the slots the experiment may use, from its next launch", exp_id);
    ms->add_option("slots", a->slots, "the new budget (at least resources.slots_per_trial)")
        ->required();
    commands_.push_back({ms, [this, a] {
                           return control_experiment(Kind::kSetMaxSlots, a->id, a->slots, store_,
                                                     a->timeout);
                         }});
  }

  // The root command: a new experiment, a resumed one, or one trial in this process.
  int train() {
    if (!train_.resume_experiment.empty()) {
      if (train_.test || !train_.resume.empty())
        throw UsageError("--resume-experiment cannot be combined with --test or --resume");
      return resume_experiment(train_);
    }
    if (train_.config.empty())
      throw UsageError("no config given: det-run CONFIG.yaml (see det-run --help)");
    if (train_.test || !train_.resume.empty()) return train_in_process(train_);
    return train_experiment(train_);
  }

  CLI::App cli_{"det-run: train LibTorch trials from Determined-style experiment configs"};
  TrainArgs train_;
  std::string store_;  // --store of the store commands
  std::vector<Command> commands_;
};

}  // namespace
}  // namespace app

int main(int argc, char** argv) {
  util::tune_allocator();
  util::default_blas_threads();         // before any worker starts: they inherit it
  util::default_mkl_reproducibility();  // before MKL's first call, and for the workers
  return app::CommandLine().run(argc, argv);
}

}  // namespace det
