// Data-parallel training over real c10d process groups (Gloo over loopback TCPStore) in real
// processes: this test binary re-runs itself as the ranks (DistWorker.Run) through the launcher.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <torch/version.h>

#include "../core/test_trials.h"
#include "det/core/controller.h"
#include "det/core/registry.h"
#include "det/distributed/distributed_context.h"
#include "det/distributed/gradient_sync.h"
#include "det/distributed/launcher.h"
#include "det/util/error.h"
#include "det/util/fs.h"

namespace det {
namespace {
namespace fs = std::filesystem;
using testing::read_reports;
using testing::TempDir;

// ---- the trial the ranks train ----

/// An MLP on fixed random data, SGD with momentum, gradient clipping that is active (so it must
/// see the averaged gradients), and ranks that start from different weights (so the initial
/// broadcast matters). Failure injection through DET_TEST_FAIL_{RANK,AT,HOW}. Validated by
/// either evaluate method (the two trials below), never both.
class DataParallelBase : public Trial {
 public:
  explicit DataParallelBase(TrialContext& ctx) : Trial(ctx) {
    model_ = ctx.wrap_model(torch::nn::Sequential(torch::nn::Linear(8, 16), torch::nn::Tanh(),
                                                  torch::nn::Linear(16, 1)));
    if (ctx.rank() != 0) {
      torch::NoGradGuard g;
      for (auto& p : model_->parameters()) p.add_(static_cast<double>(ctx.rank()));
    }
    opt_ = ctx.wrap_optimizer(std::make_shared<torch::optim::SGD>(
        model_->parameters(), torch::optim::SGDOptions(0.05).momentum(0.9)));
  }
  std::shared_ptr<data::DataLoader> build_training_data_loader() override {
    return loader(96, 3, true);
  }
  std::shared_ptr<data::DataLoader> build_validation_data_loader() override {
    return loader(32, 4, false);
  }
  Metrics train_batch(data::Batch& b, int64_t, int64_t batch_idx) override {
    maybe_fail(batch_idx);
    auto loss = torch::mse_loss(model_->forward(b.data), b.target);
    context_.backward(loss);
    context_.step_optimizer(*opt_, [](const std::vector<torch::Tensor>& params) {
      torch::nn::utils::clip_grad_norm_(params, 0.5);
    });
    return {{"loss", loss}};
  }

