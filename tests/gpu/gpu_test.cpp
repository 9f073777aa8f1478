// Tests that need a CUDA GPU (label `gpu`). Each skips, naming why, on a machine without one;
// scripts/gpu/check.sh runs them on the GPU host.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>

#include "../core/test_trials.h"
#include "det/core/amp.h"
#include "det/core/controller.h"
#include "det/data/loader.h"
#include "det/distributed/distributed_context.h"
#include "det/util/fs.h"
#include "det/util/process.h"

namespace det {
namespace {
using json = nlohmann::json;
namespace fs = std::filesystem;

#define DET_REQUIRE_GPU(n)                                                                         \
  do {                                                                                             \
    if (!torch::cuda::is_available())                                                              \
      GTEST_SKIP() << "no CUDA GPU visible (this LibTorch: " TORCH_VERSION ")";                    \
    if (static_cast<int>(torch::cuda::device_count()) < (n))                                       \
      GTEST_SKIP() << "needs " << (n) << " GPU(s), " << torch::cuda::device_count() << " visible"; \
  } while (0)

int free_port() { return 29000 + static_cast<int>(::getpid() % 2000); }

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

TEST(GpuTest, NcclOneRankAllreduceAndBroadcast) {
  DET_REQUIRE_GPU(1);
  distributed::LaunchEnvironment env;
  env.master_port = free_port();
  auto ctx = distributed::make_process_group_context(
      env, distributed::DistributedOptions().backend("nccl"));
  EXPECT_EQ(ctx->backend(), "nccl");
  auto t = torch::arange(6, torch::TensorOptions().device(torch::kCUDA).dtype(torch::kFloat));
  ctx->allreduce(t, distributed::ReduceOp::kSum);
  EXPECT_TRUE(torch::equal(t.cpu(), torch::arange(6, torch::kFloat)));
  ctx->broadcast(t, 0);
  ctx->barrier();
}

// One rank of GlooOnCudaTwoRanks, started by it as a child process.
TEST(GpuWorker, GlooRank) {
  const char* rank = std::getenv("DET_GPU_TEST_RANK");
  if (!rank) GTEST_SKIP() << "only run as a rank of GpuTest.GlooOnCudaTwoRanks";
  distributed::LaunchEnvironment env;
  env.rank = std::atoi(rank);
  env.size = 2;
  env.local_rank = env.rank;
  env.local_size = 2;
  env.master_port = std::atoi(std::getenv("DET_GPU_TEST_PORT"));
  auto ctx = distributed::make_process_group_context(
      env, distributed::DistributedOptions().backend("gloo"));
  const int device = torch::cuda::device_count() > 1 ? env.rank : 0;
  auto t = torch::full({4}, static_cast<float>(env.rank + 1),
                       torch::TensorOptions().device(torch::Device(torch::kCUDA, device)));
  ctx->allreduce(t, distributed::ReduceOp::kSum);
  ASSERT_TRUE(torch::equal(t.cpu(), torch::full({4}, 3.0f)));
  ctx->barrier();
}

TEST(GpuTest, GlooOnCudaTwoRanks) {
  DET_REQUIRE_GPU(1);
  const int port = free_port() + 1;
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; ++r) {
    util::SpawnOptions o;
    o.argv = {self_exe(), "--gtest_filter=GpuWorker.GlooRank"};
    o.env = util::environment({}, {"DET_GPU_TEST_RANK=" + std::to_string(r),
                                   "DET_GPU_TEST_PORT=" + std::to_string(port)});
    pids.push_back(util::spawn(o));
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "rank exited with " << status;
  }
}

torch::Tensor tensor_of(const json& v) {
  if (!v.is_array() || v.empty() || !v[0].is_array()) {
    std::vector<float> f = v.get<std::vector<float>>();
    return torch::tensor(f);
  }
  std::vector<float> f;
  for (const auto& row : v)
    for (const auto& x : row) f.push_back(x.get<float>());
  return torch::tensor(f).reshape({static_cast<int64_t>(v.size()), -1});
}

// det's Autocast + GradScaler against PyTorch's torch.autocast + GradScaler from the same
// LibTorch line (tests/gpu/amp_reference.py run by this test): same weights, data and AdamW.
void amp_matches_pytorch(const std::string& precision) {
  DET_REQUIRE_GPU(1);
  const char* py = std::getenv("DET_PYTHON");
  const std::string python = py ? py : "python3";
  testing::TempDir tmp;
  const fs::path out = tmp.path / "reference.json";
  util::SpawnOptions o;
  o.argv = {python, std::string(DET_SOURCE_DIR) + "/tests/gpu/amp_reference.py", precision,
            out.string()};
  auto status = util::run(o, std::chrono::minutes(3));
  if (!status || !WIFEXITED(*status) || WEXITSTATUS(*status) != 0 || !fs::exists(out))
    GTEST_SKIP() << python << " with a CUDA PyTorch is needed for the reference (set DET_PYTHON)";
  const json ref = json::parse(util::read_file(out));
  const torch::Device dev(torch::kCUDA);
  torch::nn::Sequential model(torch::nn::Linear(32, 64), torch::nn::GELU(),
                              torch::nn::Linear(64, 8));
  model->to(dev);
  {
    torch::NoGradGuard g;
    auto params = model->parameters();
    const char* names[] = {"w1", "b1", "w2", "b2"};
    for (size_t i = 0; i < 4; ++i) params[i].copy_(tensor_of(ref["init"][names[i]]).to(dev));
  }
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(1e-2).weight_decay(0.01));
  GradScalerOptions so;
  so.init_scale = 4096;
  so.growth_interval = 4;
  so.enabled = precision == "fp16";
  GradScaler scaler(so);
  const Precision p = parse_precision(precision);
  auto x = tensor_of(ref["init"]["x"]).to(dev), y = tensor_of(ref["init"]["y"]).to(dev);
  for (size_t i = 0; i < ref["steps"].size(); ++i) {
    SCOPED_TRACE(precision + " step " + std::to_string(i));
    opt.zero_grad();
    torch::Tensor out_, loss;
    {
      Autocast ac(dev, p);
      out_ = model->forward(x);
      loss = torch::mse_loss(out_.to(torch::kFloat), y);
    }
    scaler.scale(loss).backward();
    if (i == 5) {
      torch::NoGradGuard g;
      model->parameters()[0].mutable_grad()[0][0] = std::numeric_limits<float>::infinity();
    }
    scaler.step(opt);
    scaler.update();
    const auto& want = ref["steps"][i];
    EXPECT_EQ(std::string(precision == "fp16" ? "torch.float16" : "torch.bfloat16"),
              want["out_dtype"].get<std::string>());
    EXPECT_EQ(out_.scalar_type(), precision == "fp16" ? torch::kHalf : torch::kBFloat16);
    EXPECT_NEAR(loss.item<double>(), want["loss"].get<double>(),
                2e-3 * std::abs(want["loss"].get<double>()) + 1e-4);
    EXPECT_EQ(scaler.get_scale(), want["scale"].get<double>());
  }
  auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    auto want = torch::tensor(ref["final"][i].get<std::vector<float>>());
    EXPECT_TRUE(torch::allclose(params[i].detach().cpu().flatten(), want, 1e-2, 1e-3))
        << "parameter " << i;
  }
}

