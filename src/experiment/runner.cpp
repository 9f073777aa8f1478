#include "det/experiment/runner.h"

#include "det/experiment/control.h"

#include "runner_impl.h"

namespace det::experiment {

using detail::Runner;

int run_experiment(const config::ExperimentConfig& config, Recorder& recorder, uint32_t seed,
                   const RunnerOptions& options) {
  RunnerOptions opt = options;
  opt.scheduler = choose_scheduler(config, options.scheduler);
  RunnerLock lock(recorder.run_dir());  // held while it runs: det-run pause ... find it
  Runner runner(config, recorder, seed, opt);
  runner.start();
  return runner.run();
}

int continue_experiment(const config::ExperimentConfig& config, Recorder& recorder,
                        const record::RunnerSnapshot& snapshot, const RunnerOptions& options) {
  Runner runner(config, recorder, snapshot.experiment_seed, options);
  runner.restore(snapshot);
  return runner.run();
}

}  // namespace det::experiment