 protected:
  void maybe_fail(int64_t batch_idx) {
    const char* rank = std::getenv("DET_TEST_FAIL_RANK");
    if (!rank || std::atoi(rank) != context_.rank()) return;
    if (batch_idx != std::atoi(std::getenv("DET_TEST_FAIL_AT"))) return;
    std::string how = std::getenv("DET_TEST_FAIL_HOW");
    if (how == "kill") ::raise(SIGKILL);
    throw Error("injected failure at batch " + std::to_string(batch_idx));
  }
  std::shared_ptr<data::DataLoader> loader(int64_t n, uint64_t data_seed, bool shuffle) {
    auto gen = at::detail::createCPUGenerator(data_seed);
    auto x = torch::randn({n, 8}, gen);
    auto y = torch::sin(x.sum(1, true)) + 0.1 * torch::randn({n, 1}, gen);
    return std::make_shared<data::DataLoader>(std::make_shared<data::TensorDataset>(x, y),
                                              data::DataLoaderOptions()
                                                  .batch_size(context_.per_slot_batch_size())
                                                  .shuffle(shuffle)
                                                  .seed(context_.trial_seed()));
  }
  torch::nn::Sequential model_{nullptr};
  std::shared_ptr<torch::optim::SGD> opt_;
};

/// Validated by evaluate_batch (every rank, over its shard).
class DataParallelTrial : public DataParallelBase {
 public:
  using DataParallelBase::DataParallelBase;
  Metrics evaluate_batch(data::Batch& b, int64_t) override {
    return {{"validation_loss", torch::mse_loss(model_->forward(b.data), b.target)}};
  }
};
DET_REGISTER_TRIAL(DataParallelTrial, "data_parallel");

/// Validated by evaluate_full_dataset (the chief alone, over the whole set).
class FullDatasetTrial : public DataParallelBase {
 public:
  using DataParallelBase::DataParallelBase;
  Metrics evaluate_full_dataset(data::DataLoader& loader) override {
    torch::Tensor sum = torch::zeros({}, torch::kDouble);
    int64_t n = 0;
    for (auto& b : loader) {
      auto& model = context_.models().front();
      auto out = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(model)->forward(b.data);
      sum += torch::mse_loss(out, b.target, torch::Reduction::Sum).to(torch::kDouble);
      n += b.size();
    }
    return {{"validation_loss", sum / static_cast<double>(n)},
            {"examples", torch::tensor(static_cast<double>(n))}};
  }
};
DET_REGISTER_TRIAL(FullDatasetTrial, "data_parallel_full");

config::ExperimentConfig dp_config(int64_t gbs, int agg, int64_t batches, int slots,
                                   const std::string& entrypoint = "data_parallel") {
  std::string yaml =
      "name: dp\nentrypoint: " + entrypoint +
      "\nhyperparameters:\n  global_batch_size: " + std::to_string(gbs) +
      "\nsearcher:\n  name: single\n  metric: validation_loss\n  max_length:\n    batches: " +
      std::to_string(batches) + "\nscheduling_unit: 3\nmin_validation_period: {batches: 6}\n" +
      "optimizations:\n  aggregation_frequency: " + std::to_string(agg) +
      "\nresources:\n  slots_per_trial: " + std::to_string(slots) + "\n";
  return config::parse_experiment_config(yaml, "dp.yaml");
}

TrialRunOptions dp_options(const fs::path& dir, int64_t gbs) {
  TrialRunOptions o;
  o.trial_dir = dir;
  o.trial_seed = 23;
  o.hparams = {{"global_batch_size", gbs}};
  o.show_progress = false;
  o.listener = testing::metrics_file(dir);
  return o;
}

std::vector<torch::Tensor> weights(TrialContext& ctx) {
  std::vector<torch::Tensor> w;
  for (auto& m : ctx.models())
    for (auto& p : m->parameters()) w.push_back(p.detach().clone());
  return w;
}

// ---- the worker: one rank, started by the tests below through the launcher ----

std::string self_exe() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return std::string(buf, n > 0 ? static_cast<size_t>(n) : 0);
}

std::vector<std::string> worker_command() { return {self_exe(), "--gtest_filter=DistWorker.Run"}; }

// DET_TEST_DIST_SPEC: {"mode": "collectives"|"train", "gbs", "agg", "batches", "dir", "out"}.
TEST(DistWorker, Run) {
  const char* spec_env = std::getenv("DET_TEST_DIST_SPEC");
  if (!spec_env) GTEST_SKIP() << "only run as a rank of the distributed tests";
  auto spec = nlohmann::json::parse(spec_env);
  auto ctx = distributed::make_context_from_env();
  const int rank = ctx->rank(), size = ctx->size();
  if (spec["mode"] == "collectives") {
    ASSERT_EQ(ctx->backend(), "gloo");
    torch::Tensor t = torch::full({3}, static_cast<float>(rank + 1));
    ctx->allreduce(t, distributed::ReduceOp::kSum);
    EXPECT_TRUE(torch::equal(t, torch::full({3}, static_cast<float>(size * (size + 1) / 2))));
    t = torch::full({2}, static_cast<double>(rank));
    ctx->allreduce(t, distributed::ReduceOp::kAvg);
    EXPECT_DOUBLE_EQ(t[0].item<double>(), (size - 1) / 2.0);
    t = torch::full({1}, static_cast<float>(rank));
    ctx->allreduce(t, distributed::ReduceOp::kMax);
    EXPECT_EQ(t.item<float>(), static_cast<float>(size - 1));
    auto all = ctx->allgather(torch::full({2}, static_cast<int64_t>(10 * rank)));
    ASSERT_EQ(static_cast<int>(all.size()), size);
    for (int r = 0; r < size; ++r)
      EXPECT_EQ(all[static_cast<size_t>(r)][1].item<int64_t>(), 10 * r);
    torch::Tensor b = torch::full({4}, static_cast<float>(rank + 7));
    ctx->broadcast(b, 0);
    EXPECT_TRUE(torch::equal(b, torch::full({4}, 7.0f)));
    // JSON of different lengths per rank.
    auto objs = ctx->allgather(
        nlohmann::json{{"rank", rank}, {"pad", std::string(static_cast<size_t>(rank * 5), 'x')}});
    ASSERT_EQ(static_cast<int>(objs.size()), size);
    for (int r = 0; r < size; ++r) EXPECT_EQ(objs[static_cast<size_t>(r)]["rank"], r);
    auto chief = ctx->broadcast(rank == 0 ? nlohmann::json{{"from", "chief"}, {"v", {1, 2, 3}}}
                                          : nlohmann::json("other"));
    EXPECT_EQ(chief["from"], "chief");
    ctx->barrier();
    return;
  }
  auto cfg = dp_config(spec["gbs"], spec["agg"], spec["batches"], size,
                       spec.value("entrypoint", "data_parallel"));
  auto opt = dp_options(spec["dir"].get<std::string>(), spec["gbs"].get<int64_t>());
  opt.distributed = ctx;
  if (spec.contains("resume")) opt.resume_from = spec["resume"].get<std::string>();
  TrialController c(cfg, TrialRegistry::instance().find(cfg.entrypoint), opt);
  try {
    c.run();
  } catch (const std::exception& e) {
    distributed::record_failure(e);  // as det::main does
    throw;
  }
  const std::string out = spec["out"].get<std::string>() + ".rank" + std::to_string(rank);
  torch::save(weights(c.context()), out + ".pt");
  const auto* sync = c.gradient_sync();
  if (size == 1) {  // one rank synchronizes nothing
    EXPECT_EQ(sync, nullptr);
    return;
  }
  ASSERT_NE(sync, nullptr);
  auto st = sync->stats();
  util::write_file_atomic(out + ".json",
                          nlohmann::json{{"reductions", st.reductions},
                                         {"buckets", sync->num_buckets()},
                                         {"buckets_in_backward", st.buckets_in_backward},
                                         {"buckets_at_finish", st.buckets_at_finish}}
                              .dump());
}

// ---- the tests ----

struct EnvVar {
  std::string name;
  EnvVar(std::string n, const std::string& value) : name(std::move(n)) {
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~EnvVar() { ::unsetenv(name.c_str()); }
};

distributed::LaunchResult run_ranks(int n, const nlohmann::json& spec) {
  EnvVar e("DET_TEST_DIST_SPEC", spec.dump());
  distributed::LaunchOptions o;
  o.nproc_per_node = n;
  o.command = worker_command();
  return distributed::launch(o);
}

std::vector<torch::Tensor> load_weights(const std::string& path) {
  std::vector<torch::Tensor> w;
  torch::load(w, path);
  return w;
}

void expect_close(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b,
                  double tol, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    double diff = (a[i] - b[i]).abs().max().item<double>();
    EXPECT_LE(diff, tol) << what << ": parameter " << i << " differs by " << diff;
  }
}

TEST(CollectivesDistTest, GlooAllreduceAllgatherBroadcastBarrierOnTwoRanks) {
  auto r = run_ranks(2, {{"mode", "collectives"}});
  EXPECT_EQ(r.exit_code, 0) << r.message;
}

// 2 ranks with per-slot batch B against 1 rank with batch 2B over the same examples in the same
// order: the same weights (to float rounding) and the same reported metrics, written once.
void two_ranks_equal_one(int agg) {
  const int64_t gbs = 16, batches = 12;
  TempDir one, two;
  auto cfg = dp_config(gbs, agg, batches, 1);
  TrialController ref(cfg, TrialRegistry::instance().find(cfg.entrypoint),
                      dp_options(one.path, gbs));
  ref.run();
  auto w1 = weights(ref.context());

  auto out = (two.path / "w").string();
  // With aggregation, also one bucket per parameter: buckets launched in order as they fill.
  std::optional<EnvVar> buckets;
  if (agg > 1) buckets.emplace("DET_BUCKET_MB", "0");
  auto r = run_ranks(2, {{"mode", "train"},
                         {"gbs", gbs},
                         {"agg", agg},
                         {"batches", batches},
                         {"dir", (two.path / "trial").string()},
                         {"out", out}});
  ASSERT_EQ(r.exit_code, 0) << r.message;
  auto w2r0 = load_weights(out + ".rank0.pt"), w2r1 = load_weights(out + ".rank1.pt");
  // One allreduce per optimizer step, none on accumulation-only batches, every bucket launched
  // from the hooks during backward.
  for (int rank = 0; rank < 2; ++rank) {
    auto st =
        nlohmann::json::parse(util::read_file(out + ".rank" + std::to_string(rank) + ".json"));
    EXPECT_EQ(st["reductions"].get<int64_t>(), batches / agg) << "rank " << rank;
    EXPECT_EQ(st["buckets_in_backward"].get<int64_t>(),
              (batches / agg) * st["buckets"].get<int64_t>())
        << "rank " << rank;
    EXPECT_EQ(st["buckets_at_finish"].get<int64_t>(), 0) << "rank " << rank;
    EXPECT_EQ(st["buckets"].get<int64_t>(), agg > 1 ? 4 : 1) << "rank " << rank;
  }
  expect_close(w2r0, w2r1, 0.0, "rank 0 vs rank 1");
  expect_close(w1, w2r0, 1e-5, "1 rank batch 2B vs 2 ranks batch B");
  auto t1 = read_reports(one.path, "training"), t2 = read_reports(two.path / "trial", "training");
  ASSERT_EQ(t1.size(), t2.size()) << "the chief alone writes metrics.jsonl";
  ASSERT_GE(t1.size(), 2u);
  // Training did move the weights: a test that could not tell would be no test.
  EXPECT_LT(t1.back()["metrics"]["loss"].get<double>(),
            t1.front()["metrics"]["loss"].get<double>());
  for (size_t i = 0; i < t1.size(); ++i) {
    EXPECT_EQ(t1[i]["batches"], t2[i]["batches"]);
    EXPECT_NEAR(t1[i]["metrics"]["loss"].get<double>(), t2[i]["metrics"]["loss"].get<double>(),
                1e-5)
        << "report " << i;
    EXPECT_EQ(t2[i]["ranks"], 2);
  }
  auto v1 = read_reports(one.path, "validation"),
       v2 = read_reports(two.path / "trial", "validation");
  ASSERT_EQ(v1.size(), v2.size());
  ASSERT_FALSE(v1.empty());
  for (size_t i = 0; i < v1.size(); ++i)
    EXPECT_NEAR(v1[i]["metrics"]["validation_loss"].get<double>(),
                v2[i]["metrics"]["validation_loss"].get<double>(), 1e-5);
  // One checkpoint directory per checkpoint (rank 1 wrote none).
  EXPECT_EQ(
      std::distance(fs::directory_iterator(one.path / "checkpoints"), fs::directory_iterator()),
      std::distance(fs::directory_iterator(two.path / "trial" / "checkpoints"),
                    fs::directory_iterator()));
}

TEST(DataParallelDistTest, TwoRanksBatchBEqualOneRankBatch2B) { two_ranks_equal_one(1); }

TEST(DataParallelDistTest, TwoRanksEqualOneRankWithAggregationFrequencyTwo) {
  two_ranks_equal_one(2);
}

TEST(DataParallelDistTest, TwoRanksResumeFromTheChiefsCheckpoint) {
  const int64_t gbs = 16;
  TempDir straight, resumed;
  auto out_a = (straight.path / "w").string(), out_b = (resumed.path / "w").string();
  auto a = run_ranks(2, {{"mode", "train"},
                         {"gbs", gbs},
                         {"agg", 1},
                         {"batches", 12},
                         {"dir", (straight.path / "trial").string()},
                         {"out", out_a}});
  ASSERT_EQ(a.exit_code, 0) << a.message;
  auto b1 = run_ranks(2, {{"mode", "train"},
                          {"gbs", gbs},
                          {"agg", 1},
                          {"batches", 6},
                          {"dir", (resumed.path / "trial").string()},
                          {"out", out_b}});
  ASSERT_EQ(b1.exit_code, 0) << b1.message;
  fs::path ckpt;
  for (const auto& e : fs::directory_iterator(resumed.path / "trial" / "checkpoints"))
    ckpt = e.path();
  ASSERT_FALSE(ckpt.empty());
  auto b2 = run_ranks(2, {{"mode", "train"},
                          {"gbs", gbs},
                          {"agg", 1},
                          {"batches", 12},
                          {"dir", (resumed.path / "trial").string()},
                          {"out", out_b},
                          {"resume", ckpt.string()}});
  ASSERT_EQ(b2.exit_code, 0) << b2.message;
  expect_close(load_weights(out_a + ".rank0.pt"), load_weights(out_b + ".rank0.pt"), 0.0,
               "straight vs resumed, rank 0");
  expect_close(load_weights(out_a + ".rank1.pt"), load_weights(out_b + ".rank1.pt"), 0.0,
               "straight vs resumed, rank 1");
}

// A checkpoint written at one world size resumes at another (Slurm requeues a job on fewer nodes,
// a user changes slots_per_trial): the global batch, the data position and the optimizer state
// carry over, so the resumed run equals a straight run at the first size to float rounding (the
// gradient of a global batch is averaged in another order), not bit for bit.
TEST(DataParallelDistTest, ACheckpointResumesAtAnotherWorldSize) {
  const int64_t gbs = 16;
  auto spec = [&](const fs::path& dir, int64_t batches, const std::string& out) {
    return nlohmann::json{{"mode", "train"},    {"gbs", gbs},          {"agg", 1},
                          {"batches", batches}, {"dir", dir.string()}, {"out", out}};
  };
  auto last_checkpoint = [](const fs::path& trial) {
    fs::path ckpt;
    for (const auto& e : fs::directory_iterator(trial / "checkpoints")) ckpt = e.path();
    return ckpt;
  };
  for (const auto& [first, then] : {std::pair{2, 1}, std::pair{1, 2}}) {
    const std::string what = std::to_string(first) + " rank(s) resumed on " + std::to_string(then);
    TempDir straight, resumed;
    const auto out_a = (straight.path / "w").string(), out_b = (resumed.path / "w").string();
    auto a = run_ranks(first, spec(straight.path / "trial", 12, out_a));
    ASSERT_EQ(a.exit_code, 0) << what << ": " << a.message;
    auto b1 = run_ranks(first, spec(resumed.path / "trial", 6, out_b));
    ASSERT_EQ(b1.exit_code, 0) << what << ": " << b1.message;
    const fs::path ckpt = last_checkpoint(resumed.path / "trial");
    ASSERT_FALSE(ckpt.empty()) << what;
    const auto w6 = load_weights(out_b + ".rank0.pt");  // at the checkpoint
    auto resume = spec(resumed.path / "trial", 12, out_b);
    resume["resume"] = ckpt.string();
    auto b2 = run_ranks(then, resume);
    ASSERT_EQ(b2.exit_code, 0) << what << ": " << b2.message;
    const auto wa = load_weights(out_a + ".rank0.pt"), wb = load_weights(out_b + ".rank0.pt");
    expect_close(wa, wb, 1e-5, what);
    // Not the same by accident: 6 more batches did move the weights.
    ASSERT_EQ(w6.size(), wb.size());
    double moved = 0;
    for (size_t i = 0; i < wb.size(); ++i)
      moved = std::max(moved, (wb[i] - w6[i]).abs().max().item<double>());
    EXPECT_GT(moved, 1e-3) << what;
    // The resumed reports continue at batch 7 with the straight run's losses.
    auto ta = read_reports(straight.path / "trial", "training"),
         tb = read_reports(resumed.path / "trial", "training");
    ASSERT_EQ(ta.size(), tb.size()) << what;
    for (size_t i = 0; i < ta.size(); ++i) {
      EXPECT_EQ(ta[i]["batches"], tb[i]["batches"]) << what;
      EXPECT_NEAR(ta[i]["metrics"]["loss"].get<double>(), tb[i]["metrics"]["loss"].get<double>(),
                  1e-5)
          << what << ", report " << i;
    }
    EXPECT_EQ(tb.back()["ranks"], then) << what;
  }
}

// Spec 1.3 and Determined issue #9916: evaluate_full_dataset runs on the chief over the whole
// (unsharded) validation set; every rank gets its metrics.
TEST(DataParallelDistTest, EvaluateFullDatasetRunsOnTheChiefOverEverything) {
  TempDir one, two;
  auto cfg = dp_config(16, 1, 6, 1, "data_parallel_full");
  TrialController ref(cfg, TrialRegistry::instance().find(cfg.entrypoint),
                      dp_options(one.path, 16));
  ref.run();
  auto r = run_ranks(2, {{"mode", "train"},
                         {"gbs", 16},
                         {"agg", 1},
                         {"batches", 6},
                         {"entrypoint", "data_parallel_full"},
                         {"dir", (two.path / "trial").string()},
                         {"out", (two.path / "w").string()}});
  ASSERT_EQ(r.exit_code, 0) << r.message;
  auto v1 = read_reports(one.path, "validation"),
       v2 = read_reports(two.path / "trial", "validation");
  ASSERT_EQ(v1.size(), 1u);
  ASSERT_EQ(v2.size(), 1u);
  EXPECT_EQ(v2[0]["metrics"]["examples"].get<double>(), 32.0);
  EXPECT_NEAR(v1[0]["metrics"]["validation_loss"].get<double>(),
              v2[0]["metrics"]["validation_loss"].get<double>(), 1e-5);
}

void a_failing_rank_stops_the_others(const std::string& how) {
  TempDir dir;
  EnvVar r("DET_TEST_FAIL_RANK", "1"), at("DET_TEST_FAIL_AT", "3"), h("DET_TEST_FAIL_HOW", how);
  // Long enough that rank 0 would still be training when rank 1 fails.
  auto res = run_ranks(2, {{"mode", "train"},
                           {"gbs", 16},
                           {"agg", 1},
                           {"batches", 100000},
                           {"dir", (dir.path / "trial").string()},
                           {"out", (dir.path / "w").string()}});
  EXPECT_EQ(res.failed_rank, 1) << res.message;
  EXPECT_NE(res.message.find("rank 1"), std::string::npos) << res.message;
  if (how == "kill") {
    EXPECT_EQ(res.exit_code, 128 + SIGKILL);
    EXPECT_NE(res.message.find("signal 9"), std::string::npos) << res.message;
  } else {
    EXPECT_EQ(res.exit_code, 1);
    EXPECT_NE(res.message.find("exited with status 1"), std::string::npos) << res.message;
  }
  EXPECT_FALSE(fs::exists(dir.path / "w.rank0.pt"))
      << "rank 0 went on training after rank 1 failed";
}

TEST(FailureDistTest, KilledRankBringsTheOthersDown) { a_failing_rank_stops_the_others("kill"); }

TEST(FailureDistTest, ThrowingRankBringsTheOthersDown) { a_failing_rank_stops_the_others("throw"); }

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// Two det-launch processes with --nnodes 2 on 127.0.0.1, one rank each: the same result as two
// ranks under one launcher.
// Starts `det-launch --nnodes 2 --node-rank NODE` (one rank) on 127.0.0.1:PORT running the
// DistWorker, with `secret` as DET_RENDEZVOUS_SECRET unless "" and its output to `log` unless "".
pid_t start_node(int node, const std::string& port, const std::string& secret = "",
                 const std::string& log = "") {
  std::vector<std::string> args = {
      DET_LAUNCH_PATH,      "--nproc-per-node", "1",         "--nnodes",      "2",  "--node-rank",
      std::to_string(node), "--master-addr",    "127.0.0.1", "--master-port", port, "--"};
  for (const auto& a : worker_command()) args.push_back(a);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!secret.empty()) ::setenv("DET_RENDEZVOUS_SECRET", secret.c_str(), 1);
    if (!log.empty()) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}

