#include "ranks.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <torch/utils.h>

#include "det/distributed/launcher.h"
#include "det/experiment/recorder.h"
#include "det/record/rank_broadcast.h"
#include "det/record/states.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "det/util/strings.h"
#include "det/util/threads.h"

namespace det::app {

std::optional<distributed::LaunchResult> relaunch_if_needed(int slots) {
  if (slots <= 1) return std::nullopt;
  auto env = distributed::detect_launch_environment();
  if (env && env->size > 1) return std::nullopt;  // already one of the ranks
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < all.size();) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    args.push_back(all.substr(start, end - start));
    start = end + 1;
  }
  char exe[4096];
  ssize_t n = ::readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0 || args.empty())
    throw DistributedError(
        "cannot read this process's command line to launch its ranks; use det-launch");
  args[0] = std::string(exe, static_cast<size_t>(n));
  distributed::LaunchOptions o;
  o.nproc_per_node = slots;
  o.heartbeat_timeout = distributed::heartbeat_timeout_from_env();
  o.command = args;
  std::fprintf(stderr,
               "det-run: resources.slots_per_trial is %d: running %d ranks on this machine (as "
               "det-launch --nproc-per-node %d)\n",
               slots, slots, slots);
  return distributed::launch(o);
}

int apply_intra_op_threads(int runner_share, int local_ranks) {
  const int local = std::max(1, local_ranks);
  const bool users = std::getenv("DET_INTRA_OP_THREADS") || std::getenv("OMP_NUM_THREADS");
  int share = runner_share;
  const char* slurm_cpus = std::getenv("SLURM_CPUS_ON_NODE");
  if (share <= 0 && slurm_cpus && std::getenv("SLURM_STEP_ID")) share = std::atoi(slurm_cpus);
  const int threads =
      share > 0 && !users ? std::max(1, share / local) : util::default_intra_op_threads(local);
  if (threads > 0) torch::set_num_threads(threads);
  util::logger()->debug("intra-op threads: {} ({} usable CPUs, {} rank(s) on this node)",
                        torch::get_num_threads(), util::usable_cpus(), local);
  return torch::get_num_threads();
}

std::shared_ptr<distributed::DistributedContext> trial_ranks(
    const config::ExperimentConfig& config) {
  auto env = distributed::detect_launch_environment();
  if (!env || env->size == 1) return distributed::make_local_context();
  const int slots = config.resources.slots_per_trial;
  if (env->size != slots)
    throw ConfigError(
        config.source + ": resources.slots_per_trial is " + std::to_string(slots) +
        " but the launcher (" + env->source + ") started " + std::to_string(env->size) +
        " ranks; pass --config resources.slots_per_trial=" + std::to_string(env->size) +
        " or start " + std::to_string(slots) + " rank(s)");
  return distributed::make_process_group_context(*env);
}

void share_trial_options(distributed::DistributedContext& ranks, const TrialRunOptions& o) {
  if (ranks.size() == 1) return;
  ranks.broadcast(
      record::TrialOptionsBroadcast{o.trial_id, o.hparams, o.trial_seed, o.trial_dir, o.resume_from}
          .to_json());
}

namespace {

// Launched directly (det-launch -- det-run), the chief records the experiment. When the trial
// fails on this rank, the chief may be the one that died (a peer failure is all this rank sees):
// then nobody else ends the records, so this rank does, unless they are already final.
void record_end_if_orphaned(const std::filesystem::path& run_dir, int64_t trial,
                            const std::string& why) {
  try {
    auto recorder = experiment::Recorder::open(run_dir);
    if (recorder->summary().state != record::RunState::kActive) return;
    recorder->trial(trial).message = util::shorten(why.substr(0, why.find('\n')), 300);
    recorder->set_trial_state(trial, record::TrialStatus::kError);
    recorder->set_experiment_state(record::RunState::kError);
  } catch (const std::exception&) {
    // Nothing to end (no records yet) or no way to write them: the launcher still names the
    // failure.
  }
}

}  // namespace

int run_non_chief_rank(const config::ExperimentConfig& config, const TrialFactory& factory,
                       TrialRunOptions o) {
  // This rank's log lines (warnings mostly: the chief logs progress) say whose they are.
  util::logger()->set_pattern("[%Y-%m-%d %H:%M:%S.%e] [rank " +
                              std::to_string(o.distributed->rank()) + "] [%^%l%$] %v");
  const auto msg =
      record::TrialOptionsBroadcast::from_json(o.distributed->broadcast(nlohmann::json(nullptr)));
  o.trial_id = msg.trial_id;
  o.hparams = msg.hparams;
  o.trial_seed = msg.trial_seed;
  // The chief's directory: read for a resume (checkpoints on shared storage), never written here.
  o.trial_dir = msg.trial_dir;
  o.resume_from = msg.resume_from;
  o.listener = nullptr;
  o.show_progress = false;
  TrialController controller(config, factory, o);
  try {
    TrialResult r = controller.run();
    return r.exit == TrialResult::Exit::kStopped ? 130 : 0;
  } catch (const std::exception& e) {
    record_end_if_orphaned(o.trial_dir.parent_path(), o.trial_id, e.what());
    throw;
  }
}

}  // namespace det::app
