#include "det/core/main.h"

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <random>

#include "det/config/experiment_config.h"
#include "det/core/checkpoint.h"
#include "det/core/controller.h"
#include "det/core/distributed_run.h"
#include "det/dist/launcher.h"
#include "det/core/registry.h"
#include "det/experiment/run_dir.h"
#include "det/experiment/runner.h"
#include "det/experiment/store.h"
#include "det/search/create.h"
#include "det/search/searcher.h"
#include "det/util/allocator.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/log.h"
#include "det/util/strings.h"
#include "worker.h"

namespace det {
namespace fs = std::filesystem;

namespace {

std::atomic<bool> g_stop{false};

extern "C" void on_signal(int sig) {
  if (g_stop.exchange(true)) {  // a second Ctrl-C: leave now
    std::signal(sig, SIG_DFL);
    std::raise(sig);
  }
}

struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;
  bool test = false;
  std::string resume;
  std::string resume_experiment;
  int slots = 0;
  std::string log_level = "info";
  bool no_progress = false;
};

fs::path self_executable() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find this program's path (/proc/self/exe): " + ec.message());
  return exe;
}

experiment::RunnerOptions runner_options(const TrainArgs& a, const config::ExperimentConfig& cfg) {
  experiment::RunnerOptions o;
  o.executable = self_executable();
  o.worker_args = {"--log-level", a.log_level};
  o.slots = a.slots > 0 ? a.slots : cfg.resources.max_slots.value_or(std::max(1, cfg.resources.slots_per_trial));
  o.show_progress = !a.no_progress;
  o.stop_flag = &g_stop;
  return o;
}

int train_in_process(const TrainArgs& a);

// det-run CONFIG: the experiment runner, with trials in worker processes (each of
// resources.slots_per_trial ranks). Started as one rank of a launcher (det-launch -- det-run,
// mpirun, srun), det-run is that rank of a single trial instead.
int train_experiment(const TrainArgs& a) {
  auto cfg = config::load_experiment_config(a.config, a.overrides);
  if (auto env = dist::detect_launch_environment(); env && env->size > 1) {
    if (cfg.searcher.name != "single")
      throw UsageError("det-run was started as rank " + std::to_string(env->rank) + " of " + std::to_string(env->size) +
                       " by " + env->source + ", which runs one trial; a '" + cfg.searcher.name +
                       "' search runs its trials itself: start det-run " + a.config +
                       " without a launcher and it launches resources.slots_per_trial ranks per trial");
    return train_in_process(a);
  }
  experiment::RunnerOptions options = runner_options(a, cfg);
  experiment::check_slots(cfg, options.slots);
  TrialRegistry::instance().find(cfg.entrypoint, cfg.source);  // fail before creating anything
  uint32_t seed = search::experiment_seed(cfg);
  fs::path run_dir = experiment::create_run_dir(cfg.storage().root(), cfg.name.empty() ? "experiment" : cfg.name);
  nlohmann::json resolved = config::to_json(cfg);
  resolved["reproducibility"]["experiment_seed"] = seed;
  util::write_file_atomic(run_dir / "config.yaml", config::to_yaml(resolved));
  util::add_log_file(run_dir / "det.log");
  util::logger()->info("experiment '{}' -> {}", cfg.name, run_dir.string());
  return experiment::run_experiment(cfg, run_dir, seed, options);
}

// det-run --resume-experiment DIR: carries on where the runner stopped.
int resume_experiment(const TrainArgs& a) {
  fs::path run_dir = fs::absolute(a.resume_experiment);
  if (!fs::exists(run_dir / "experiment.json"))
    throw UsageError("--resume-experiment " + a.resume_experiment +
                     ": not a run directory (no experiment.json); give the directory det-run printed when it stopped");
  auto cfg = config::load_experiment_config((run_dir / "config.yaml").string(), {});
  if (!a.config.empty()) {
    auto given = config::load_experiment_config(a.config, a.overrides);
    if (given.entrypoint != cfg.entrypoint || given.searcher.name != cfg.searcher.name)
      throw UsageError("--resume-experiment " + a.resume_experiment + " ran entrypoint '" + cfg.entrypoint + "' with searcher '" +
                       cfg.searcher.name + "', but " + a.config + " names '" + given.entrypoint + "' with '" +
                       given.searcher.name + "'; the experiment continues with its own config.yaml, so drop CONFIG");
  }
  util::add_log_file(run_dir / "det.log");
  return experiment::resume_experiment(run_dir, runner_options(a, cfg));
}