TEST(TwoNodesDistTest, TwoLaunchersOnOneMachine) {
  TempDir one_node, two_nodes;
  const nlohmann::json base = {{"mode", "train"}, {"gbs", 16}, {"agg", 1}, {"batches", 6}};
  auto spec = base;
  spec["dir"] = (one_node.path / "trial").string();
  spec["out"] = (one_node.path / "w").string();
  auto ref = run_ranks(2, spec);
  ASSERT_EQ(ref.exit_code, 0) << ref.message;

  spec["dir"] = (two_nodes.path / "trial").string();
  spec["out"] = (two_nodes.path / "w").string();
  EnvVar e("DET_TEST_DIST_SPEC", spec.dump());
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> launchers;
  for (int node = 0; node < 2; ++node) launchers.push_back(start_node(node, port));
  for (pid_t pid : launchers) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "det-launch wait status " << status;
  }
  expect_close(load_weights((one_node.path / "w").string() + ".rank0.pt"),
               load_weights((two_nodes.path / "w").string() + ".rank0.pt"), 0.0,
               "one node vs two nodes");
  expect_close(load_weights((two_nodes.path / "w").string() + ".rank0.pt"),
               load_weights((two_nodes.path / "w").string() + ".rank1.pt"), 0.0,
               "node 0 vs node 1");
}

