// Determined's searcher unit-test vectors (spec section 4) and hand-derived simulations.
#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <set>

#include "det/search/searcher.h"
#include "det/util/error.h"
#include "search_driver.h"

namespace det::search {
namespace {

using config::Hyperparameter;
using nlohmann::json;
using testing::Driver;
using testing::Outcome;
using testing::parse;

Hyperparameter int_hp(double lo, double hi, int count) {
  Hyperparameter h;
  h.type = Hyperparameter::Type::kInt;
  h.minval = lo;
  h.maxval = hi;
  h.count = count;
  return h;
}
Hyperparameter double_hp(double lo, double hi, int count, bool log = false) {
  Hyperparameter h = int_hp(lo, hi, count);
  h.type = log ? Hyperparameter::Type::kLog : Hyperparameter::Type::kDouble;
  return h;
}
Hyperparameter cat_hp(std::vector<json> vals) {
  Hyperparameter h;
  h.type = Hyperparameter::Type::kCategorical;
  h.vals = std::move(vals);
  return h;
}
Hyperparameter const_hp(json v) {
  Hyperparameter h;
  h.val = std::move(v);
  return h;
}
Hyperparameter nested_hp(std::map<std::string, Hyperparameter> m) {
  Hyperparameter h;
  h.type = Hyperparameter::Type::kNested;
  h.nested = std::move(m);
  return h;
}

// ---- ASHA formulas --------------------------------------------------------------------------

TEST(AshaRungs, MakeRungs) {
  EXPECT_EQ(make_rungs(3, 9, 3), (std::vector<int64_t>{1, 3, 9}));
  EXPECT_EQ(make_rungs(4, 10, 2), (std::vector<int64_t>{1, 2, 5, 10}));
  EXPECT_EQ(make_rungs(1, 9, 3), (std::vector<int64_t>{9}));
  EXPECT_EQ(make_rungs(3, 900, 3), (std::vector<int64_t>{100, 300, 900}));
  // Small max_length, large divisor: lengths floor to the same value.
  EXPECT_EQ(make_rungs(3, 2, 4), (std::vector<int64_t>{1, 1, 2}));
  EXPECT_EQ(make_rungs(3, 2, 2), (std::vector<int64_t>{1, 1, 2}));
  EXPECT_EQ(make_rungs(4, 2, 1.2), (std::vector<int64_t>{1, 1, 1, 2}));
  EXPECT_EQ(make_rungs(3, 1, 10), (std::vector<int64_t>{1, 1, 1}));
}

TEST(AdaptiveAsha, BracketMaxTrials) {
  EXPECT_EQ(get_bracket_max_trials(20, 3, {3, 2, 1}), (std::vector<int>{12, 5, 3}));
  EXPECT_EQ(get_bracket_max_trials(50, 3, {4, 3}), (std::vector<int>{35, 15}));
  EXPECT_EQ(get_bracket_max_trials(50, 4, {3, 2}), (std::vector<int>{37, 13}));
  EXPECT_EQ(get_bracket_max_trials(100, 4, {4, 3, 2}), (std::vector<int>{70, 22, 8}));
}

TEST(AdaptiveAsha, BracketMaxConcurrentTrials) {
  EXPECT_EQ(get_bracket_max_concurrent_trials(0, 3, {9, 3, 1}), (std::vector<int>{3, 3, 3}));
  EXPECT_EQ(get_bracket_max_concurrent_trials(11, 3, {9, 3, 1}), (std::vector<int>{4, 4, 3}));
  EXPECT_EQ(get_bracket_max_concurrent_trials(0, 4, {40, 10}), (std::vector<int>{10, 10}));
}

TEST(AdaptiveAsha, MaxRungsUsesTheSameLogExpression) {
  EXPECT_EQ(adaptive_max_rungs(5, 1000, 1000, 10), 3);  // log(1000)/log(10) = 2.9999999999999996
  EXPECT_EQ(adaptive_max_rungs(5, 937, 16, 4), 3);
  EXPECT_EQ(adaptive_max_rungs(1, 937, 16, 4), 1);
}

struct B {
  int rungs, trials, concurrent;
};
void expect_brackets(const config::SearcherConfig& s, const std::vector<B>& want,
                     const std::vector<std::vector<int64_t>>& lengths = {}) {
  auto got = make_adaptive_brackets(s);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].num_rungs, want[i].rungs) << i;
    EXPECT_EQ(got[i].max_trials, want[i].trials) << i;
    EXPECT_EQ(got[i].max_concurrent_trials, want[i].concurrent) << i;
    if (i < lengths.size()) {
      EXPECT_EQ(make_rungs(got[i].num_rungs, got[i].max_length, got[i].divisor), lengths[i]);
    }
  }
}

