#include "det/util/threads.h"

#include <dlfcn.h>

#include <cstdlib>
#include <string>

namespace det::util {

int default_blas_threads() {
  int n = 1;
  if (const char* det = std::getenv("DET_BLAS_THREADS")) {
    n = std::atoi(det);
    if (n <= 0) return 0;  // DET_BLAS_THREADS=0: the BLAS library's own default
  } else if (std::getenv("OPENBLAS_NUM_THREADS") || std::getenv("OMP_NUM_THREADS")) {
    return 0;  // the user's choice stands
  }
  const std::string v = std::to_string(n);
  ::setenv("OPENBLAS_NUM_THREADS", v.c_str(), 1);  // for the workers this process starts
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(n);
  return n;
}

}  // namespace det::util
