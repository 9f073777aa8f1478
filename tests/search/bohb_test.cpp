// The bohb searcher: adaptive ASHA with TPE proposals (docs/search.md).
#include <gtest/gtest.h>

#include <cmath>

#include "det/search/bohb.h"
#include "det/search/searcher.h"
#include "det/util/error.h"
#include "search_driver.h"

namespace det::search {
namespace {

using nlohmann::json;
using testing::Driver;
using testing::Outcome;
using testing::parse;

// Seven dimensions of every kind, one of them nested, plus a constant.
const char* kSpace =
    "  x1: {type: double, minval: 0, maxval: 1}\n"
    "  x2: {type: double, minval: 0, maxval: 1}\n"
    "  x3: {type: double, minval: 0, maxval: 1}\n"
    "  lr: {type: log, minval: -4, maxval: 0, base: 10}\n"
    "  width: {type: int, minval: 1, maxval: 64}\n"
    "  opt: {type: categorical, vals: [sgd, adam, rmsprop]}\n"
    "  inner:\n    y: {type: double, minval: -1, maxval: 1}\n"
    "  batch: 64\n";

std::string searcher(const std::string& name, int trials = 64, int64_t length = 81,
                     const std::string& extra = "") {
  return "  name: " + name + "\n  metric: loss\n  max_trials: " + std::to_string(trials) +
         "\n  divisor: 3\n  max_concurrent_trials: 4\n  max_length: {batches: " +
         std::to_string(length) + "}\n" + extra;
}

// A smooth objective with its optimum inside the space (0 at the optimum).
double objective(const json& h) {
  auto sq = [](double v) { return v * v; };
  double f = sq(h["x1"].get<double>() - 0.3) + sq(h["x2"].get<double>() - 0.7) +
             sq(h["x3"].get<double>() - 0.5) + sq(std::log10(h["lr"].get<double>()) + 1.5) / 4 +
             sq((h["width"].get<double>() - 40) / 64) + sq(h["inner"]["y"].get<double>() - 0.2) / 4;
  if (h["opt"] != "adam") f += 0.15;
  return f;
}

// What a trial reports at `length` of 81: the objective, plus a bias and noise that shrink as
// it trains (deterministic in the trial's own values).
double reported(const json& h, int64_t length) {
  double f = objective(h);
  double frac = static_cast<double>(length) / 81;
  double noise = std::sin(1e3 * h["x1"].get<double>() + 7.0 * static_cast<double>(length));
  return f + (1 - frac) * (0.3 + 0.05 * noise);
}

// Runs the search; returns the objective of the best trial that reached the full length.
double best_found(const std::string& name, int seed, int trials = 64,
                  const std::string& extra = "") {
  auto c = parse(searcher(name, trials, 81, extra), kSpace, seed);
  Driver d(c, nullptr);
  d.outcome = [&](size_t t, size_t) {
    return Outcome{reported(d.hparams[d.ids[t]], d.current_length), {}};
  };
  d.run();
  EXPECT_TRUE(d.searcher.shutdown());
  double best = 1e9;
  for (const auto& id : d.ids)
    if (!d.lengths[id].empty() && d.lengths[id].back() == 81)
      best = std::min(best, objective(d.hparams[id]));
  return best;
}

TEST(Bohb, ConfigFieldsAndErrors) {
  auto c = parse(searcher("bohb", 16, 81,
                          "  random_fraction: 0.5\n  top_fraction: 0.2\n  min_observations: 4\n"
                          "  candidates: 10\n  bandwidth_factor: 2\n"),
                 kSpace);
  EXPECT_EQ(c.searcher.name, "bohb");
  EXPECT_EQ(c.searcher.random_fraction, 0.5);
  EXPECT_EQ(c.searcher.top_fraction, 0.2);
  EXPECT_EQ(c.searcher.min_observations, 4);
  EXPECT_EQ(c.searcher.candidates, 10);
  EXPECT_EQ(c.searcher.bandwidth_factor, 2);
  auto message = [&](const std::string& extra, const std::string& name = "bohb") {
    try {
      parse(searcher(name, 16, 81, extra), kSpace);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("  top_fraction: 1\n").find("top_fraction"), std::string::npos);
  EXPECT_NE(message("  random_fraction: 1.5\n").find("random_fraction"), std::string::npos);
  EXPECT_NE(message("  min_observations: 1\n").find("min_observations"), std::string::npos);
  EXPECT_NE(message("  candidates: 0\n").find("candidates"), std::string::npos);
  // The TPE fields belong to bohb only: elsewhere they are unknown keys, not silently ignored.
  EXPECT_NE(message("  top_fraction: 0.3\n", "adaptive_asha").find("top_fraction"),
            std::string::npos);
  for (const auto& m : {message("  top_fraction: 1\n"), message("  candidates: 0\n")})
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

TEST(Bohb, RandomUntilARungHasEnoughResultsThenTheModel) {
  // The first trials are exactly adaptive_asha's: the same random samples from the same seed.
  auto cb = parse(searcher("bohb", 32), kSpace, 11);
  auto ca = parse(searcher("adaptive_asha", 32), kSpace, 11);
  auto outcome = [](Driver& d) {
    return [&d](size_t t, size_t) {
      return Outcome{reported(d.hparams[d.ids[t]], d.current_length), {}};
    };
  };
  Driver b(cb, nullptr), a(ca, nullptr);
  b.outcome = outcome(b);
  a.outcome = outcome(a);
  b.run();
  a.run();
  const auto& bohb = dynamic_cast<const BohbSearch&>(b.searcher.method());
  EXPECT_EQ(bohb.min_observations(), 8);  // 7 varying dimensions + 1
  size_t random_first = 0;
  while (random_first < b.ids.size() && bohb.origins().at(b.ids[random_first]) == "random")
    ++random_first;
  ASSERT_GE(random_first, 8u);  // no rung can have 8 results before 8 trials exist
  ASSERT_LT(random_first, b.ids.size());
  for (size_t i = 0; i < random_first; ++i) {
    EXPECT_EQ(b.ids[i], a.ids[i]);
    EXPECT_EQ(b.hparams[b.ids[i]], a.hparams[a.ids[i]]) << "trial " << i + 1;
  }
  // The first model-proposed trial is fitted on rung 0 (3 batches), and proposals stay in range.
  EXPECT_EQ(bohb.origins().at(b.ids[random_first]), "model@3");
  int modelled = 0;
  for (const auto& id : b.ids) {
    modelled += bohb.origins().at(id) != "random";
    const auto& h = b.hparams[id];
    EXPECT_GE(h["x1"].get<double>(), 0);
    EXPECT_LE(h["x1"].get<double>(), 1);
    EXPECT_GE(h["lr"].get<double>(), 1e-4 * (1 - 1e-12));
    EXPECT_LE(h["lr"].get<double>(), 1.0 * (1 + 1e-12));
    EXPECT_TRUE(h["width"].is_number_integer());
    EXPECT_GE(h["width"].get<int>(), 1);
    EXPECT_LE(h["width"].get<int>(), 64);
    EXPECT_TRUE(h["opt"] == "sgd" || h["opt"] == "adam" || h["opt"] == "rmsprop");
    EXPECT_EQ(h["batch"], 64);
    EXPECT_GE(h["inner"]["y"].get<double>(), -1);
  }
  // About 2/3 of the trials after the model exists (random_fraction 1/3).
  EXPECT_GE(modelled, 8);
  // A min_observations no rung reaches keeps bohb identical to adaptive_asha throughout.
  auto cn = parse(searcher("bohb", 32, 81, "  min_observations: 1000\n"), kSpace, 11);
  Driver n(cn, nullptr);
  n.outcome = outcome(n);
  n.run();
  EXPECT_EQ(n.log, a.log);
}

TEST(Bohb, DeterministicWithASeed) {
  auto run = [](int seed) {
    auto c = parse(searcher("bohb", 40), kSpace, seed);
    Driver d(c, nullptr);
    d.outcome = [&d](size_t t, size_t) {
      return Outcome{reported(d.hparams[d.ids[t]], d.current_length), {}};
    };
    d.run();
    return d.log;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST(Bohb, SnapshotRestoreContinuesIdentically) {
  auto c = parse(searcher("bohb", 30), kSpace, 3);
  auto metric = [](Driver& d) {
    return [&d](size_t t, size_t v) {
      if (t == 5 && v == 0) return Outcome{0, ExitedReason::kInvalidHP};
      if (t == 9 && v == 0) return Outcome{0, ExitedReason::kUserCanceled};
      return Outcome{reported(d.hparams[d.ids[t]], d.current_length), {}};
    };
  };
  Driver full(c, nullptr);
  full.outcome = metric(full);
  full.run();
  for (int cut : {5, 40, 90}) {
    Driver first(c, nullptr);
    first.outcome = metric(first);
    first.start();
    for (int i = 0; i < cut && first.step(); ++i) {
    }
    Driver second(c, nullptr);
    second.outcome = metric(second);
    second.resume_from(first);
    while (second.step()) {
    }
    EXPECT_EQ(second.log, full.log) << "cut at " << cut;
    EXPECT_EQ(second.searcher.snapshot(), full.searcher.snapshot()) << "cut at " << cut;
  }
}

TEST(Bohb, LargerIsBetterAndNonFiniteMetrics) {
  // Maximising -f must find what minimising f finds; NaN reports count as the worst.
  auto run = [](const std::string& extra, bool negate, bool nan) {
    auto c = parse(searcher("bohb", 40, 81, extra), kSpace, 21);
    Driver d(c, nullptr);
    d.outcome = [&d, negate, nan](size_t t, size_t) {
      double m = reported(d.hparams[d.ids[t]], d.current_length);
      if (nan && t % 7 == 3) m = std::nan("");
      return Outcome{negate ? -m : m, {}};
    };
    d.run();
    EXPECT_TRUE(d.searcher.shutdown());
    return d.hparams;
  };
  EXPECT_EQ(run("", false, false), run("  smaller_is_better: false\n", true, false));
  EXPECT_EQ(run("", false, true).size(), 40u);
}

// On the synthetic objective, with the same budget (64 trials, the same brackets), bohb finds a
// better trial than adaptive_asha's random sampling on most of 40 seeds, and on average by a
// margin many times its standard error: not one lucky seed.
TEST(Bohb, BeatsRandomSamplingAtEqualBudget) {
  const int seeds = 40;
  int wins = 0;
  std::vector<double> diff;
  double sum_b = 0, sum_a = 0;
  for (int seed = 1; seed <= seeds; ++seed) {
    double b = best_found("bohb", seed), a = best_found("adaptive_asha", seed);
    wins += b < a;
    diff.push_back(a - b);
    sum_b += b;
    sum_a += a;
  }
  double mean = 0, var = 0;
  for (double d : diff) mean += d / seeds;
  for (double d : diff) var += (d - mean) * (d - mean) / (seeds - 1);
  double t = mean / std::sqrt(var / seeds);
  std::printf(
      "bohb vs adaptive_asha over %d seeds: bohb better on %d; mean best %.4f vs %.4f; "
      "paired t = %.2f\n",
      seeds, wins, sum_b / seeds, sum_a / seeds, t);
  EXPECT_GE(wins, 28);  // 70%; under "no better than random" P(>= 28 of 40) < 0.01
  EXPECT_GE(t, 3.0);
}

TEST(Bohb, PreviewShowsTheModelAndTheBrackets) {
  auto c = parse(searcher("bohb", 16, 937, ""), kSpace, 1);
  std::string text = preview_search(c);
  EXPECT_NE(text.find("Searcher: bohb"), std::string::npos) << text;
  EXPECT_NE(text.find("random until a rung has 8 results"), std::string::npos) << text;
  EXPECT_NE(text.find("Bracket 1"), std::string::npos) << text;
  EXPECT_EQ(text.find("Note:"), std::string::npos) << text;  // 4 concurrent: few made at once
  // With the default max_concurrent_trials (16), 12 of 16 trials are created at the start, before
  // any result: they can only be random, and the preview says so.
  auto eager = parse(
      "  name: bohb\n  metric: loss\n  max_trials: 16\n  max_length: {batches: 937}\n", kSpace, 1);
  std::string et = preview_search(eager);
  EXPECT_NE(et.find("Note: 12 of the 16 trials are created before any result"), std::string::npos)
      << et;
  // simulate() works as for the other searchers.
  json trials = {{"trials", json::array()}};
  for (int i = 0; i < 16; ++i) trials["trials"].push_back({{"metric", (i * 37) % 11}});
  auto a = simulate(c, trials), b = simulate(c, trials);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a["trials"].size(), 16u);
}

}  // namespace
}  // namespace det::search