TEST(GpuTest, Fp16AutocastAndGradScalerMatchPyTorch) { amp_matches_pytorch("fp16"); }
TEST(GpuTest, Bf16AutocastMatchesPyTorch) { amp_matches_pytorch("bf16"); }

TEST(GpuTest, PinnedBatchesCopyNonBlockingToTheDevice) {
  DET_REQUIRE_GPU(1);
  auto x = torch::randn({64, 3, 8, 8}), y = torch::randint(0, 10, {64});
  data::DataLoader loader(std::make_shared<data::TensorDataset>(x, y),
                          data::DataLoaderOptions().batch_size(16).num_workers(2).pin_memory(true));
  int64_t seen = 0;
  for (auto& b : loader) {
    EXPECT_TRUE(b.data.is_pinned());
    auto d = b.to(torch::Device(torch::kCUDA), /*non_blocking=*/true);
    EXPECT_TRUE(d.data.is_cuda());
    EXPECT_TRUE(torch::equal(d.data.cpu(), x.narrow(0, seen, b.size())));
    seen += b.size();
  }
  EXPECT_EQ(seen, 64);
}

using testing::NoisyTrial;
DET_REGISTER_TRIAL(NoisyTrial, "noisy");

// optimizations.mixed_precision: fp16 through the harness: autocast, the harness's scaler in
// the checkpoint, peak memory in the reports, and a resume that ends where a straight run does.
TEST(GpuTest, Fp16HarnessRunResumesExactly) {
  DET_REQUIRE_GPU(1);
  const std::string extra =
      "scheduling_unit: 4\nmin_validation_period: {batches: 8}\nmin_checkpoint_period: {batches: "
      "8}\n"
      "checkpoint_storage: {host_path: /unused, save_trial_latest: 5, save_trial_best: 0}\n"
      "optimizations: {mixed_precision: fp16, cudnn_benchmark: true}\n";
  auto cfg = testing::make_config("noisy", extra, 24);
  testing::TempDir a_dir, b_dir;
  auto a = testing::run_trial(cfg, a_dir.path);
  ASSERT_GE(a.checkpoints.size(), 2u);
  auto meta = json::parse(util::read_file(a.checkpoints.back().path / "metadata.json"));
  ASSERT_TRUE(meta.contains("grad_scaler"));
  EXPECT_GT(meta["grad_scaler"]["scale"].get<double>(),
            0);  // early steps may overflow and back off
  EXPECT_LE(meta["grad_scaler"]["_growth_tracker"].get<int64_t>(), 24);
  auto reports = testing::read_reports(a_dir.path, "training");
  ASSERT_FALSE(reports.empty());
  EXPECT_GT(reports.back()["throughput"]["peak_memory_bytes"].get<int64_t>(), 0);
  TrialRunOptions resume;
  resume.resume_from = a.checkpoints[0].path;
  auto b = testing::run_trial(cfg, b_dir.path, resume);
  auto va = testing::read_reports(a_dir.path, "validation"),
       vb = testing::read_reports(b_dir.path, "validation");
  ASSERT_FALSE(vb.empty());
  EXPECT_EQ(va.back()["metrics"], vb.back()["metrics"]);
}

}  // namespace
}  // namespace det
