#include "det/util/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace det::util {

bool tune_allocator() {
  const char* env = std::getenv("DET_MALLOC_TUNING");
  if (env && std::strcmp(env, "0") == 0) return false;
#ifdef M_MMAP_THRESHOLD
  bool ok = mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
  ok = mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 && ok;
  return ok;
#else
  return false;
#endif
}

}  // namespace det::util