// det-run CONFIG --test / --resume CHECKPOINT: one trial in this process.
int train_in_process(const TrainArgs& a) {
  auto cfg = config::load_experiment_config(a.config, a.overrides);
  const TrialFactory& factory = TrialRegistry::instance().find(cfg.entrypoint, cfg.source);
  // Several slots: run again as that many ranks (det-launch), or join the ranks of a launcher.
  if (auto rc = dist::relaunch_if_needed(cfg.resources.slots_per_trial)) return *rc;
  auto ranks = trial_ranks(cfg);
  if (a.test) {
    // Determined's test mode: one batch, one validation batch, one checkpoint; nothing kept past it.
    cfg.max_restarts = 0;
  }

  TrialRunOptions opt;
  opt.test_mode = a.test;
  opt.show_progress = !a.no_progress;
  opt.stop_flag = &g_stop;
  opt.distributed = ranks;
  if (!ranks->is_chief()) return run_non_chief_rank(cfg, factory, opt);
  fs::path run_dir;
  std::optional<experiment::ExperimentSummary> summary;
  int64_t trial_id = 1;
  if (!a.resume.empty()) {
    fs::path ckpt = checkpoint::normalize_dir(a.resume);
    auto meta = checkpoint::read_metadata(ckpt);
    opt.resume_from = ckpt;
    opt.trial_dir = ckpt.parent_path().parent_path();
    trial_id = meta.value("trial_id", int64_t{1});
    run_dir = opt.trial_dir.parent_path();
    if (fs::exists(run_dir / "experiment.json")) {
      summary = experiment::ExperimentSummary::load(run_dir);
    } else {
      summary.emplace(run_dir, cfg, meta.value("trial_seed", 0u));
    }
  } else {
    uint32_t seed = search::experiment_seed(cfg);
    util::NpRandom rng(seed);
    search::Create create = search::make_create(cfg.hyperparameters, rng);
    run_dir = experiment::create_run_dir(cfg.storage().root(), cfg.name.empty() ? "experiment" : cfg.name);
    nlohmann::json resolved = config::to_json(cfg);
    resolved["reproducibility"]["experiment_seed"] = seed;
    util::write_file_atomic(run_dir / "config.yaml", config::to_yaml(resolved));
    summary.emplace(run_dir, cfg, seed);
    auto& t = summary->trial(trial_id);
    t["hparams"] = create.hparams;
    t["seed"] = create.trial_seed;
    t["request_id"] = create.request_id;
    opt.hparams = create.hparams;
    opt.trial_seed = create.trial_seed;
    opt.trial_dir = run_dir / ("trial-" + std::to_string(trial_id));
  }
  opt.trial_id = trial_id;
  // The store lives beside the run directories: <storage root>/det.db.
  experiment::ExperimentStore store(run_dir.parent_path() / "det.db");
  int64_t store_experiment = experiment::attach_store(*summary, store, cfg);
  int64_t store_trial = store.find_trial(store_experiment, trial_id).value_or(0);
  if (store_trial == 0) {
    const auto& t = summary->trial(trial_id);
    store_trial = store.add_trial(store_experiment, trial_id, t.value("request_id", std::string()),
                                  t.value("hparams", nlohmann::json::object()), t.value("seed", int64_t{0}));
  }
  store.set_experiment_state(store_experiment, "ACTIVE");
  store.set_trial_state(store_trial, "ACTIVE");
  util::add_log_file(run_dir / "det.log");
  summary->set_state("ACTIVE");
  summary->trial(trial_id)["state"] = "ACTIVE";
  summary->save();
  util::logger()->info("experiment '{}' -> {}", cfg.name, run_dir.string());

  EventListener listener([&](const nlohmann::json& event) {
    experiment::record_trial_event(*summary, store, trial_id, store_trial, event);
  });
  opt.listener = &listener;
  share_trial_options(*ranks, opt);
  TrialController controller(cfg, factory, opt);
  TrialResult result;
  auto set_final = [&](const std::string& state) {
    summary->trial(trial_id)["state"] = state;
    summary->set_state(state);
    summary->save();
    store.set_trial_state(store_trial, state);
    store.set_experiment_state(store_experiment, state);
  };
  try {
    result = controller.run();
  } catch (...) {
    set_final("ERROR");
    throw;
  }
  auto& t = summary->trial(trial_id);
  t["hparams"] = result.hparams;
  t["seed"] = result.trial_seed;
  t["batches_trained"] = result.state.batches_trained;
  t["epochs_trained"] = result.state.epochs_trained;
  nlohmann::json kept = nlohmann::json::array();
  for (const auto& r : result.checkpoints) kept.push_back(checkpoint_json(r));
  t["checkpoints"] = kept;
  t["latest_checkpoint"] = result.checkpoints.empty() ? nlohmann::json(nullptr) : nlohmann::json(result.checkpoints.back().uuid);
  if (result.last_validation) t["final_validation"] = *result.last_validation;
  store.set_trial_progress(store_trial, result.state.batches_trained, std::nullopt);
  bool stopped = result.exit == TrialResult::Exit::kStopped;
  set_final(stopped ? "STOPPED" : "COMPLETED");
  if (stopped) {
    std::string ckpt = result.checkpoints.empty() ? "<checkpoint>" : result.checkpoints.back().path.string();
    std::fprintf(stderr, "det-run: stopped; continue with: det-run %s --resume %s\n", a.config.c_str(), ckpt.c_str());
    return 130;
  }
  if (result.last_validation) util::logger()->info("done: {}", result.last_validation->dump());
  util::logger()->info("run directory: {}", run_dir.string());
  return 0;
}

