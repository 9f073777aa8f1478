// The training commands of det-run: a new experiment through the runner, a resumed experiment,
// and one trial in this process (--test, --resume). Every record goes through the
// experiment::Recorder.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "commands.h"
#include "det/config/experiment_config.h"
#include "det/config/hyperparameters.h"
#include "det/core/checkpoint.h"
#include "det/core/controller.h"
#include "det/core/registry.h"
#include "det/distributed/launcher.h"
#include "det/experiment/recorder.h"
#include "det/experiment/run_dir.h"
#include "det/experiment/runner.h"
#include "det/experiment/store.h"
#include "det/record/run_dir.h"
#include "det/record/states.h"
#include "det/search/create.h"
#include "det/search/searcher.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/log.h"
#include "queries.h"
#include "ranks.h"

namespace det::app {
namespace fs = std::filesystem;

namespace {

fs::path self_executable() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("cannot find this program's path (/proc/self/exe): " + ec.message());
  return exe;
}

experiment::RunnerOptions runner_options(const TrainArgs& a) {
  experiment::RunnerOptions o;
  o.executable = self_executable();
  o.worker_args = {"--log-level", a.log_level};
  o.slots = std::max(0, a.slots);  // 0: the runner's default for its scheduler
  o.scheduler = a.scheduler;
  o.show_progress = !a.no_progress;
  o.stop_flag = &stop_flag();
  return o;
}

// The checkpoint searcher.source_* names, from the store beside the run directories; checked
// before anything is created.
std::optional<fs::path> source_checkpoint(const config::ExperimentConfig& cfg) {
  if (!cfg.searcher.source_checkpoint_uuid && !cfg.searcher.source_trial_id) return std::nullopt;
  const fs::path store = record::RunDir::store_in(cfg.storage().root());
  if (!fs::exists(store))
    throw ConfigError("searcher.source_" +
                      std::string(cfg.searcher.source_trial_id ? "trial_id" : "checkpoint_uuid") +
                      ": there is no experiment store at " + store.string() +
                      " (checkpoint_storage.host_path names where the source was trained)");
  experiment::ExperimentStore s(store);
  return experiment::warm_start_checkpoint(cfg, s);
}

// A fresh run directory with the resolved config (every default filled in, and the seed).
fs::path new_run_dir(const config::ExperimentConfig& cfg, uint32_t seed) {
  fs::path run_dir =
      experiment::create_run_dir(cfg.storage().root(), cfg.name.empty() ? "experiment" : cfg.name);
  nlohmann::json resolved = config::to_json(cfg);
  resolved["reproducibility"]["experiment_seed"] = seed;
  util::write_file_atomic(record::RunDir(run_dir).config(), config::to_yaml(resolved));
  util::add_log_file(record::RunDir(run_dir).log());
  util::logger()->info("experiment '{}' -> {}", cfg.name, run_dir.string());
  return run_dir;
}

// The config's notices (settings that have no effect here) as warnings, and `debug: true` as
// debug logging: once per experiment, by the process that records it.
void announce(const config::ExperimentConfig& cfg) {
  if (cfg.debug) util::set_log_level("debug");
  for (const auto& n : cfg.notices) util::logger()->warn("config: {}", n);
}

// Forwards the controller's reports of one trial to the recorder.
class RecordingListener : public TrialListener {
 public:
  RecordingListener(experiment::Recorder& recorder, int64_t trial)
      : recorder_(recorder), trial_(trial) {}
  void on_report(const record::MetricsReport& report) override {
    recorder_.record_report(trial_, report);
  }
  void on_checkpoint(const record::CheckpointEvent& event) override {
    recorder_.record_checkpoint(trial_, event);
  }

 private:
  experiment::Recorder& recorder_;
  int64_t trial_;
};

}  // namespace