TEST(AdaptiveAsha, MakeBrackets) {
  auto c = parse(
      "  name: adaptive_asha\n  metric: loss\n  max_length: {batches: 100}\n  max_trials: 10\n"
      "  max_concurrent_trials: 2\n");
  expect_brackets(c.searcher, {{2, 7, 1}, {1, 3, 1}});
  c = parse(
      "  name: adaptive_asha\n  metric: loss\n  mode: conservative\n  max_length: {batches: 1000}\n"
      "  divisor: 3\n  max_trials: 10\n  max_concurrent_trials: 5\n");
  expect_brackets(c.searcher, {{3, 7, 2}, {2, 2, 2}, {1, 1, 1}});
}

TEST(AdaptiveAsha, WorkedExamples) {
  auto mk = [](const std::string& len, int trials) {
    return parse("  name: adaptive_asha\n  metric: loss\n  max_length: " + len +
                 "\n  max_trials: " + std::to_string(trials) + "\n")
        .searcher;
  };
  expect_brackets(mk("{batches: 937}", 16), {{3, 12, 8}, {2, 4, 8}}, {{58, 234, 937}, {234, 937}});
  expect_brackets(mk("{epochs: 32}", 16), {{3, 12, 8}, {2, 4, 8}}, {{2, 8, 32}, {8, 32}});
  expect_brackets(mk("{epochs: 10}", 64), {{2, 43, 8}, {1, 21, 8}}, {{2, 10}, {10}});
  expect_brackets(mk("{epochs: 16}", 64), {{3, 47, 8}, {2, 17, 8}}, {{1, 4, 16}, {4, 16}});
  expect_brackets(mk("{batches: 6400}", 128), {{4, 89, 6}, {3, 29, 5}, {2, 10, 5}},
                  {{100, 400, 1600, 6400}});
}

TEST(AdaptiveAsha, ModesAndExplicitBrackets) {
  EXPECT_EQ(adaptive_brackets("aggressive", 4), (std::vector<int>{4}));
  EXPECT_EQ(adaptive_brackets("standard", 4), (std::vector<int>{4, 3, 2}));
  EXPECT_EQ(adaptive_brackets("standard", 5), (std::vector<int>{5, 4, 3}));
  EXPECT_EQ(adaptive_brackets("conservative", 3), (std::vector<int>{3, 2, 1}));
  EXPECT_THROW(adaptive_brackets("bold", 3), ConfigError);
  auto c = parse(
      "  name: adaptive_asha\n  metric: loss\n  max_length: {batches: 100}\n  max_trials: 20\n"
      "  divisor: 3\n  bracket_rungs: [1, 3, 2]\n");
  expect_brackets(c.searcher, {{3, 12, 6}, {2, 5, 5}, {1, 3, 5}});
}

// ---- promotionsAsync / continueTraining -------------------------------------------------------

TEST(AshaRung, PromotionsAsyncHandChecked) {
  AsyncHalvingSearch::Rung r;
  // divisor 2: 1st metric -> no slot yet; 2nd (better) -> promoted at once.
  EXPECT_TRUE(r.promotions_async("a", 0.5, 2).empty());
  EXPECT_EQ(r.promotions_async("b", 0.4, 2), std::vector<std::string>{"b"});
  // 3rd: slots stay at 1, but c lands at index 0 < 1 and is promoted at once (b keeps its
  // promotion: promotions are never taken back).
  EXPECT_EQ(r.promotions_async("c", 0.3, 2), std::vector<std::string>{"c"});
  // 4th (worst): a 2nd slot opens; M = [c, b(P), a, d] so M[1] = b is already promoted: nothing.
  EXPECT_TRUE(r.promotions_async("d", 0.9, 2).empty());
  // 5th: slots stay at 2; inserting 0.1 at index 0 < 2 promotes it at once.
  EXPECT_EQ(r.promotions_async("e", 0.1, 2), std::vector<std::string>{"e"});
  // 6th (worst): a 3rd slot opens; M = [e(P), c, b(P), a, d, f]; M[2] = b is promoted: nothing.
  EXPECT_TRUE(r.promotions_async("f", 1.0, 2).empty());

  AsyncHalvingSearch::Rung s;
  EXPECT_TRUE(s.promotions_async("a", 0.2, 2).empty());
  // A worse newcomer opens the slot: it goes to the best unpromoted trial, a.
  EXPECT_EQ(s.promotions_async("b", 0.7, 2), std::vector<std::string>{"a"});
  // Ties: the newcomer goes after an equal value.
  AsyncHalvingSearch::Rung t;
  EXPECT_TRUE(t.promotions_async("a", 0.5, 2).empty());
  EXPECT_EQ(t.promotions_async("b", 0.5, 2), std::vector<std::string>{"a"});
  EXPECT_EQ(t.metrics[1].request_id, "b");
}

