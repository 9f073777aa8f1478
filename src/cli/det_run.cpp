// det-run: the command line over the linked-in trials (see det::main).
#include "det/main.h"

int main(int argc, char** argv) { return det::main(argc, argv); }