int train_experiment(const TrainArgs& a) {
  auto cfg = config::load_experiment_config(a.config, a.overrides);
  if (auto env = distributed::detect_launch_environment(); env && env->size > 1) {
    if (cfg.searcher.name != "single")
      throw UsageError(
          "det-run was started as rank " + std::to_string(env->rank) + " of " +
          std::to_string(env->size) + " by " + env->source + ", which runs one trial; a '" +
          cfg.searcher.name + "' search runs its trials itself: start det-run " + a.config +
          " without a launcher and it launches resources.slots_per_trial ranks per trial");
    return train_in_process(a);
  }
  experiment::RunnerOptions options = runner_options(a);
  options.scheduler = experiment::choose_scheduler(cfg, a.scheduler);  // fail before creating
  if (options.slots > 0) experiment::check_slots(cfg, options.slots);
  TrialRegistry::instance().find(cfg.entrypoint, cfg.source);  // fail before creating anything
  source_checkpoint(cfg);
  const uint32_t seed = search::experiment_seed(cfg);
  auto recorder = experiment::Recorder::create(new_run_dir(cfg, seed), cfg, seed);
  announce(cfg);
  return experiment::run_experiment(cfg, *recorder, seed, options);
}

int fork_experiment(int64_t experiment_id, const std::string& store, TrainArgs args) {
  const fs::path path = store_path_or_default(store);
  const auto parent = experiment::ExperimentStore(path).experiment(experiment_id);
  const fs::path config = record::RunDir(parent.run_dir).config();
  if (!fs::exists(config))
    throw Error("experiment " + std::to_string(experiment_id) + ": its run directory " +
                parent.run_dir + " holds no config.yaml to fork from");
  args.config = config.string();
  util::logger()->info("forking experiment {} ({}) from {}{}", experiment_id, parent.name,
                       config.string(), args.overrides.empty() ? "" : " with --config changes");
  return train_experiment(args);
}

int resume_experiment(const TrainArgs& a) {
  fs::path run_dir = fs::absolute(a.resume_experiment);
  const record::RunDir dir(run_dir);
  if (!fs::exists(dir.summary()))
    throw UsageError("--resume-experiment " + a.resume_experiment +
                     ": not a run directory (no experiment.json); give the directory det-run "
                     "printed when it stopped");
  auto cfg = config::load_experiment_config(dir.config().string(), {});
  if (!a.config.empty()) {
    auto given = config::load_experiment_config(a.config, a.overrides);
    if (given.entrypoint != cfg.entrypoint || given.searcher.name != cfg.searcher.name)
      throw UsageError("--resume-experiment " + a.resume_experiment + " ran entrypoint '" +
                       cfg.entrypoint + "' with searcher '" + cfg.searcher.name + "', but " +
                       a.config + " names '" + given.entrypoint + "' with '" + given.searcher.name +
                       "'; the experiment continues with its own config.yaml, so drop CONFIG");
  }
  util::add_log_file(dir.log());
  return experiment::resume_experiment(run_dir, runner_options(a));
}

namespace {

// --resume CKPT: the trial's records, and the options that continue it where it stopped.
std::unique_ptr<experiment::Recorder> open_resumed_trial(const config::ExperimentConfig& cfg,
                                                         const std::string& resume,
                                                         TrialRunOptions& opt) {
  fs::path ckpt = checkpoint::normalize_dir(resume);
  auto meta = checkpoint::read_metadata(ckpt);
  // --resume continues the trial as it was: a config that says otherwise is refused, never
  // silently overruled by the checkpoint.
  if (auto m = config::hyperparameter_mismatch(cfg.hyperparameters, meta.hparams, "the checkpoint"))
    throw ConfigError("--resume " + ckpt.string() + ": " + *m +
                      "; --resume continues a trial with its own hyperparameters: make the "
                      "config agree with the checkpoint's, or train a new trial");
  opt.resume_from = ckpt;
  opt.trial_dir = ckpt.parent_path().parent_path();
  opt.trial_id = meta.trial_state.trial_id;
  fs::path run_dir = opt.trial_dir.parent_path();
  auto recorder = fs::exists(record::RunDir(run_dir).summary())
                      ? experiment::Recorder::open(run_dir)
                      : experiment::Recorder::create(run_dir, cfg, meta.trial_seed);
  recorder->add_trial(opt.trial_id, "", meta.hparams, meta.trial_seed);
  // One history: what the trial reported after this checkpoint is trained and reported again.
  recorder->rollback(opt.trial_id, meta.trial_state.batches_trained);
  util::add_log_file(record::RunDir(run_dir).log());
  return recorder;
}

// A new single trial (--test, or one trial without the runner): its run directory and sample.
std::unique_ptr<experiment::Recorder> open_new_trial(const config::ExperimentConfig& cfg,
                                                     TrialRunOptions& opt) {
  const uint32_t seed = search::experiment_seed(cfg);
  util::NpRandom rng(seed);
  search::Create create = search::make_create(cfg.hyperparameters, rng);
  auto recorder = experiment::Recorder::create(new_run_dir(cfg, seed), cfg, seed);
  opt.trial_id = 1;
  recorder->add_trial(opt.trial_id, create.request_id, create.hparams, create.trial_seed);
  opt.hparams = create.hparams;
  opt.trial_seed = create.trial_seed;
  opt.trial_dir = recorder->trial_dir(opt.trial_id);
  return recorder;
}

}  // namespace

