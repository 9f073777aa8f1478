// det-launch: starts the ranks of a data-parallel trial on this node (see det::dist::launch).
#include "det/dist/launcher.h"

int main(int argc, char** argv) { return det::dist::launch_main(argc, argv); }