int validate_config(const std::string& path, const std::vector<std::string>& overrides) {
  auto cfg = config::load_experiment_config(path, overrides);
  TrialRegistry::instance().find(cfg.entrypoint, cfg.source);
  std::printf("%s: valid (searcher %s, entrypoint %s)\n", path.c_str(), cfg.searcher.name.c_str(), cfg.entrypoint.c_str());
  return 0;
}

int list_trials(const std::string& dir_arg) {
  fs::path dir = dir_arg.empty() ? experiment::latest_run_dir("runs") : fs::path(dir_arg);
  if (dir.empty()) throw UsageError("list-trials: no run directory given and none found under ./runs");
  auto summary = experiment::ExperimentSummary::load(dir);
  const auto& doc = summary.json();
  std::string metric = doc["searcher"].value("metric", "");
  std::printf("experiment %s (%s) in %s\n", doc.value("name", "").c_str(), doc.value("state", "").c_str(),
              dir.string().c_str());
  std::printf("%-6s %-10s %10s %16s %16s  %s\n", "trial", "state", "batches", ("best " + metric).c_str(),
              ("last " + metric).c_str(), "latest checkpoint");
  for (const auto& t : doc["trials"]) {
    auto num = [&](const char* key) -> std::string {
      if (!t.contains(key) || !t[key]["metrics"].contains(metric) || !t[key]["metrics"][metric].is_number()) return "-";
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.6g", t[key]["metrics"][metric].get<double>());
      return buf;
    };
    std::string ckpt = t.contains("latest_checkpoint") && t["latest_checkpoint"].is_string() ? t["latest_checkpoint"].get<std::string>() : "-";
    std::printf("%-6lld %-10s %10lld %16s %16s  %s\n", static_cast<long long>(t.value("id", int64_t{0})),
                t.value("state", "").c_str(), static_cast<long long>(t.value("batches_trained", int64_t{0})),
                num("best_validation").c_str(), num("latest_validation").c_str(), ckpt.c_str());
  }
  return 0;
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

fs::path store_path_or_default(const std::string& given) {
  fs::path p = given.empty() ? fs::path("runs") / "det.db" : fs::path(given);
  if (fs::is_directory(p)) p /= "det.db";
  if (!fs::exists(p))
    throw UsageError("no experiment store at " + p.string() +
                     " (runs record into <checkpoint_storage.host_path>/det.db; pass --store PATH)");
  return p;
}

int preview_search(const std::string& path, const std::vector<std::string>& overrides, const std::string& trials_file) {
  auto cfg = config::load_experiment_config(path, overrides);
  if (trials_file.empty()) {
    std::printf("%s", search::preview_search(cfg).c_str());
    return 0;
  }
  nlohmann::json trials;
  try {
    trials = nlohmann::json::parse(util::read_file(trials_file));
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(trials_file + ": not valid JSON: " + first_line(e.what()));
  } catch (const Error& e) {
    throw ConfigError(std::string(e.what()) + " (--simulate takes a TRIALS.json file)");
  }
  nlohmann::json result;
  try {
    result = search::simulate(cfg, trials);
  } catch (const ConfigError& e) {
    std::string msg = first_line(e.what());
    const std::string generic = "TRIALS.json: ";
    if (msg.rfind(generic, 0) == 0) msg = msg.substr(generic.size());
    throw ConfigError(trials_file + ": " + msg);
  }
  std::printf("%s\n", result.dump(2).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  util::tune_allocator();
  CLI::App app{"det-run: train LibTorch trials from Determined-style experiment configs"};
  app.set_version_flag("--version", "det 0.1.0");
  app.require_subcommand(0, 1);
  TrainArgs ta;
  app.add_option("config", ta.config, "experiment config (YAML)");
  app.add_option("--config", ta.overrides, "override a config field: key.path=value (repeatable)");
  app.add_flag("--test", ta.test, "test mode: one training batch, one validation batch, one checkpoint");
  app.add_option("--resume", ta.resume, "continue the trial from this checkpoint directory");
  app.add_option("--log-level", ta.log_level, "trace, debug, info, warn or error")->capture_default_str();
  app.add_flag("--no-progress", ta.no_progress, "no progress line on a terminal");
  app.add_option("--resume-experiment", ta.resume_experiment,
                 "continue a stopped experiment from its run directory (CONFIG may be left out)");
  app.add_option("--slots", ta.slots,
                 "slots the experiment may use at once (default resources.max_slots, else one trial at a time); "
                 "each trial takes resources.slots_per_trial");

  WorkerArgs wa;
  auto* wk = app.add_subcommand("__worker", "");
  wk->group("");  // internal: started by the experiment runner
  wk->add_option("--run-dir", wa.run_dir)->required();
  wk->add_option("--trial", wa.trial)->required();
  wk->add_option("--target", wa.target)->required();
  wk->add_option("--resume", wa.resume);
  wk->add_option("--report-fd", wa.report_fd);
  wk->add_option("--control-fd", wa.control_fd);
  wk->add_option("--threads", wa.threads);
  wk->add_flag("--no-progress", wa.no_progress);
  wk->add_option("--log-level", ta.log_level);

  std::string vc_path;
  std::vector<std::string> vc_overrides;
  auto* vc = app.add_subcommand("validate-config", "check a config and exit");
  vc->add_option("config", vc_path, "experiment config (YAML)")->required();
  vc->add_option("--config", vc_overrides, "override a config field: key.path=value");

  std::string ps_path, ps_trials;
  std::vector<std::string> ps_overrides;
  auto* ps = app.add_subcommand("preview-search", "show what the searcher will do, or simulate it against given trials");
  ps->add_option("config", ps_path, "experiment config (YAML)")->required();
  ps->add_option("--simulate", ps_trials, "TRIALS.json: {\"trials\": [{\"metric\": 0.1, \"early_exit_at\": 1}, ...]}");
  ps->add_option("--config", ps_overrides, "override a config field: key.path=value");

  std::string store_arg, metrics_kind, metrics_format = "table";
  int64_t describe_id = 0, metrics_trial = 0;
  auto* ex = app.add_subcommand("experiments", "list the experiments of an experiment store");
  ex->add_option("--store", store_arg, "the store (default runs/det.db)");
  auto* de = app.add_subcommand("describe", "an experiment's trials, hyperparameters, best metrics and checkpoints");
  de->add_option("experiment_id", describe_id, "experiment id (see det-run experiments)")->required();
  de->add_option("--store", store_arg, "the store (default runs/det.db)");
  auto* me = app.add_subcommand("metrics", "a trial's training and validation metrics");
  me->add_option("trial_id", metrics_trial, "trial id (see det-run describe)")->required();
  me->add_option("--kind", metrics_kind, "training or validation (default both)");
  me->add_option("--format", metrics_format, "table, csv or json")->capture_default_str();
  me->add_option("--store", store_arg, "the store (default runs/det.db)");

  std::string lt_dir;
  auto* lt = app.add_subcommand("list-trials", "list the trials of a run directory (default: the latest under ./runs)");
  lt->add_option("run_dir", lt_dir, "run directory holding experiment.json");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    util::set_log_level(ta.log_level);
    if (vc->parsed()) return validate_config(vc_path, vc_overrides);
    if (lt->parsed()) return list_trials(lt_dir);
    if (ps->parsed()) return preview_search(ps_path, ps_overrides, ps_trials);
    if (ex->parsed() || de->parsed() || me->parsed()) {
      experiment::ExperimentStore store(store_path_or_default(store_arg));
      if (ex->parsed()) std::printf("%s", experiment::format_experiments(store.experiments()).c_str());
      if (de->parsed()) std::printf("%s", experiment::format_experiment(store, describe_id).c_str());
      if (me->parsed()) {
        store.trial(metrics_trial);  // a clear error for an unknown trial
        std::printf("%s", experiment::format_metrics(store.metrics(metrics_trial, metrics_kind), metrics_format).c_str());
      }
      return 0;
    }
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    if (wk->parsed()) return run_worker(wa, &g_stop);
    if (!ta.resume_experiment.empty()) {
      if (ta.test || !ta.resume.empty())
        throw UsageError("--resume-experiment cannot be combined with --test or --resume");
      return resume_experiment(ta);
    }
    if (ta.config.empty()) throw UsageError("no config given: det-run CONFIG.yaml (see det-run --help)");
    if (ta.test || !ta.resume.empty()) return train_in_process(ta);
    return train_experiment(ta);
  } catch (const ConfigError& e) {
    dist::record_failure(e);  // for det-launch: which rank failed first
    std::fprintf(stderr, "det-run: config error: %s\n", first_line(e.what()).c_str());
    return 2;
  } catch (const UsageError& e) {
    dist::record_failure(e);  // for det-launch: which rank failed first
    std::fprintf(stderr, "det-run: %s\n", first_line(e.what()).c_str());
    return 2;
  } catch (const InvalidHP& e) {
    dist::record_failure(e);  // for det-launch: which rank failed first
    std::fprintf(stderr, "det-run: the trial rejected its hyperparameters: %s\n", first_line(e.what()).c_str());
    return 1;
  } catch (const Error& e) {
    dist::record_failure(e);  // for det-launch: which rank failed first
    std::fprintf(stderr, "det-run: error: %s\n", first_line(e.what()).c_str());
    return 1;
  } catch (const std::exception& e) {
    dist::record_failure(e);  // for det-launch: which rank failed first
    std::fprintf(stderr, "det-run: error: %s\n", first_line(e.what()).c_str());
    return 1;
  }
}

}  // namespace det
