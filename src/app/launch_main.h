#pragma once
// Internal to the app layer: the det-launch command line.

namespace det::app {

/// `det-launch --nproc-per-node N [--nnodes M --node-rank R --master-addr A --master-port P]
/// -- COMMAND ...`. Returns the exit code.
int launch_main(int argc, char** argv);

}  // namespace det::app