// A node whose ranks hold another rendezvous secret than rank 0's is refused: it can neither join
// nor read what the others exchange (docs/distributed.md, What listens where).
TEST(TwoNodesDistTest, APeerWithoutTheRunsSecretIsRefused) {
  TempDir dir;
  const nlohmann::json spec = {{"mode", "collectives"}};
  EnvVar e("DET_TEST_DIST_SPEC", spec.dump());
  EnvVar t("DET_RENDEZVOUS_TIMEOUT", "3");
  const std::string port = std::to_string(free_port());
  std::vector<pid_t> launchers;
  for (int node = 0; node < 2; ++node)
    launchers.push_back(start_node(node, port, node == 0 ? "the-runs-secret" : "a-guess",
                                   (dir.path / ("node" + std::to_string(node) + ".log")).string()));
  for (pid_t pid : launchers) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_FALSE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "a rank without the secret joined";
  }
  const std::string out = util::read_file(dir.path / "node1.log");
  EXPECT_NE(out.find("rank 1: rank 0 at 127.0.0.1:" + port +
                     " does not share this run's rendezvous secret"),
            std::string::npos)
      << out;
  const std::string out0 = util::read_file(dir.path / "node0.log");
  EXPECT_NE(out0.find("rank 0: not every rank at 127.0.0.1:" + port +
                      " shares this run's rendezvous secret"),
            std::string::npos)
      << out0;
}

