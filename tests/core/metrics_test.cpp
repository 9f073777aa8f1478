// Metric reduction for the controller (src/core/metrics.h): tensors to numbers, and the
// cross-rank steps on the single-process context.
#include "core/metrics.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "det/util/error.h"

namespace det::detail {
namespace {

using nlohmann::json;

TEST(MetricsReduce, ScalarsAreReducedOncePerNameNonScalarsAndUndefinedBecomeNull) {
  MetricValues values;
  values["loss"] = {torch::tensor(1.0f), torch::tensor(3.5f)};
  values["count"] = {torch::tensor(int64_t{5}), torch::ones({1, 1}, torch::kInt32) * 2};
  values["vector"] = {torch::tensor(1.0), torch::tensor({1.0, 2.0})};
  values["undefined"] = {torch::tensor(1.0), torch::Tensor()};
  values["never"] = {};
  std::map<std::string, std::vector<double>> seen;
  const json out =
      reduce_tensors(values, [&seen](const std::string& name, const std::vector<double>& v) {
        EXPECT_EQ(seen.count(name), 0u) << name << " reduced twice";
        seen[name] = v;
        double sum = 0;
        for (double x : v) sum += x;
        return sum;
      });
  EXPECT_EQ(out, json::parse(R"({"loss": 4.5, "count": 7.0, "vector": null, "undefined": null,
                                 "never": null})"));
  EXPECT_EQ(seen, (std::map<std::string, std::vector<double>>{{"loss", {1.0, 3.5}},
                                                              {"count", {5.0, 2.0}}}));
}

TEST(MetricsReduce, ValuesKeepTheirTensorsPrecision) {
  MetricValues values{{"x", {torch::tensor(0.1f)}}, {"y", {torch::tensor(0.1, torch::kDouble)}}};
  const json out = reduce_tensors(
      values, [](const std::string&, const std::vector<double>& v) { return v.at(0); });
  EXPECT_EQ(out["x"].get<double>(), static_cast<double>(0.1f));
  EXPECT_EQ(out["y"].get<double>(), 0.1);
}

TEST(MetricsRanks, OneRankKeepsItsOwnTrainingMetrics) {
  auto local = distributed::make_local_context();
  const json mine = json::parse(R"({"loss": 0.25, "skipped": null, "acc": 1})");
  EXPECT_EQ(average_across_ranks(*local, mine), mine);
  EXPECT_TRUE(any_rank(*local, true, torch::kCPU));
  EXPECT_FALSE(any_rank(*local, false, torch::kCPU));
}

TEST(MetricsRanks, OneRankValidationIsItsOwnWithNullsKept) {
  auto local = distributed::make_local_context();
  const json mine = json::parse(R"({"validation_loss": 0.5, "best": 7, "broken": null})");
  const json out = reduce_validation_across_ranks(
      *local, mine, 3,
      ReducerSpec(std::map<std::string, Reducer>{
          {"validation_loss", Reducer::kAvg}, {"best", Reducer::kMax}, {"broken", Reducer::kSum}}));
  EXPECT_EQ(out, json::parse(R"({"validation_loss": 0.5, "best": 7.0, "broken": null})"));
}

TEST(MetricsRanks, ValidationWithoutABatchAndAMissingReducerAreErrors) {
  auto local = distributed::make_local_context();
  try {
    reduce_validation_across_ranks(*local, json::object(), 0, Reducer::kAvg);
    ADD_FAILURE() << "no error";
  } catch (const DataError& e) {
    EXPECT_EQ(std::string(e.what()),
              "the validation data loader is empty: validation needs at least one batch");
  }
  try {
    reduce_validation_across_ranks(
        *local, json::parse(R"({"loss": 1, "acc": 0.5})"), 2,
        ReducerSpec(std::map<std::string, Reducer>{{"loss", Reducer::kAvg}}));
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "evaluation_reducer() has no reducer for metric 'acc' (it names: loss); a "
              "per-metric reducer map must name every metric evaluate_batch returns");
  }
}

TEST(MetricsFormat, NumbersInSixSignificantDigitsOthersAsJson) {
  EXPECT_EQ(format_metrics(json::object()), "");
  EXPECT_EQ(format_metrics(json::parse(R"({"loss": 0.25, "accuracy": 0.9})")),
            "accuracy=0.9 loss=0.25");
  EXPECT_EQ(format_metrics(json{{"third", 1.0 / 3},
                                {"tiny", 1e-7},
                                {"big", 123456789},
                                {"gone", nullptr},
                                {"name", "x"}}),
            "big=1.23457e+08 gone=null name=\"x\" third=0.333333 tiny=1e-07");
}

}  // namespace
}  // namespace det::detail
