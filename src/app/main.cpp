// det::main: the det-run command line. Parses, dispatches to the commands (commands.h), and turns
// every det::Error into one line on stderr and an exit code.
#include "det/main.h"

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>

#include "commands.h"
#include "det/distributed/launcher.h"
#include "det/util/allocator.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "det/util/threads.h"
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

}  // namespace
}  // namespace app

int main(int argc, char** argv) {
  using namespace app;
  util::tune_allocator();
  util::default_blas_threads();         // before any worker starts: they inherit it
  util::default_mkl_reproducibility();  // before MKL's first call, and for the workers
  CLI::App cli{"det-run: train LibTorch trials from Determined-style experiment configs"};
  cli.set_version_flag("--version", std::string("det ") + DET_VERSION);
  cli.require_subcommand(0, 1);
  TrainArgs ta;
  cli.add_option("config", ta.config, "experiment config (YAML)");
  cli.add_option("--config", ta.overrides, "override a config field: key.path=value (repeatable)");
  cli.add_flag("--test", ta.test,
               "test mode: one training batch, one validation batch, one checkpoint");
  cli.add_option("--resume", ta.resume, "continue the trial from this checkpoint directory");
  cli.add_option("--log-level", ta.log_level, "trace, debug, info, warn or error")
      ->capture_default_str();
  cli.add_flag("--no-progress", ta.no_progress, "no progress line on a terminal");
  cli.add_option("--resume-experiment", ta.resume_experiment,
                 "continue a stopped experiment from its run directory (CONFIG may be left out)");
  cli.add_option("--slots", ta.slots,
                 "slots the experiment may use at once (default resources.max_slots, else one "
                 "trial at a time; on Slurm max_concurrent_trials trials); each trial takes "
                 "resources.slots_per_trial");
  cli.add_option("--scheduler", ta.scheduler,
                 "where trials run: local (child processes) or slurm (one sbatch job per trial); "
                 "default slurm when the config has a slurm: section, else local");

  WorkerArgs wa;
  auto* wk = cli.add_subcommand("__worker", "");
  wk->group("");  // internal: started by the experiment runner
  wk->add_option("--run-dir", wa.run_dir)->required();
  wk->add_option("--trial", wa.trial)->required();
  wk->add_option("--target", wa.target)->required();
  wk->add_option("--resume", wa.resume);
  wk->add_option("--launch", wa.launch)->required();
  wk->add_option("--threads", wa.threads);
  wk->add_option("--console-level", wa.console_level);
  wk->add_flag("--no-progress", wa.no_progress);
  wk->add_option("--log-level", ta.log_level);

  std::string vc_path;
  std::vector<std::string> vc_overrides;
  auto* vc = cli.add_subcommand("validate-config", "check a config and exit");
  vc->add_option("config", vc_path, "experiment config (YAML)")->required();
  vc->add_option("--config", vc_overrides, "override a config field: key.path=value");

  std::string ps_path, ps_trials;
  std::vector<std::string> ps_overrides;
  auto* ps = cli.add_subcommand(
      "preview-search", "show what the searcher will do, or simulate it against given trials");
  ps->add_option("config", ps_path, "experiment config (YAML)")->required();
  ps->add_option("--simulate", ps_trials,
                 "TRIALS.json: {\"trials\": [{\"metric\": 0.1, \"early_exit_at\": 1}, ...]}");
  ps->add_option("--config", ps_overrides, "override a config field: key.path=value");

  std::string store_arg, metrics_kind, metrics_format = "table";
  int64_t describe_id = 0, metrics_trial = 0;
  auto* ex = cli.add_subcommand("experiments", "list the experiments of an experiment store");
  ex->add_option("--store", store_arg, "the store (default runs/det.db)");
  auto* de = cli.add_subcommand(
      "describe", "an experiment's trials, hyperparameters, best metrics and checkpoints");
  de->add_option("experiment_id", describe_id, "experiment id (see det-run experiments)")
      ->required();
  de->add_option("--store", store_arg, "the store (default runs/det.db)");
  auto* me = cli.add_subcommand("metrics", "a trial's training and validation metrics");
  me->add_option("trial_id", metrics_trial, "trial id (see det-run describe)")->required();
  me->add_option("--kind", metrics_kind, "training or validation (default both)");
  me->add_option("--format", metrics_format, "table, csv or json")->capture_default_str();
  me->add_option("--store", store_arg, "the store (default runs/det.db)");

  std::string lt_dir;
  auto* lt = cli.add_subcommand(
      "list-trials", "list the trials of a run directory (default: the latest under ./runs)");
  lt->add_option("run_dir", lt_dir, "run directory holding experiment.json");

  std::string report_target, report_out;
  auto* rp = cli.add_subcommand(
      "report", "write an experiment's report: one HTML file that opens offline in any browser");
  rp->add_option("target", report_target,
                 "a run directory, or an experiment id of the store (default: its latest)");
  rp->add_option("-o,--output", report_out,
                 "the HTML file (default <run dir>/report.html, else experiment-<id>.html)");
  rp->add_option("--store", store_arg, "the store (default runs/det.db)");

  int serve_port = 8080;
  std::string serve_host = "127.0.0.1";
  auto* sv = cli.add_subcommand("serve", "a live, read-only view of an experiment store over HTTP");
  sv->add_option("--port", serve_port, "TCP port (0: any free one)")->capture_default_str();
  sv->add_option("--host", serve_host,
                 "address to listen on; anything but loopback shows the store's experiments, "
                 "configs and paths to whoever can reach it (docs/observability.md)")
      ->capture_default_str();
  sv->add_option("--store", store_arg, "the store (default runs/det.db)");

  int64_t logs_trial = 0;
  bool logs_follow = false;
  auto* lg = cli.add_subcommand("logs", "a trial's log (trial.log in its run directory)");
  lg->add_option("trial_id", logs_trial, "trial id (see det-run describe)")->required();
  lg->add_flag("-f,--follow", logs_follow, "keep printing what the trial logs until it ends");
  lg->add_option("--store", store_arg, "the store (default runs/det.db)");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e) == 0 ? 0 : 2;
  }
  try {
    util::set_log_level(ta.log_level);
    if (vc->parsed()) return validate_config(vc_path, vc_overrides);
    if (lt->parsed()) return list_trials(lt_dir);
    if (ps->parsed()) return preview_search(ps_path, ps_overrides, ps_trials);
    if (ex->parsed()) return list_experiments(store_arg);
    if (de->parsed()) return describe_experiment(describe_id, store_arg);
    if (me->parsed()) return show_metrics(metrics_trial, metrics_kind, metrics_format, store_arg);
    if (rp->parsed()) return write_report(report_target, report_out, store_arg);
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    if (sv->parsed()) return serve(store_arg, serve_host, serve_port, &stop_flag());
    if (lg->parsed()) return show_logs(logs_trial, logs_follow, store_arg, &stop_flag());
    if (wk->parsed()) return run_worker(wa, &stop_flag());
    if (!ta.resume_experiment.empty()) {
      if (ta.test || !ta.resume.empty())
        throw UsageError("--resume-experiment cannot be combined with --test or --resume");
      return resume_experiment(ta);
    }
    if (ta.config.empty())
      throw UsageError("no config given: det-run CONFIG.yaml (see det-run --help)");
    if (ta.test || !ta.resume.empty()) return train_in_process(ta);
    return train_experiment(ta);
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

}  // namespace det
