#include "det/core/checkpoint.h"

#include <gtest/gtest.h>

#include <fstream>

#include "det/core/controller.h"
#include "det/optim/state_key.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "test_trials.h"

namespace det {
namespace {
using testing::make_config;
using testing::NoisyTrial;
using testing::run_trial;
using testing::TempDir;
namespace fs = std::filesystem;

TEST(Checkpoint, CorruptTruncatedMissingAndMismatchedAreRefused) {
  TempDir tmp;
  auto cfg = make_config("noisy", "", 8);
  auto r = run_trial(cfg, tmp.path);
  fs::path ckpt = r.checkpoints.back().path;
  auto resume = [&](const fs::path& p, const config::ExperimentConfig& c) {
    TrialRunOptions o;
    o.resume_from = p;
    run_trial(c, tmp.path, o);
  };
  auto expect_error = [&](const fs::path& p, const config::ExperimentConfig& c,
                          const std::string& needle) {
    try {
      resume(p, c);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const CheckpointError& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  expect_error(tmp.path / "nope", cfg, "no such checkpoint directory");
  expect_error(tmp.path, cfg, "not a det checkpoint");

  // A checkpoint of another trial type.
  auto other = make_config("onevar", "", 8);
  expect_error(ckpt, other, "written by trial 'noisy'");

  // Truncated state file.
  fs::path copy = tmp.path / "copy" / ckpt.filename();  // a checkpoint is named by its uuid
  fs::create_directories(copy.parent_path());
  fs::copy(ckpt, copy);
  fs::resize_file(copy / "state.pt", fs::file_size(copy / "state.pt") / 2);
  expect_error(copy, cfg, "truncated");

  // Same size, flipped bytes.
  fs::remove_all(copy);
  fs::copy(ckpt, copy);
  {
    std::fstream f(copy / "state.pt", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.write("XXXX", 4);
  }
  expect_error(copy, cfg, "checksum");

  // Newer format.
  fs::remove_all(copy);
  fs::copy(ckpt, copy);
  auto meta = nlohmann::json::parse(util::read_file(copy / "metadata.json"));
  meta["format_version"] = 99;
  util::write_file_atomic(copy / "metadata.json", meta.dump());
  expect_error(copy, cfg, "format version 99");
}

TEST(Checkpoint, ShapeMismatchNamesTheParameter) {
  TempDir tmp;
  auto cfg = make_config("noisy", "", 4);
  auto r = run_trial(cfg, tmp.path);
  TrialContext ctx(cfg, {{"global_batch_size", 4}}, 1, 1, torch::kCPU, nullptr);
  auto wrong =
      ctx.wrap_model(torch::nn::Sequential(torch::nn::Linear(8, 32), torch::nn::ReLU(),
                                           torch::nn::Dropout(0.3), torch::nn::Linear(32, 1)));
  try {
    checkpoint::load(r.checkpoints.back().path, {wrong.ptr()}, {}, false);
    ADD_FAILURE();
  } catch (const CheckpointError& e) {
    // Optimizer count is checked first; with the right count, the shape is named.
    EXPECT_NE(std::string(e.what()).find("optimizer"), std::string::npos) << e.what();
  }
  auto opt = std::make_shared<torch::optim::Adam>(wrong->parameters());
  try {
    checkpoint::load(r.checkpoints.back().path, {wrong.ptr()}, {opt}, false);
    ADD_FAILURE();
  } catch (const CheckpointError& e) {
    EXPECT_NE(
        std::string(e.what()).find("'0.weight' has shape [16, 8] in the checkpoint but [32, 8]"),
        std::string::npos)
        << e.what();
  }
}

// Two identical runs write byte-identical checkpoints (optimizer state keyed by position, not
// by parameter address), so a checkpoint's hash identifies its content.
TEST(Checkpoint, IdenticalRunsWriteIdenticalBytes) {
  auto cfg = make_config("noisy", "min_checkpoint_period: {batches: 4}\n",
                         8);  // Adam: moments in the state
  TempDir a, b;
  auto ra = run_trial(cfg, a.path), rb = run_trial(cfg, b.path);
  ASSERT_FALSE(ra.checkpoints.empty());
  const auto& pa = ra.checkpoints.back().path;
  const auto& pb = rb.checkpoints.back().path;
  EXPECT_EQ(util::read_file(pa / "state.pt"), util::read_file(pb / "state.pt"));
  EXPECT_EQ(checkpoint::read_metadata(pa).files.at("state.pt").crc32,
            checkpoint::read_metadata(pb).files.at("state.pt").crc32);
  // A different seed gives different weights, hence different bytes: the comparison can fail.
  TempDir c;
  TrialRunOptions other;
  other.trial_seed = 99;
  auto rc = run_trial(cfg, c.path, other);
  EXPECT_NE(util::read_file(pa / "state.pt"),
            util::read_file(rc.checkpoints.back().path / "state.pt"));
}

// Each parameter gets its own optimizer state back, over several groups of differently shaped
// parameters, on either LibTorch line (2.x parses the state keys as numbers: keys like "0.1"
// and "0.2" would collide there), and training goes on exactly as without the round trip.
TEST(Checkpoint, OptimizerStateReturnsToEachParameterAcrossGroups) {
  auto make = [] {
    torch::manual_seed(3);
    return torch::nn::Sequential(torch::nn::Linear(3, 4), torch::nn::Tanh(),
                                 torch::nn::Linear(4, 2));
  };
  auto groups = [](torch::nn::Sequential& m) {
    auto p = m->parameters();
    return std::vector<torch::optim::OptimizerParamGroup>{
        torch::optim::OptimizerParamGroup({p[0], p[1]},
                                          std::make_unique<torch::optim::AdamOptions>(0.01)),
        torch::optim::OptimizerParamGroup({p[2], p[3]},
                                          std::make_unique<torch::optim::AdamOptions>(0.05))};
  };
  auto step = [](torch::nn::Sequential& m, torch::optim::Optimizer& o, int i) {
    auto x = torch::arange(6 * (i + 1), 6 * (i + 2), torch::kFloat).reshape({2, 3}).div(10);
    o.zero_grad();
    m->forward(x).pow(2).sum().backward();
    o.step();
  };
  auto a = make();
  auto opt_a = std::make_shared<torch::optim::Adam>(groups(a), torch::optim::AdamOptions(0.01));
  for (int i = 0; i < 3; ++i) step(a, *opt_a, i);
  TempDir tmp;
  record::CheckpointMetadata meta;
  meta.uuid = checkpoint::new_uuid();
  meta.entrypoint = "test";
  meta.epoch_len = 1;
  const fs::path dir = checkpoint::save(tmp.path, meta, {a.ptr()}, {opt_a});

  auto b = make();
  auto opt_b = std::make_shared<torch::optim::Adam>(groups(b), torch::optim::AdamOptions(0.01));
  checkpoint::load(dir, {b.ptr()}, {opt_b}, false);
  const auto pa = a->parameters(), pb = b->parameters();
  for (size_t k = 0; k < pa.size(); ++k) {
    auto& sa =
        static_cast<torch::optim::AdamParamState&>(*opt_a->state().at(optim::state_key(pa[k])));
    auto& sb =
        static_cast<torch::optim::AdamParamState&>(*opt_b->state().at(optim::state_key(pb[k])));
    EXPECT_EQ(sb.step(), 3) << "parameter " << k;
    EXPECT_TRUE(torch::equal(sa.exp_avg(), sb.exp_avg())) << "parameter " << k;
    EXPECT_TRUE(torch::equal(sa.exp_avg_sq(), sb.exp_avg_sq())) << "parameter " << k;
  }
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamOptions&>(opt_b->param_groups()[1].options()).lr(),
                   0.05);
  step(a, *opt_a, 3);
  step(b, *opt_b, 3);
  for (size_t k = 0; k < pa.size(); ++k) EXPECT_TRUE(torch::equal(pa[k], pb[k])) << k;
}

}  // namespace
}  // namespace det