// Rank 0's TCPStore listens on MASTER_ADDR only, not on every interface (LibTorch 2.4 and later;
// 1.13's TCPStore cannot be told where to listen).
TEST(Rendezvous, RankZeroListensOnlyOnTheMasterAddress) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  EnvVar secret("DET_RENDEZVOUS_SECRET", "s");
  distributed::LaunchEnvironment env;
  env.size = 2;
  env.master_addr = "127.0.0.1";
  env.master_port = free_port();
  std::shared_ptr<distributed::DistributedContext> zero;
  std::thread t([&] {
    auto e0 = env;
    e0.rank = 0;
    zero = distributed::make_process_group_context(e0, distributed::DistributedOptions());
  });
  // The listener, as the kernel lists it: local address and port in hex, state 0A (LISTEN).
  char port_hex[8];
  std::snprintf(port_hex, sizeof port_hex, "%04X", env.master_port);
  std::vector<std::string> listeners;
  for (int i = 0; i < 200 && listeners.empty(); ++i) {
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
      std::ifstream in(table);
      for (std::string line; std::getline(in, line);) {
        std::istringstream f(line);
        std::string sl, local, remote, state;
        f >> sl >> local >> remote >> state;
        if (state == "0A" && local.size() > 5 && local.substr(local.size() - 4) == port_hex)
          listeners.push_back(local);
      }
    }
    if (listeners.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  auto e1 = env;
  e1.rank = 1;
  auto one = distributed::make_process_group_context(e1, distributed::DistributedOptions());
  t.join();
  ASSERT_NE(zero, nullptr);
  EXPECT_EQ(listeners, std::vector<std::string>{std::string("0100007F:") + port_hex})
      << "rank 0 listens beyond 127.0.0.1";
#else
  GTEST_SKIP() << "LibTorch " << TORCH_VERSION << "'s TCPStore listens on every interface";
#endif
}