TEST(AshaRung, ContinueTrainingHandChecked) {
  AsyncHalvingSearch::Rung r;
  EXPECT_TRUE(r.continue_training("a", 0.5, 3));   // the first always continues
  EXPECT_FALSE(r.continue_training("b", 0.6, 3));  // 2 metrics, 1 continues; b is 2nd
  EXPECT_TRUE(r.continue_training("c", 0.5, 3));   // tie goes before the equal value: index 0
  EXPECT_EQ(r.metrics[0].request_id, "c");
  EXPECT_FALSE(r.continue_training("d", 0.55, 3));  // 4 metrics: 1 continues
  EXPECT_TRUE(r.continue_training("e", 0.1, 3));
  // Rung [e .1, c .5, a .5, d .55, b .6]: f = 0.5 goes before the equal values, index 1 of 6,
  // and 6/3 = 2 continue.
  EXPECT_TRUE(r.continue_training("f", 0.5, 3));
  EXPECT_EQ(r.metrics[1].request_id, "f");
}

// ---- Grid -----------------------------------------------------------------------------------

TEST(Grid, Functionality) {
  std::vector<std::vector<int>> cases = {{1}, {4}, {1, 4}, {3, 4}, {2, 3, 4}, {2, 2, 3, 3, 4, 5}};
  for (const auto& counts : cases) {
    config::HyperparameterSpace space;
    size_t expected = 1;
    for (size_t i = 0; i < counts.size(); ++i) {
      space["x" + std::to_string(i)] = double_hp(-1, 1, counts[i]);
      expected *= static_cast<size_t>(counts[i]);
    }
    EXPECT_EQ(make_grid(space).size(), expected);
  }
}

TEST(Grid, HyperparameterGridMethod) {
  auto n = [](Hyperparameter h) { return make_grid({{"x", h}}).size(); };
  EXPECT_EQ(n(double_hp(0, 2, 5)), 5u);
  EXPECT_EQ(n(int_hp(0, 20, 7)), 7u);
  EXPECT_EQ(n(double_hp(-3, -2, 2, true)), 2u);
  EXPECT_EQ(n(cat_hp({1, 2, 3})), 3u);
  EXPECT_EQ(n(const_hp(3)), 1u);
  auto g = make_grid({{"x", nested_hp({{"empty", nested_hp({})}, {"full", cat_hp({1, 2, 3})}})}});
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0], json::parse(R"({"x": {"empty": {}, "full": 1}})"));
  EXPECT_EQ(g[2], json::parse(R"({"x": {"empty": {}, "full": 3}})"));
}

