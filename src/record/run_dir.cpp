#include "det/record/run_dir.h"

namespace det::record {
namespace fs = std::filesystem;

namespace {
std::string launch_stem(int64_t launch) { return "launch-" + std::to_string(launch); }
}  // namespace

TrialDir::TrialDir(fs::path dir) : dir_(std::move(dir)) {}

fs::path TrialDir::log() const { return dir_ / "trial.log"; }
fs::path TrialDir::metrics() const { return dir_ / "metrics.jsonl"; }
fs::path TrialDir::checkpoints() const { return dir_ / "checkpoints"; }
fs::path TrialDir::channel_events(int64_t launch) const {
  return dir_ / "channel" / (launch_stem(launch) + ".events");
}
fs::path TrialDir::channel_answers(int64_t launch) const {
  return dir_ / "channel" / (launch_stem(launch) + ".answers");
}
fs::path TrialDir::slurm_output(int64_t launch) const {
  return dir_ / ("slurm-" + launch_stem(launch) + ".out");
}

const char* const RunDir::kConfigFile = "config.yaml";

RunDir::RunDir(fs::path dir) : dir_(std::move(dir)) {}

std::string RunDir::trial_name(int64_t trial) { return "trial-" + std::to_string(trial); }
fs::path RunDir::store_in(const fs::path& root) { return root / "det.db"; }

fs::path RunDir::config() const { return dir_ / kConfigFile; }
fs::path RunDir::summary() const { return dir_ / "experiment.json"; }
fs::path RunDir::log() const { return dir_ / "det.log"; }
fs::path RunDir::runner_lock() const { return dir_ / "runner.lock"; }
fs::path RunDir::control() const { return dir_ / "control"; }
fs::path RunDir::slurm_script() const { return dir_ / "slurm" / "trial.sbatch"; }
fs::path RunDir::default_store() const { return store_in(dir_.parent_path()); }
TrialDir RunDir::trial(int64_t id) const { return TrialDir(dir_ / trial_name(id)); }

}  // namespace det::record