int train_in_process(const TrainArgs& a) {
  auto cfg = config::load_experiment_config(a.config, a.overrides);
  const TrialFactory& factory = TrialRegistry::instance().find(cfg.entrypoint, cfg.source);
  // Several slots: run again as that many ranks (det-launch), or join the ranks of a launcher.
  if (auto launched = relaunch_if_needed(cfg.resources.slots_per_trial)) return launched->exit_code;
  auto ranks = trial_ranks(cfg);
  apply_intra_op_threads(0, ranks->local_size());  // as every launcher's ranks, and the runner's
  TrialRunOptions opt;
  opt.test_mode =
      a.test;  // Determined's test mode: one batch, one validation batch, one checkpoint
  opt.show_progress = !a.no_progress;
  opt.stop_flag = &stop_flag();
  opt.distributed = ranks;
  // Every rank finds the warm-start checkpoint itself (the chief's broadcast does not carry it),
  // so that each loads the same optimizer state.
  if (a.resume.empty()) opt.warm_start_from = source_checkpoint(cfg);
  if (!ranks->is_chief()) return run_non_chief_rank(cfg, factory, opt);

  std::unique_ptr<experiment::Recorder> recorder =
      a.resume.empty() ? open_new_trial(cfg, opt) : open_resumed_trial(cfg, a.resume, opt);
  const int64_t trial = opt.trial_id;
  announce(cfg);
  recorder->set_experiment_state(record::RunState::kActive);
  recorder->set_trial_state(trial, record::TrialStatus::kActive);

  RecordingListener listener(*recorder, trial);
  opt.listener = &listener;
  share_trial_options(*ranks, opt);
  TrialController controller(cfg, factory, opt);
  auto set_final = [&](record::TrialStatus trial_state, record::RunState state) {
    recorder->set_trial_state(trial, trial_state);
    recorder->set_experiment_state(state);
  };
  TrialResult result;
  try {
    result = controller.run();
  } catch (...) {
    set_final(record::TrialStatus::kError, record::RunState::kError);
    throw;
  }
  const fs::path run_dir = recorder->run_dir();
  if (result.exit == TrialResult::Exit::kStopped) {
    set_final(record::TrialStatus::kStopped, record::RunState::kStopped);
    std::string ckpt =
        result.checkpoints.empty() ? "<checkpoint>" : result.checkpoints.back().path.string();
    std::fprintf(stderr, "det-run: stopped; continue with: det-run %s --resume %s\n",
                 a.config.c_str(), ckpt.c_str());
    return 130;
  }
  if (result.exit == TrialResult::Exit::kStopRequested) recorder->trial(trial).early_exit = true;
  set_final(record::TrialStatus::kCompleted, record::RunState::kCompleted);
  if (result.last_validation) util::logger()->info("done: {}", result.last_validation->dump());
  util::logger()->info("run directory: {}", run_dir.string());
  return 0;
}

}  // namespace det::app