TEST(Grid, OrderFirstAxisSlowest) {
  auto g = make_grid({{"1", int_hp(0, 20, 3)}, {"2", int_hp(0, 10, 3)}});
  std::vector<std::pair<int, int>> want = {{0, 0},   {0, 5},  {0, 10}, {10, 0}, {10, 5},
                                           {10, 10}, {20, 0}, {20, 5}, {20, 10}};
  ASSERT_EQ(g.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(g[i], (json{{"1", want[i].first}, {"2", want[i].second}}));
  auto nested = make_grid({{"1", int_hp(0, 20, 3)}, {"2", nested_hp({{"3", int_hp(0, 10, 3)}})}});
  ASSERT_EQ(nested.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_EQ(nested[i], (json{{"1", want[i].first}, {"2", {{"3", want[i].second}}}}));
}

TEST(Grid, NestedGridFurther) {
  config::HyperparameterSpace space{
      {"constant", const_hp(2)},
      {"a", nested_hp({{"b", nested_hp({{"c1", cat_hp({3, 5})}, {"c2", int_hp(7, 11, 2)}})}})},
      {"f", double_hp(13, 17, 2)},
      {"l", double_hp(1, 2, 2, true)}};
  auto g = make_grid(space);
  std::set<std::string> unique;
  for (const auto& p : g) {
    unique.insert(p.dump());
    EXPECT_EQ(p["constant"], 2);
    int c1 = p["a"]["b"]["c1"], c2 = p["a"]["b"]["c2"];
    double f = p["f"], l = p["l"];
    EXPECT_TRUE(c1 == 3 || c1 == 5);
    EXPECT_TRUE(c2 == 7 || c2 == 11);
    EXPECT_TRUE(f == 13 || f == 17);
    EXPECT_TRUE(std::abs(l - 10) < 1e-9 || std::abs(l - 100) < 1e-9);
  }
  EXPECT_EQ(g.size(), 16u);
  EXPECT_EQ(unique.size(), 16u);
}

TEST(Grid, IntCounts) {
  auto values = [](Hyperparameter h) {
    std::vector<int64_t> v;
    for (const auto& p : make_grid({{"x", h}})) v.push_back(p["x"]);
    return v;
  };
  EXPECT_EQ(values(int_hp(0, 4, 5)), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(values(int_hp(-4, -2, 3)), (std::vector<int64_t>{-4, -3, -2}));
  EXPECT_EQ(values(int_hp(0, 2, 10)),
            (std::vector<int64_t>{0, 1, 2}));                     // count capped at the range
  EXPECT_EQ(values(int_hp(0, 3, 1)), (std::vector<int64_t>{2}));  // round(1.5) away from zero
  EXPECT_EQ(values(int_hp(0, 10, 4)), (std::vector<int64_t>{0, 3, 7, 10}));
}

TEST(Grid, CountRequired) {
  Hyperparameter h = int_hp(0, 4, 1);
  h.count.reset();
  EXPECT_THROW(make_grid({{"x", h}}), ConfigError);
}

const char* kRandom =
    "  name: random\n  metric: loss\n  max_trials: 4\n  max_length: {batches: 300}\n";

TEST(Random, CountsAndLengths) {
  for (const std::string len : {"{records: 19200}", "{batches: 300}", "{records: 32017}"}) {
    auto c = parse("  name: random\n  metric: loss\n  max_trials: 4\n  max_length: " + len + "\n",
                   "  x: {type: int, minval: 0, maxval: 10}\n");
    Driver d(c, [](size_t, size_t) { return Outcome{0.5, {}}; });
    d.run();
    ASSERT_EQ(d.ids.size(), 4u);
    for (const auto& id : d.ids)
      EXPECT_EQ(d.lengths[id], (std::vector<int64_t>{c.searcher.max_length->value}));
    EXPECT_TRUE(d.searcher.shutdown());
    EXPECT_DOUBLE_EQ(d.searcher.progress(), 1.0);
  }
}

TEST(Random, EarlyExitIsNotReplacedButInvalidHPIs) {
  auto c = parse(
      "  name: random\n  metric: loss\n  max_trials: 4\n  max_concurrent_trials: 2\n"
      "  max_length: {batches: 500}\n");
  Driver d(c, [](size_t t, size_t) {
    return t == 3 ? Outcome{0, ExitedReason::kUserCanceled} : Outcome{1, {}};
  });
  d.run();
  EXPECT_EQ(d.ids.size(), 4u);
  EXPECT_EQ(d.log.back(), "Shutdown(cancel=false, failure=false)");

  auto c2 = parse(
      "  name: random\n  metric: loss\n  max_trials: 2\n  max_concurrent_trials: 1\n"
      "  max_length: {records: 100}\n");
  Driver d2(c2, [](size_t t, size_t) {
    return t == 0 ? Outcome{0, ExitedReason::kInvalidHP} : Outcome{1, {}};
  });
  d2.run();
  EXPECT_EQ(d2.ids.size(), 3u);  // the invalid point is replaced
  EXPECT_EQ(d2.searcher.trials_requested(), 3);
  EXPECT_TRUE(d2.searcher.shutdown());
}

TEST(Random, SingleAndSamplesInRange) {
  auto c = parse("  name: single\n  metric: loss\n  max_length: {batches: 500}\n",
                 "  x: {type: int, minval: 0, maxval: 10}\n");
  Driver d(c, [](size_t, size_t) { return Outcome{1, {}}; });
  d.run();
  EXPECT_EQ(d.ids.size(), 1u);
  auto c2 = parse(kRandom, "  x: {type: int, minval: 0, maxval: 10}\n", 17);
  Searcher a(c2, 17), b(c2, 17);
  auto oa = a.initial_operations(), ob = b.initial_operations();
  ASSERT_EQ(oa.size(), 12u);
  for (size_t i = 0; i < oa.size(); ++i) EXPECT_EQ(to_string(oa[i]), to_string(ob[i]));
  for (const auto& op : oa)
    if (auto* cr = std::get_if<Create>(&op)) {
      int x = cr->hparams["x"];
      EXPECT_GE(x, 0);
      EXPECT_LE(x, 10);
      EXPECT_LT(cr->trial_seed, 1u << 31);
    }
}

TEST(Grid, SearcherCreatesFromTheEndAndDoesNotReplaceEarlyExits) {
  auto c = parse(
      "  name: grid\n  metric: loss\n  max_concurrent_trials: 2\n  max_length: {batches: 300}\n",
      "  a: {type: int, minval: 0, maxval: 1, count: 2}\n  b: 1\n  c: {type: int, minval: 0, "
      "maxval: 2, count: 3}\n");
  std::vector<json> created;
  Driver d(c, [](size_t t, size_t) {
    return t == 5 ? Outcome{0, ExitedReason::kInvalidHP} : Outcome{1, {}};
  });
  d.start();
  for (const auto& op : d.queue)
    if (auto* cr = std::get_if<Create>(&op)) created.push_back(cr->hparams);
  ASSERT_EQ(created.size(), 2u);  // max_concurrent_trials
  EXPECT_EQ(created[0], json::parse(R"({"a":1,"b":1,"c":2})"));
  EXPECT_EQ(created[1], json::parse(R"({"a":1,"b":1,"c":1})"));
  while (d.step()) {
  }
  EXPECT_EQ(d.ids.size(), 6u);
  for (const auto& id : d.ids) EXPECT_EQ(d.lengths[id], (std::vector<int64_t>{300}));
  EXPECT_TRUE(d.searcher.shutdown());
}

// ---- ASHA through the driver ------------------------------------------------------------------

TEST(Asha, InvalidHPIsReplacedAndRemovedFromRungs) {
  auto c = parse(
      "  name: async_halving\n  metric: loss\n  num_rungs: 2\n  divisor: 2\n  max_trials: 3\n"
      "  max_concurrent_trials: 1\n  max_length: {batches: 8}\n");
  Driver d(c, [](size_t t, size_t) {
    return t == 1 ? Outcome{0, ExitedReason::kInvalidHP} : Outcome{double(t), {}};
  });
  d.run();
  EXPECT_EQ(d.ids.size(), 4u);  // 3 valid trials + 1 replaced
  EXPECT_TRUE(d.searcher.shutdown());
  EXPECT_FALSE(d.searcher.snapshot().dump().empty());
}

TEST(Asha, SnapshotRestoreContinuesIdentically) {
  for (const std::string searcher :
       {"  name: adaptive_asha\n  metric: loss\n  max_trials: 16\n  max_length: {batches: 937}\n",
        "  name: async_halving\n  metric: loss\n  num_rungs: 3\n  max_trials: 10\n  divisor: 2\n"
        "  max_concurrent_trials: 3\n  stop_once: true\n  max_length: {epochs: 8}\n",
        "  name: random\n  metric: loss\n  max_trials: 5\n  max_concurrent_trials: 2\n  "
        "max_length: {batches: 8}\n",
        "  name: grid\n  metric: loss\n  max_concurrent_trials: 2\n  max_length: {batches: 8}\n"}) {
    auto c = parse(searcher,
                   "  x: {type: int, minval: 0, maxval: 3, count: 4}\n  y: {type: double, minval: "
                   "0, maxval: 1, count: 2}\n");
    auto metric = [](size_t t, size_t v) {
      if (t == 4 && v == 0) return Outcome{0, ExitedReason::kUserCanceled};
      return Outcome{double((t * 7919) % 13) + 0.1 * double(v), {}};
    };
    Driver full(c, metric);
    full.run();
    Driver first(c, metric);
    first.start();
    for (int i = 0; i < 25 && first.step(); ++i) {
    }
    Driver second(c, metric);
    second.resume_from(first);
    while (second.step()) {
    }
    EXPECT_EQ(second.log, full.log) << searcher;
    EXPECT_TRUE(second.searcher.shutdown());
    EXPECT_EQ(second.searcher.snapshot(), full.searcher.snapshot());
  }
}

TEST(AdaptiveAsha, EachTrialStaysInItsBracket) {
  auto c = parse(
      "  name: adaptive_asha\n  metric: loss\n  max_trials: 16\n  max_length: {batches: 937}\n");
  Driver d(c, [](size_t t, size_t) { return Outcome{double(t % 5), {}}; });
  d.run();
  EXPECT_EQ(d.ids.size(), 16u);
  auto& t = dynamic_cast<const TournamentSearch&>(d.searcher.method());
  int in0 = 0;
  for (const auto& id : d.ids) {
    int b = t.search_of(id);
    ASSERT_GE(b, 0);
    in0 += b == 0;
    // Bracket 0 starts at 58 batches, bracket 1 at 234.
    EXPECT_EQ(d.lengths[id].front(), b == 0 ? 58 : 234);
  }
  EXPECT_EQ(in0, 12);
  EXPECT_TRUE(d.searcher.shutdown());
}

// ---- simulate() -------------------------------------------------------------------------------

json trial(int id, std::vector<int64_t> va, bool exit = false) {
  return {{"id", id}, {"validate_after", va}, {"early_exit", exit}};
}

TEST(Simulate, Single) {
  auto c = parse("  name: single\n  metric: loss\n  max_length: {batches: 100}\n");
  EXPECT_EQ(simulate(c, json::parse(R"({"trials": [{"metric": 0.5}]})")),
            (json{{"trials", {trial(1, {100})}}}));
}

TEST(Simulate, GridWithThreePointsAndAnEarlyExit) {
  auto c = parse(
      "  name: grid\n  metric: loss\n  max_concurrent_trials: 2\n  max_length: {epochs: 50}\n",
      "  x: {type: int, minval: 0, maxval: 2, count: 3}\n");
  auto got =
      simulate(c, json::parse(R"({"trials": [{"metric": 0.1}, {"metric": 0.2, "early_exit_at": 0},
                                                    {"metric": 0.3}, {"metric": 0.4}]})"));
  EXPECT_EQ(got, (json{{"trials", {trial(1, {50}), trial(2, {50}, true), trial(3, {50})}}}));
}

const char* kHalving =
    "  name: async_halving\n  metric: loss\n  num_rungs: 3\n  divisor: 2\n  max_trials: 4\n"
    "  max_concurrent_trials: 2\n  max_length: {batches: 8}\n";

TEST(Simulate, PromotionBasedAshaHandDerived) {
  // Rungs [2, 4, 8]. T2 (0.4) is promoted when it beats T1; T3 (0.3) takes the single rung-0
  // slot at once and then beats T2 in rung 1; T4 fills rung 0, which closes out T1, T4 and T2.
  auto c = parse(kHalving);
  auto trials = json::parse(
      R"({"trials": [{"metric": 0.5}, {"metric": 0.4}, {"metric": 0.3}, {"metric": 0.6}]})");
  EXPECT_EQ(
      simulate(c, trials),
      (json{{"trials", {trial(1, {2}), trial(2, {2, 4}), trial(3, {2, 4, 8}), trial(4, {2})}}}));
  // T2 exits at its rung-1 validation: it reports the worst value there, which still lets T3 up.
  trials["trials"][1]["early_exit_at"] = 1;
  EXPECT_EQ(simulate(c, trials),
            (json{{"trials",
                   {trial(1, {2}), trial(2, {2, 4}, true), trial(3, {2, 4, 8}), trial(4, {2})}}}));
  // Larger is better flips the order: 0.6 and 0.5 become the best.
  auto c2 = parse(std::string(kHalving) + "  smaller_is_better: false\n");
  trials["trials"][1].erase("early_exit_at");
  // T1 0.5 gets no slot; T2 (worse) opens one, which goes to T1; T3 gets none (1 slot of 3).
  // T1 alone in rung 1 gets no slot -> T4 is created; T4 0.6 lands at index 0 < 2 slots and is
  // promoted, filling rung 0 (closes T2, T3); in rung 1 T4 beats T1 (closed) and runs to 8.
  EXPECT_EQ(
      simulate(c2, trials),
      (json{{"trials", {trial(1, {2, 4}), trial(2, {2}), trial(3, {2}), trial(4, {2, 4, 8})}}}));
}

TEST(Simulate, StoppingBasedAshaHandDerived) {
  // The first two trials are alone in every rung (the first always continues) and run to 8;
  // T3 is best in rung 0 and rung 1; T4 is 4th of 4 in rung 0 where 2 continue.
  auto c = parse(std::string(kHalving) + "  stop_once: true\n");
  auto trials = json::parse(
      R"({"trials": [{"metric": 0.5}, {"metric": 0.4}, {"metric": 0.3}, {"metric": 0.6}]})");
  EXPECT_EQ(
      simulate(c, trials),
      (json{{"trials",
             {trial(1, {2, 4, 8}), trial(2, {2, 4, 8}), trial(3, {2, 4, 8}), trial(4, {2})}}}));
}

TEST(Simulate, DeterministicWithASeed) {
  auto c = parse(
      "  name: adaptive_asha\n  metric: loss\n  max_trials: 16\n  max_length: {batches: 937}\n");
  json trials = {{"trials", json::array()}};
  for (int i = 0; i < 16; ++i) trials["trials"].push_back({{"metric", (i * 37) % 11}});
  trials["trials"][3]["early_exit_at"] = 0;
  auto a = simulate(c, trials), b = simulate(c, trials);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a["trials"].size(), 16u);
  EXPECT_TRUE(a["trials"][3]["early_exit"].get<bool>());
}

TEST(Simulate, ErrorsAreOneLineConfigErrors) {
  auto c = parse("  name: random\n  metric: loss\n  max_trials: 3\n  max_length: {batches: 10}\n");
  auto message = [&](const std::string& text) {
    try {
      simulate(c, json::parse(text));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(R"({"trials": [{"metric": 1}]})").find("more than the 1 trials"),
            std::string::npos);
  EXPECT_NE(message(R"([1, 2])").find("TRIALS.json"), std::string::npos);
  EXPECT_NE(message(R"({"trials": [{"metric": "x"}]})").find("trials[0].metric: expected a number"),
            std::string::npos);
  EXPECT_NE(message(R"({"trials": [{"metric": 1, "early_exit_at": -1}]})").find("early_exit_at"),
            std::string::npos);
  EXPECT_NE(message(R"({"trials": [{"metric": 1, "metrc": 2}]})").find("unknown key"),
            std::string::npos);
  for (const auto& m : {message(R"({"trials": 3})"), message(R"({"trials": [{"metric": 1}]})")})
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
}

// ---- Rungs of equal length (small max_length, large divisor) ---------------------------------

// Rungs [1, 1, 2]. A trial that goes on from rung 0 has already trained rung 1's length: it is
// judged in rung 1 at once with the metric it has (asha_stopping.go's loop over every rung a
// validation reaches), never asked to validate again at a length it already reported (which
// Determined's searcher refuses as an operation "already completed").
TEST(Simulate, EqualRungLengthsStoppingBased) {
  for (const char* divisor : {"2", "4"}) {
    auto c = parse(std::string("  name: async_halving\n  metric: loss\n  num_rungs: 3\n") +
                   "  divisor: " + divisor +
                   "\n  max_trials: 4\n  max_concurrent_trials: 1\n  stop_once: true\n"
                   "  max_length: {batches: 2}\n");
    auto trials = json::parse(
        R"({"trials": [{"metric": 0.5}, {"metric": 0.4}, {"metric": 0.3}, {"metric": 0.6}]})");
    // T1..T3 are each the best so far in rungs 0 and 1 and train on to 2; T4 is last in rung 0.
    EXPECT_EQ(
        simulate(c, trials),
        (json{{"trials", {trial(1, {1, 2}), trial(2, {1, 2}), trial(3, {1, 2}), trial(4, {1})}}}))
        << "divisor " << divisor;
  }
}

TEST(Asha, EqualRungLengthsStoppingBasedStopsInTheSecondRung) {
  // Divisor 2, rungs [1, 1, 2]. T4 (0.45) is 2nd of 4 in rung 0 (2 go on), then 2nd of 3 in
  // rung 1 (1 goes on): stopped there, in the same report; a fifth trial takes its place.
  auto c = parse(
      "  name: async_halving\n  metric: loss\n  num_rungs: 3\n  divisor: 2\n  max_trials: 5\n"
      "  max_concurrent_trials: 1\n  stop_once: true\n  max_length: {batches: 2}\n");
  std::vector<double> m = {0.5, 0.4, 0.6, 0.45, 0.7};
  Driver d(c, [&](size_t t, size_t) { return Outcome{m[t], {}}; });
  d.run();
  ASSERT_EQ(d.ids.size(), 5u);
  std::vector<std::vector<int64_t>> want = {{1, 2}, {1, 2}, {1}, {1}, {1}};
  for (size_t i = 0; i < 5; ++i) EXPECT_EQ(d.lengths[d.ids[i]], want[i]) << "trial " << i + 1;
  const auto& asha = dynamic_cast<const AsyncHalvingSearch&>(d.searcher.method());
  EXPECT_EQ(asha.rungs()[0].metrics.size(), 5u);
  EXPECT_EQ(asha.rungs()[1].metrics.size(), 3u);  // T1, T2, T4
  EXPECT_EQ(asha.rungs()[2].metrics.size(), 2u);
  EXPECT_TRUE(d.searcher.shutdown());
}

TEST(Simulate, EqualRungLengthsPromotionBased) {
  // Divisor 2, rungs [1, 1, 2]. T2 (0.4) is promoted from rung 0 when it arrives and is alone in
  // rung 1 (no slot yet); T3 (0.3) is promoted from rung 0, takes rung 1's slot in the same
  // report and trains to 2. T4 fills rung 0, which closes everyone else.
  auto c = parse(
      "  name: async_halving\n  metric: loss\n  num_rungs: 3\n  divisor: 2\n  max_trials: 4\n"
      "  max_concurrent_trials: 1\n  max_length: {batches: 2}\n");
  auto trials = json::parse(
      R"({"trials": [{"metric": 0.5}, {"metric": 0.4}, {"metric": 0.3}, {"metric": 0.6}]})");
  EXPECT_EQ(simulate(c, trials),
            (json{{"trials", {trial(1, {1}), trial(2, {1}), trial(3, {1, 2}), trial(4, {1})}}}));
  // Divisor 4: rung 0's single slot opens with the 4th report and goes to T3 (best), which is
  // then alone in rung 1: no trial reaches 2 batches, and the search still ends.
  auto c4 = parse(
      "  name: async_halving\n  metric: loss\n  num_rungs: 3\n  divisor: 4\n  max_trials: 4\n"
      "  max_concurrent_trials: 1\n  max_length: {batches: 2}\n");
  EXPECT_EQ(simulate(c4, trials),
            (json{{"trials", {trial(1, {1}), trial(2, {1}), trial(3, {1}), trial(4, {1})}}}));
  std::string text = preview_search(c4);
  // Preview: trial n reports n, so the first is best; 4 trials in rung 0, 1 in rung 1.
  EXPECT_NE(text.find("     1       4  1\n     2       1  1\n     3       0  2\n"),
            std::string::npos)
      << text;
}

// Every regime of rung lengths, both variants, many outcomes: the search ends with every trial
// closed, and no trial is ever asked to validate at a length it already reported.
TEST(Asha, AnyRungLengthsEndAndNeverRepeatALength) {
  int configs = 0;
  for (const char* divisor : {"1.2", "2", "3", "4", "10"})
    for (int length : {1, 2, 3, 5, 8})
      for (int rungs : {1, 2, 3, 4})
        for (const char* stop_once : {"false", "true"})
          for (int mct : {1, 3}) {
            auto c = parse(std::string("  name: async_halving\n  metric: loss\n") +
                           "  num_rungs: " + std::to_string(rungs) + "\n  divisor: " + divisor +
                           "\n  max_trials: 9\n  max_concurrent_trials: " + std::to_string(mct) +
                           "\n  stop_once: " + stop_once +
                           "\n  max_length: {batches: " + std::to_string(length) + "}\n");
            for (int seed = 0; seed < 4; ++seed) {
              Driver d(c, [&](size_t t, size_t v) {
                if (seed == 3 && t == 2 && v == 0) return Outcome{0, ExitedReason::kUserCanceled};
                return Outcome{double((t * 7919 + v * 31 + static_cast<size_t>(seed) * 101) % 17),
                               {}};
              });
              d.run();
              std::string what = std::string("divisor ") + divisor + ", length " +
                                 std::to_string(length) + ", rungs " + std::to_string(rungs) +
                                 ", stop_once " + stop_once + ", mct " + std::to_string(mct) +
                                 ", seed " + std::to_string(seed);
              EXPECT_TRUE(d.searcher.shutdown()) << what;
              EXPECT_EQ(d.ids.size(), 9u) << what;
              for (const auto& id : d.ids) {
                const auto& ls = d.lengths[id];
                for (size_t i = 1; i < ls.size(); ++i) EXPECT_LT(ls[i - 1], ls[i]) << what;
                if (!ls.empty()) {
                  EXPECT_LE(ls.back(), length) << what;
                }
              }
              ++configs;
            }
          }
  EXPECT_EQ(configs, 5 * 5 * 4 * 2 * 2 * 4);
}

TEST(PreviewSearch, AdaptiveAshaShowsBracketsAndRungs) {
  auto c = parse(
      "  name: adaptive_asha\n  metric: loss\n  max_trials: 16\n  max_length: {batches: 937}\n");
  std::string text = preview_search(c);
  EXPECT_NE(text.find("Bracket 1: 3 rungs, 12 trials, 8 concurrent"), std::string::npos) << text;
  EXPECT_NE(text.find("Bracket 2: 2 rungs, 4 trials"), std::string::npos) << text;
  EXPECT_NE(text.find("58"), std::string::npos) << text;
  EXPECT_NE(text.find("batches"), std::string::npos) << text;
  auto g = parse("  name: grid\n  metric: loss\n  max_length: {epochs: 3}\n",
                 "  x: {type: int, minval: 0, maxval: 2, count: 3}\n");
  std::string gt = preview_search(g);
  EXPECT_NE(gt.find("3 grid points"), std::string::npos) << gt;
  EXPECT_NE(gt.find("Total: 3 trials, 9 epochs of training"), std::string::npos) << gt;
}

}  // namespace
}  // namespace det::search
