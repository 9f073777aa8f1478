#include "det/util/threads.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <optional>
#include <string>

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

}  // namespace
}  // namespace det::util
