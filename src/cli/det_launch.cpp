// det-launch: starts the ranks of a data-parallel trial on this node (see
// det::distributed::launch).
#include "app/launch_main.h"

int main(int argc, char** argv) { return det::app::launch_main(argc, argv); }
