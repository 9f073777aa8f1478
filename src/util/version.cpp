#include "det/util/version.h"

namespace det::util {

const char* version() { return DET_VERSION; }

}  // namespace det::util
