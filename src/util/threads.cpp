#include "det/util/threads.h"

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>

#include "det/util/error.h"

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

bool default_mkl_reproducibility() {
  if (std::getenv("MKL_CBWR")) return false;  // the user's choice stands (MKL_CBWR= empty: off)
  return ::setenv("MKL_CBWR", "AUTO", 0) == 0;
}

int usable_cpus() {
  int n = 0;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (::sched_getaffinity(0, sizeof(set), &set) == 0) n = CPU_COUNT(&set);
  if (n <= 0) n = 1;
  // cgroup v2: "max 100000" (no quota) or "<quota> <period>" in microseconds.
  std::ifstream f("/sys/fs/cgroup/cpu.max");
  std::string quota;
  long long period = 0;
  if (f >> quota >> period && quota != "max" && period > 0) {
    char* end = nullptr;
    const long long q = std::strtoll(quota.c_str(), &end, 10);
    if (end && *end == '\0' && q > 0)
      n = std::min(n, std::max(1, static_cast<int>(std::ceil(static_cast<double>(q) / period))));
  }
  return n;
}

int default_intra_op_threads(int sharers) {
  if (const char* det = std::getenv("DET_INTRA_OP_THREADS"); det && *det) {
    char* end = nullptr;
    const long v = std::strtol(det, &end, 10);
    if (!end || *end != '\0' || v < 0 || v > 4096)
      throw ConfigError(std::string("DET_INTRA_OP_THREADS='") + det +
                        "' is not a thread count: set a number from 1 to 4096, or 0 for "
                        "LibTorch's own default");
    return static_cast<int>(v);
  }
  if (std::getenv("OMP_NUM_THREADS")) return 0;  // the user's choice stands
  return std::max(1, usable_cpus() / std::max(1, sharers));
}

}  // namespace det::util
