// The names of a run directory's paths are the ones det has always used: run directories written
// before RunDir existed are read through it.

#include "det/record/run_dir.h"

#include <gtest/gtest.h>

#include "det/record/worker_channel.h"

namespace det::record {
namespace {

TEST(RunDir, NamesEveryPathAsBefore) {
  const RunDir d("/r/exp-20260101-000000");
  EXPECT_EQ(d.path(), "/r/exp-20260101-000000");
  EXPECT_EQ(d.config(), "/r/exp-20260101-000000/config.yaml");
  EXPECT_EQ(d.summary(), "/r/exp-20260101-000000/experiment.json");
  EXPECT_EQ(d.log(), "/r/exp-20260101-000000/det.log");
  EXPECT_EQ(d.slurm_script(), "/r/exp-20260101-000000/slurm/trial.sbatch");
  EXPECT_EQ(d.default_store(), "/r/det.db");
  EXPECT_EQ(RunDir::store_in("runs"), "runs/det.db");
  EXPECT_EQ(RunDir::trial_name(12), "trial-12");
  const TrialDir t = d.trial(3);
  EXPECT_EQ(t.path(), "/r/exp-20260101-000000/trial-3");
  EXPECT_EQ(t.log(), "/r/exp-20260101-000000/trial-3/trial.log");
  EXPECT_EQ(t.metrics(), "/r/exp-20260101-000000/trial-3/metrics.jsonl");
  EXPECT_EQ(t.checkpoints(), "/r/exp-20260101-000000/trial-3/checkpoints");
  EXPECT_EQ(t.channel_events(2), "/r/exp-20260101-000000/trial-3/channel/launch-2.events");
  EXPECT_EQ(t.channel_answers(2), "/r/exp-20260101-000000/trial-3/channel/launch-2.answers");
  EXPECT_EQ(t.slurm_output(2), "/r/exp-20260101-000000/trial-3/slurm-launch-2.out");
}

TEST(RunDir, ChannelFilesAreTheTrialDirs) {
  const TrialDir t = RunDir("/r/e").trial(1);
  const auto files = ChannelFiles::of(t.path(), 4);
  EXPECT_EQ(files.events, t.channel_events(4));
  EXPECT_EQ(files.answers, t.channel_answers(4));
}

}  // namespace
}  // namespace det::record
