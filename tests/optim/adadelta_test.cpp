#include "det/optim/adadelta.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "det/optim/lr_scheduler.h"
#include "det/util/fs.h"

namespace det::optim {
namespace {

torch::Tensor vec(const nlohmann::json& j, const std::vector<int64_t>& shape) {
  return torch::tensor(j.get<std::vector<float>>()).reshape(shape);
}

// Expected values from torch.optim.Adadelta (scripts/testdata/make_adadelta_expected.py).
TEST(Adadelta, MatchesPyTorchOnAFixedGradientSequence) {
  auto doc = nlohmann::json::parse(
      util::read_file(std::string(DET_TEST_DATA_DIR) + "/adadelta_expected.json"));
  ASSERT_EQ(doc["cases"].size(), 2u);
  for (const auto& c : doc["cases"]) {
    auto shape = c["shape"].get<std::vector<int64_t>>();
    auto p = vec(c["param"], shape).requires_grad_(true);
    Adadelta opt(
        {p}, AdadeltaOptions(c["lr"]).rho(c["rho"]).eps(c["eps"]).weight_decay(c["weight_decay"]));
    for (size_t i = 0; i < c["grads"].size(); ++i) {
      p.mutable_grad() = vec(c["grads"][i], shape);
      opt.step();
      auto expected = vec(c["params_after_each_step"][i], shape);
      EXPECT_LT((p.detach() - expected).abs().max().item<double>(), 1e-6)
          << "step " << i << " lr " << c["lr"];
    }
  }
}

TEST(Adadelta, StateRoundTripsThroughAnArchive) {
  auto p = torch::ones({4}).requires_grad_(true);
  Adadelta a({p});
  p.mutable_grad() = torch::full({4}, 0.5);
  a.step();
  torch::serialize::OutputArchive out;
  a.save(out);
  std::ostringstream buf;
  out.save_to(buf);

  auto q = p.detach().clone().requires_grad_(true);
  Adadelta b({q});
  torch::serialize::InputArchive in;
  std::istringstream ibuf(buf.str());
  in.load_from(ibuf);
  b.load(in);
  p.mutable_grad() = torch::full({4}, -0.25);
  q.mutable_grad() = torch::full({4}, -0.25);
  a.step();
  b.step();
  EXPECT_TRUE(torch::equal(p, q));
}

TEST(LRScheduler, StepLRAndStateRestore) {
  auto p = torch::ones({1}).requires_grad_(true);
  torch::optim::SGD sgd({p}, torch::optim::SGDOptions(1.0));
  StepLR s(sgd, 2, 0.5);
  EXPECT_DOUBLE_EQ(s.get_last_lr()[0], 1.0);
  s.step();
  s.step();
  EXPECT_DOUBLE_EQ(s.get_last_lr()[0], 0.5);
  auto state = s.state_dict();

  torch::optim::SGD sgd2({p}, torch::optim::SGDOptions(1.0));
  StepLR s2(sgd2, 2, 0.5);
  s2.load_state_dict(state);
  EXPECT_EQ(s2.last_epoch(), 2);
  EXPECT_DOUBLE_EQ(sgd2.param_groups()[0].options().get_lr(), 0.5);
}

}  // namespace
}  // namespace det::optim
