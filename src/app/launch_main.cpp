// det-launch's command line (the launcher itself is det::distributed::launch).
#include "launch_main.h"

#include <CLI/CLI.hpp>

#include <cstdio>

#include "det/distributed/launcher.h"
#include "det/util/error.h"

namespace det::app {

int launch_main(int argc, char** argv) {
  CLI::App app{
      "det-launch: start the ranks of a data-parallel trial on this node (torchrun's environment)"};
  app.set_version_flag("--version", "det 0.1.0");
  distributed::LaunchOptions o;
  double grace = 5;
  double heartbeat = 60;
  try {
    heartbeat = static_cast<double>(distributed::heartbeat_timeout_from_env().count()) / 1000.0;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "det-launch: %s\n", e.what());
    return 2;
  }
  app.add_option("--nproc-per-node,--nproc_per_node", o.nproc_per_node, "ranks on this node")
      ->capture_default_str();
  app.add_option("--nnodes", o.nnodes, "number of nodes")->capture_default_str();
  app.add_option("--node-rank,--node_rank", o.node_rank, "this node's index in [0, nnodes)")
      ->capture_default_str();
  app.add_option("--master-addr,--master_addr", o.master_addr,
                 "address of node 0 (rank 0 serves the rendezvous store there)")
      ->capture_default_str();
  app.add_option("--master-port,--master_port", o.master_port,
                 "rendezvous port (default: a free port; required with --nnodes > 1)");
  app.add_option("--kill-grace", grace,
                 "seconds between SIGTERM and SIGKILL for the other ranks when one fails")
      ->capture_default_str();
  app.add_option("--heartbeat-timeout", heartbeat,
                 "seconds without a rank's heartbeat before it is named as stopped or hung and "
                 "every rank is killed "
                 "(0: off; default DET_HEARTBEAT_TIMEOUT, else 60)")
      ->capture_default_str();
  app.prefix_command();
  app.footer("Example: det-launch --nproc-per-node 2 -- det-run configs/mnist/distributed.yaml");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  o.command = app.remaining();
  if (!o.command.empty() && o.command.front() == "--") o.command.erase(o.command.begin());
  o.kill_grace = std::chrono::milliseconds(static_cast<int64_t>(grace * 1000));
  o.heartbeat_timeout = std::chrono::milliseconds(static_cast<int64_t>(heartbeat * 1000));
  try {
    return distributed::launch(o).exit_code;
  } catch (const UsageError& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "det-launch: error: %s\n", e.what());
    return 1;
  }
}

}  // namespace det::app
