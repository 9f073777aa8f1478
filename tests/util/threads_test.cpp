#include "det/util/threads.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <thread>

#include "det/util/error.h"

namespace det::util {
namespace {

// Sets the variables for one test and puts the old values back afterwards.
class Env {
 public:
  explicit Env(std::map<std::string, const char*> vars) {
    for (const auto& [k, v] : vars) {
      const char* old = std::getenv(k.c_str());
      saved_[k] = old ? std::optional<std::string>(old) : std::nullopt;
      if (v)
        ::setenv(k.c_str(), v, 1);
      else
        ::unsetenv(k.c_str());
    }
  }
  ~Env() {
    for (const auto& [k, v] : saved_) {
      if (v)
        ::setenv(k.c_str(), v->c_str(), 1);
      else
        ::unsetenv(k.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

std::string env(const char* k) {
  const char* v = std::getenv(k);
  return v ? v : "(unset)";
}

TEST(MklReproducibility, AutoUnlessTheUserChose) {
  {
    Env e(std::map<std::string, const char*>{{"MKL_CBWR", nullptr}});
    EXPECT_TRUE(default_mkl_reproducibility());
    EXPECT_EQ(env("MKL_CBWR"), "AUTO");  // for this process's MKL and its children
  }
  {
    Env e(std::map<std::string, const char*>{{"MKL_CBWR", "AVX2,STRICT"}});
    EXPECT_FALSE(default_mkl_reproducibility());
    EXPECT_EQ(env("MKL_CBWR"), "AVX2,STRICT");
  }
  {
    Env e(std::map<std::string, const char*>{{"MKL_CBWR", ""}});  // empty: off, as asked
    EXPECT_FALSE(default_mkl_reproducibility());
    EXPECT_EQ(env("MKL_CBWR"), "");
  }
}

TEST(BlasThreads, OneByDefaultForThisProcessAndItsChildren) {
  Env e({{"OPENBLAS_NUM_THREADS", nullptr},
         {"OMP_NUM_THREADS", nullptr},
         {"DET_BLAS_THREADS", nullptr}});
  EXPECT_EQ(default_blas_threads(), 1);
  EXPECT_EQ(env("OPENBLAS_NUM_THREADS"), "1");
}

TEST(BlasThreads, TheUsersSettingStands) {
  {
    Env e({{"OPENBLAS_NUM_THREADS", "4"},
           {"OMP_NUM_THREADS", nullptr},
           {"DET_BLAS_THREADS", nullptr}});
    EXPECT_EQ(default_blas_threads(), 0);
    EXPECT_EQ(env("OPENBLAS_NUM_THREADS"), "4");
  }
  {
    Env e({{"OPENBLAS_NUM_THREADS", nullptr},
           {"OMP_NUM_THREADS", "2"},
           {"DET_BLAS_THREADS", nullptr}});
    EXPECT_EQ(default_blas_threads(), 0);
    EXPECT_EQ(env("OPENBLAS_NUM_THREADS"), "(unset)");
  }
  {
    Env e({{"OPENBLAS_NUM_THREADS", "4"}, {"DET_BLAS_THREADS", "3"}});
    EXPECT_EQ(default_blas_threads(), 3);  // det's own knob wins
    EXPECT_EQ(env("OPENBLAS_NUM_THREADS"), "3");
  }
  {
    Env e({{"OPENBLAS_NUM_THREADS", nullptr},
           {"OMP_NUM_THREADS", nullptr},
           {"DET_BLAS_THREADS", "0"}});
    EXPECT_EQ(default_blas_threads(), 0);  // off: the library's default
    EXPECT_EQ(env("OPENBLAS_NUM_THREADS"), "(unset)");
  }
}

TEST(IntraOpThreads, EveryUsableCpuSharedAmongTheProcesses) {
  Env e({{"OMP_NUM_THREADS", nullptr}, {"DET_INTRA_OP_THREADS", nullptr}});
  cpu_set_t mine;
  ASSERT_EQ(::sched_getaffinity(0, sizeof(mine), &mine), 0);
  EXPECT_LE(usable_cpus(), CPU_COUNT(&mine));
  EXPECT_GE(usable_cpus(), 1);
  EXPECT_EQ(default_intra_op_threads(1), usable_cpus());
  EXPECT_EQ(default_intra_op_threads(2), std::max(1, usable_cpus() / 2));
  EXPECT_EQ(default_intra_op_threads(1000), 1);
  // The affinity mask counts: a thread held to one CPU may use one.
  std::thread([] {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    ASSERT_EQ(::sched_setaffinity(0, sizeof(one), &one), 0);
    EXPECT_EQ(usable_cpus(), 1);
    EXPECT_EQ(default_intra_op_threads(1), 1);
  }).join();
}

TEST(IntraOpThreads, TheUsersSettingStands) {
  {
    Env e({{"OMP_NUM_THREADS", "3"}, {"DET_INTRA_OP_THREADS", nullptr}});
    EXPECT_EQ(default_intra_op_threads(1), 0);  // LibTorch reads OMP_NUM_THREADS itself
  }
  {
    Env e({{"OMP_NUM_THREADS", "3"}, {"DET_INTRA_OP_THREADS", "5"}});
    EXPECT_EQ(default_intra_op_threads(4), 5);  // det's own knob wins, not divided
  }
  {
    Env e({{"OMP_NUM_THREADS", nullptr}, {"DET_INTRA_OP_THREADS", "0"}});
    EXPECT_EQ(default_intra_op_threads(1), 0);  // off: LibTorch's default
  }
  for (const char* bad : {"two", "-1", "3x", "99999"}) {
    Env e({{"DET_INTRA_OP_THREADS", bad}, {"OMP_NUM_THREADS", nullptr}});
    try {
      default_intra_op_threads(1);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const ConfigError& err) {
      EXPECT_NE(std::string(err.what()).find("DET_INTRA_OP_THREADS='" + std::string(bad) + "'"),
                std::string::npos)
          << err.what();
    }
  }
}

}  // namespace
}  // namespace det::util