// ---- without processes ----

TEST(LaunchEnvironment, TorchrunOpenMpiAndSlurmVariables) {
  for (const char* v : {"RANK",
                        "WORLD_SIZE",
                        "LOCAL_RANK",
                        "LOCAL_WORLD_SIZE",
                        "GROUP_RANK",
                        "GROUP_WORLD_SIZE",
                        "MASTER_ADDR",
                        "MASTER_PORT",
                        "OMPI_COMM_WORLD_RANK",
                        "PMI_RANK",
                        "SLURM_PROCID",
                        "SLURM_NTASKS",
                        "OMPI_MCA_ess_base_jobid",
                        "PMIX_NAMESPACE",
                        "SLURM_JOB_ID",
                        "SLURM_STEP_ID",
                        "SLURM_STEP_NODELIST",
                        "SLURM_JOB_NODELIST",
                        "SLURM_NODELIST",
                        "SLURM_TASKS_PER_NODE"})
    ::unsetenv(v);
  EXPECT_FALSE(distributed::detect_launch_environment());
  {
    EnvVar a("RANK", "3"), b("WORLD_SIZE", "4"), c("LOCAL_RANK", "1"), d("LOCAL_WORLD_SIZE", "2"),
        e("GROUP_RANK", "1"), f("MASTER_ADDR", "10.1.2.3"), g("MASTER_PORT", "1234");
    auto env = distributed::detect_launch_environment();
    ASSERT_TRUE(env);
    EXPECT_EQ(env->source, "torchrun");
    EXPECT_EQ(env->rank, 3);
    EXPECT_EQ(env->size, 4);
    EXPECT_EQ(env->local_rank, 1);
    EXPECT_EQ(env->local_size, 2);
    EXPECT_EQ(env->cross_rank, 1);
    EXPECT_EQ(env->cross_size, 2);
    EXPECT_EQ(env->master_addr, "10.1.2.3");
    EXPECT_EQ(env->master_port, 1234);
  }
  {
    EnvVar a("OMPI_COMM_WORLD_RANK", "5"), b("OMPI_COMM_WORLD_SIZE", "8"),
        c("OMPI_COMM_WORLD_LOCAL_RANK", "1"), d("OMPI_COMM_WORLD_LOCAL_SIZE", "4"),
        f("MASTER_ADDR", "10.1.2.3"), g("OMPI_MCA_ess_base_jobid", "542113793");
    auto env = distributed::detect_launch_environment();
    ASSERT_TRUE(env);
    EXPECT_EQ(env->source, "openmpi");
    EXPECT_EQ(env->rank, 5);
    EXPECT_EQ(env->size, 8);
    EXPECT_EQ(env->local_rank, 1);
    EXPECT_EQ(env->cross_rank, 1);
    EXPECT_EQ(env->cross_size, 2);
    EXPECT_EQ(env->master_addr, "10.1.2.3");
    EXPECT_EQ(env->master_port, distributed::port_for_job("542113793"));
  }
  {
    EnvVar a("SLURM_PROCID", "2"), b("SLURM_NTASKS", "4"), c("SLURM_LOCALID", "0"),
        d("SLURM_NTASKS_PER_NODE", "2"), e("SLURM_NODEID", "1"), f("SLURM_JOB_NODELIST", "n[1-2]");
    // A batch script's own process (no step id) is not a rank of anything.
    EXPECT_FALSE(distributed::detect_launch_environment());
    EnvVar step("SLURM_STEP_ID", "0");
    auto env = distributed::detect_launch_environment();
    ASSERT_TRUE(env);
    EXPECT_EQ(env->source, "slurm");
    EXPECT_EQ(env->master_addr, "n1");
    EXPECT_EQ(env->rank, 2);
    EXPECT_EQ(env->cross_rank, 1);
    EXPECT_EQ(env->local_size, 2);
  }
  {
    EnvVar a("RANK", "4"), b("WORLD_SIZE", "4");
    EXPECT_THROW(distributed::detect_launch_environment(), DistributedError);
  }
  {
    EnvVar a("RANK", "x"), b("WORLD_SIZE", "4");
    try {
      distributed::detect_launch_environment();
      FAIL();
    } catch (const DistributedError& e) {
      EXPECT_NE(std::string(e.what()).find("RANK='x'"), std::string::npos) << e.what();
    }
  }
}

