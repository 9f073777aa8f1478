// det::distributed::launch: options, the ranks' environment, exit statuses and the rank that failed
// first, a hung rank named by its heartbeat. (Whole data-parallel runs through it:
// distributed_context_test.)
#include "det/distributed/launcher.h"

#include <gtest/gtest.h>

#include <chrono>

#include "../core/test_trials.h"
#include "det/util/error.h"
#include "det/util/fs.h"

namespace det {
namespace {
using testing::TempDir;

TEST(Launcher, InvalidOptionsAreUsageErrors) {
  distributed::LaunchOptions o;
  EXPECT_THROW(distributed::launch(o), UsageError);  // no command
  o.command = {"true"};
  o.nproc_per_node = 0;
  EXPECT_THROW(distributed::launch(o), UsageError);
  o.nproc_per_node = 1;
  o.nnodes = 2;
  EXPECT_THROW(distributed::launch(o), UsageError);  // no --master-port with 2 nodes
  o.master_port = 29999;
  o.node_rank = 2;
  EXPECT_THROW(distributed::launch(o), UsageError);
}

TEST(Launcher, ExitStatusAndEnvironmentOfTheRanks) {
  TempDir dir;
  distributed::LaunchOptions o;
  o.nproc_per_node = 3;
  o.command = {"sh", "-c",
               "echo $RANK $WORLD_SIZE $LOCAL_RANK $LOCAL_WORLD_SIZE $GROUP_RANK $MASTER_ADDR > " +
                   (dir.path / "r").string() + "$RANK"};
  auto r = distributed::launch(o);
  EXPECT_EQ(r.exit_code, 0);
  for (int i = 0; i < 3; ++i) {
    std::string line = util::read_file(dir.path / ("r" + std::to_string(i)));
    EXPECT_EQ(line, std::to_string(i) + " 3 " + std::to_string(i) + " 3 0 127.0.0.1\n");
  }
  o.command = {"sh", "-c", "if [ $RANK = 2 ]; then exit 7; fi; exec sleep 30"};
  r = distributed::launch(o);
  EXPECT_EQ(r.exit_code, 7);
  EXPECT_EQ(r.failed_rank, 2);
  EXPECT_NE(r.message.find("rank 2"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("exited with status 7"), std::string::npos) << r.message;
}

// A rank that stops (SIGSTOP) while the others wait: its heartbeat stops, the launcher names it
// within the timeout and kills every rank.
TEST(Launcher, AHungRankIsNamedByItsHeartbeat) {
  distributed::LaunchOptions o;
  o.nproc_per_node = 2;
  o.heartbeat_timeout = std::chrono::milliseconds(2000);
  // Each rank beats its file as a DistributedContext would; rank 1 then stops itself.
  o.command = {"sh", "-c",
               "touch $DET_HEARTBEAT_FILE; if [ $RANK = 1 ]; then kill -STOP $$; fi; "
               "while true; do touch $DET_HEARTBEAT_FILE; sleep 0.2; done"};
  auto start = std::chrono::steady_clock::now();
  auto r = distributed::launch(o);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(r.failed_rank, 1);
  EXPECT_NE(r.message.find("rank 1 (local rank 1"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("is not responding: no heartbeat for 2 s (stopped or hung)"),
            std::string::npos)
      << r.message;
  EXPECT_LT(seconds, 20);
}

}  // namespace
}  // namespace det