// mpirun and srun set no MASTER_ADDR/MASTER_PORT: ranks agree on them by det's rule.
TEST(LaunchEnvironment, MpirunAndSrunRanksAgreeOnTheRendezvousWithoutMasterVariables) {
  for (const char* v :
       {"RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "PMI_RANK", "OMPI_COMM_WORLD_RANK",
        "SLURM_PROCID", "OMPI_MCA_ess_base_jobid", "PMIX_NAMESPACE", "SLURM_JOB_ID",
        "SLURM_STEP_ID", "SLURM_STEP_NODELIST", "SLURM_JOB_NODELIST", "SLURM_NODELIST",
        "SLURM_NTASKS_PER_NODE", "SLURM_TASKS_PER_NODE"})
    ::unsetenv(v);
  {  // one node under mpirun: the loopback, the port from the job id, the same on every rank
    EnvVar a("OMPI_COMM_WORLD_RANK", "1"), b("OMPI_COMM_WORLD_SIZE", "2"),
        c("OMPI_COMM_WORLD_LOCAL_RANK", "1"), d("OMPI_COMM_WORLD_LOCAL_SIZE", "2"),
        j("OMPI_MCA_ess_base_jobid", "542113793");
    auto env = distributed::detect_launch_environment();
    ASSERT_TRUE(env);
    EXPECT_EQ(env->master_addr, "127.0.0.1");
    EXPECT_EQ(env->master_port, distributed::port_for_job("542113793"));
    EXPECT_GE(env->master_port, 10000);
    EXPECT_LT(env->master_port, 30000);
    EnvVar other("OMPI_MCA_ess_base_jobid", "542113794");  // another job, another port
    EXPECT_NE(distributed::detect_launch_environment()->master_port, env->master_port);
    EnvVar p("MASTER_PORT", "4321");  // the user's wins
    EXPECT_EQ(distributed::detect_launch_environment()->master_port, 4321);
  }
  {  // two nodes under mpirun without MASTER_ADDR: one line saying how to set it
    EnvVar a("OMPI_COMM_WORLD_RANK", "1"), b("OMPI_COMM_WORLD_SIZE", "2"),
        c("OMPI_COMM_WORLD_LOCAL_RANK", "0"), d("OMPI_COMM_WORLD_LOCAL_SIZE", "1");
    try {
      distributed::detect_launch_environment();
      FAIL() << "two nodes, no MASTER_ADDR, no error";
    } catch (const DistributedError& e) {
      EXPECT_NE(std::string(e.what()).find("mpirun -x MASTER_ADDR="), std::string::npos)
          << e.what();
    }
  }
  {  // Slurm, two nodes: the step's first node, the port from job and step
    EnvVar a("SLURM_PROCID", "3"), b("SLURM_NTASKS", "4"), c("SLURM_LOCALID", "1"),
        d("SLURM_TASKS_PER_NODE", "2(x2)"), e("SLURM_NODEID", "1"), j("SLURM_JOB_ID", "77"),
        st("SLURM_STEP_ID", "0"), l("SLURM_STEP_NODELIST", "gpu[07-08]"),
        jl("SLURM_JOB_NODELIST", "gpu[01-08]");
    auto env = distributed::detect_launch_environment();
    ASSERT_TRUE(env);
    EXPECT_EQ(env->local_size, 2);
    EXPECT_EQ(env->master_addr, "gpu07");
    EXPECT_EQ(env->master_port, distributed::port_for_job("77.0"));
    EnvVar s1("SLURM_STEP_ID", "1");  // a second step of the job runs beside the first
    EXPECT_NE(distributed::detect_launch_environment()->master_port, env->master_port);
  }
  {  // Slurm, one node: the loopback
    EnvVar a("SLURM_PROCID", "0"), b("SLURM_NTASKS", "2"), c("SLURM_LOCALID", "0"),
        d("SLURM_TASKS_PER_NODE", "2"), l("SLURM_STEP_NODELIST", "node1"), st("SLURM_STEP_ID", "3");
    EXPECT_EQ(distributed::detect_launch_environment()->master_addr, "127.0.0.1");
  }
  EXPECT_EQ(distributed::first_slurm_host("node1"), "node1");
  EXPECT_EQ(distributed::first_slurm_host("gpu[07-09,12],cpu1"), "gpu07");
  EXPECT_EQ(distributed::first_slurm_host("a1,b[1-2]"), "a1");
  EXPECT_EQ(distributed::first_slurm_host("rack[3]-n[1-4],rack4-n1"), "rack3-n1");
  EXPECT_EQ(distributed::first_slurm_host("x[5,7]-ib"), "x5-ib");
  EXPECT_EQ(distributed::first_slurm_host(""), "");
  EXPECT_THROW(distributed::first_slurm_host("gpu[07-09"), DistributedError);
}

TEST(LaunchEnvironment, RendezvousTimeoutIsAOneLineError) {
  distributed::LaunchEnvironment env;
  env.rank = 1;
  env.size = 2;
  env.master_port = free_port();  // nobody serves it
  try {
    distributed::make_process_group_context(
        env, distributed::DistributedOptions().rendezvous_timeout(std::chrono::seconds(1)));
    FAIL() << "no rank 0, yet the rendezvous succeeded";
  } catch (const DistributedError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_NE(msg.find("rank 1: rendezvous"), std::string::npos) << msg;
    EXPECT_NE(msg.find("127.0.0.1:" + std::to_string(env.master_port)), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace det
