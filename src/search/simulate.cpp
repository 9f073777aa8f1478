#include <deque>
#include <functional>
#include <optional>
#include <sstream>

#include "det/search/bohb.h"
#include "det/search/searcher.h"
#include "det/util/error.h"

namespace det::search {
namespace {

/// A predefined trial: the metric it reports and the ValidateAfter (from 0) it exits early at.
struct Predefined {
  double metric = 0;
  std::optional<int64_t> early_exit_at;
};

/// What happened to one simulated trial.
struct SimTrial {
  std::string request_id;
  Predefined def;
  std::vector<int64_t> validate_after;
  bool early_exit = false;
  bool closed = false;
};

std::vector<Predefined> parse_trials(const nlohmann::json& j) {
  const std::string where = "TRIALS.json";
  if (!j.is_object() || !j.contains("trials"))
    throw ConfigError(where + ": expected an object with a \"trials\" list, found " +
                      j.dump().substr(0, 60));
  const auto& list = j.at("trials");
  if (!list.is_array())
    throw ConfigError(where + ": \"trials\" must be a list, found " + list.dump().substr(0, 60));
  std::vector<Predefined> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& t = list[i];
    std::string at = where + ": trials[" + std::to_string(i) + "]";
    if (!t.is_object())
      throw ConfigError(at + ": expected an object like {\"metric\": 0.5}, found " + t.dump());
    for (const auto& [key, value] : t.items()) {
      (void)value;
      if (key != "metric" && key != "early_exit_at")
        throw ConfigError(at + ": unknown key \"" + key + "\" (expected metric, early_exit_at)");
    }
    if (!t.contains("metric") || !t.at("metric").is_number())
      throw ConfigError(at + ".metric: expected a number, found " +
                        (t.contains("metric") ? t.at("metric").dump() : "nothing"));
    Predefined p;
    p.metric = t.at("metric").get<double>();
    if (t.contains("early_exit_at")) {
      const auto& e = t.at("early_exit_at");
      if (!e.is_number_integer() || e.get<int64_t>() < 0)
        throw ConfigError(at + ".early_exit_at: expected an integer >= 0, found " + e.dump());
      p.early_exit_at = e.get<int64_t>();
    }
    out.push_back(p);
  }
  return out;
}

/// Runs the FIFO simulation; `next` gives the predefined trial for the n-th Create (or nullopt).
std::vector<SimTrial> run(Searcher& searcher,
                          const std::function<std::optional<Predefined>(size_t)>& next) {
  std::vector<SimTrial> trials;
  std::map<std::string, size_t> by_id;
  auto initial = searcher.initial_operations();
  std::deque<Operation> queue(initial.begin(), initial.end());
  auto push = [&](std::vector<Operation> ops) {
    queue.insert(queue.end(), ops.begin(), ops.end());
  };
  while (!queue.empty()) {
    Operation op = std::move(queue.front());
    queue.pop_front();
    if (auto* c = std::get_if<Create>(&op)) {
      auto def = next(trials.size());
      if (!def)
        throw ConfigError("TRIALS.json: the searcher creates more than the " +
                          std::to_string(trials.size()) +
                          " trials defined; add more entries to \"trials\"");
      by_id[c->request_id] = trials.size();
      trials.push_back(SimTrial{c->request_id, *def, {}, false, false});
      push(searcher.trial_created(c->request_id));
    } else if (auto* v = std::get_if<ValidateAfter>(&op)) {
      auto it = by_id.find(v->request_id);
      if (it == by_id.end()) continue;
      SimTrial& t = trials[it->second];
      if (t.early_exit || t.closed) continue;  // the trial is gone: nobody trains it
      auto index = static_cast<int64_t>(t.validate_after.size());
      t.validate_after.push_back(v->length);
      if (t.def.early_exit_at && *t.def.early_exit_at == index) {
        t.early_exit = true;
        t.closed = true;
        push(searcher.trial_exited_early(t.request_id, ExitedReason::kUserCanceled));
        push(searcher.trial_closed(t.request_id));
      } else {
        push(searcher.validation_completed(t.request_id, t.def.metric, v->length));
      }
    } else if (auto* cl = std::get_if<Close>(&op)) {
      auto it = by_id.find(cl->request_id);
      if (it == by_id.end() || trials[it->second].closed) continue;
      trials[it->second].closed = true;
      push(searcher.trial_closed(cl->request_id));
    }
    // Shutdown: nothing left to do; the queue drains on its own.
  }
  return trials;
}

std::string unit_of(const config::ExperimentConfig& c) {
  return c.searcher.max_length ? config::unit_name(c.searcher.max_length->unit) : "batches";
}

}  // namespace

nlohmann::json simulate(const config::ExperimentConfig& config, const nlohmann::json& trials_json) {
  auto defs = parse_trials(trials_json);
  Searcher searcher(config, experiment_seed(config));
  auto trials = run(searcher, [&](size_t i) -> std::optional<Predefined> {
    if (i < defs.size()) return defs[i];
    return std::nullopt;
  });
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < trials.size(); ++i)
    out.push_back({{"id", i + 1},
                   {"validate_after", trials[i].validate_after},
                   {"early_exit", trials[i].early_exit}});
  return {{"trials", out}};
}

std::string preview_search(const config::ExperimentConfig& config) {
  const auto& s = config.searcher;
  std::string unit = unit_of(config);
  // Trial n reports metric n: a fixed, ordered outcome so the preview is the same every time.
  Searcher searcher(config, config.experiment_seed.value_or(0));
  auto trials = run(searcher, [&](size_t i) -> std::optional<Predefined> {
    if (i > 1000000) return std::nullopt;
    Predefined p;
    p.metric = static_cast<double>(s.smaller_is_better ? i : -static_cast<double>(i));
    return p;
  });

  std::ostringstream out;
  out << "Searcher: " << s.name;
  if (s.max_length) out << ", max_length " << s.max_length->value << " " << unit;
  const bool adaptive = s.name == "adaptive_asha" || s.name == "bohb";
  if (s.name == "random" || s.name == "async_halving" || adaptive)
    out << ", max_trials " << s.max_trials;
  if (s.name == "async_halving" || adaptive) {
    out << ", divisor " << s.divisor << (s.stop_once ? ", stopping-based" : ", promotion-based");
    if (adaptive) out << ", mode " << s.mode;
  }
  out << ", max_concurrent_trials " << (s.name == "single" ? 1 : s.max_concurrent_trials) << "\n";
  const SearchMethod* method = &searcher.method();
  if (auto* bohb = dynamic_cast<const BohbSearch*>(method)) {
    out << "New trials: random until a rung has " << bohb->min_observations()
        << " results, then proposed by a TPE model of the longest such rung (top " << s.top_fraction
        << " good, " << s.candidates << " candidates, bandwidth x" << s.bandwidth_factor
        << "), except a random " << s.random_fraction << " of them\n";
    // Trials created before any result exists can only be random: max_concurrent_trials of them.
    Searcher probe(config, config.experiment_seed.value_or(0));
    int upfront = 0;
    for (const auto& op : probe.initial_operations()) upfront += std::holds_alternative<Create>(op);
    if (upfront >= bohb->min_observations())
      out << "Note: " << upfront << " of the " << s.max_trials
          << " trials are created before any result (max_concurrent_trials "
          << s.max_concurrent_trials
          << "); set max_concurrent_trials to the trials that run at once (the slots) so that "
             "the model proposes the rest\n";
    method = &bohb->tournament();
  }

  // Group trials by bracket (one group unless adaptive ASHA).
  std::vector<std::vector<const SimTrial*>> groups;
  std::vector<std::vector<int64_t>> rung_lengths;
  std::vector<std::vector<size_t>> reached;  // trials that reported in each rung
  std::vector<std::string> titles;
  auto add_rungs = [&](const AsyncHalvingSearch& asha) {
    std::vector<int64_t> lengths;
    std::vector<size_t> counts;
    for (const auto& rung : asha.rungs()) {
      lengths.push_back(rung.units_needed);
      counts.push_back(rung.metrics.size());
    }
    rung_lengths.push_back(lengths);
    reached.push_back(counts);
  };
  if (auto* t = dynamic_cast<const TournamentSearch*>(method)) {
    for (size_t b = 0; b < t->searches().size(); ++b) {
      auto* asha = dynamic_cast<const AsyncHalvingSearch*>(t->searches()[b].get());
      const auto& p = asha->params();
      groups.emplace_back();
      add_rungs(*asha);
      titles.push_back("Bracket " + std::to_string(b + 1) + ": " + std::to_string(p.num_rungs) +
                       " rungs, " + std::to_string(p.max_trials) + " trials, " +
                       std::to_string(p.max_concurrent_trials) + " concurrent");
    }
    for (const auto& tr : trials)
      groups[static_cast<size_t>(t->search_of(tr.request_id))].push_back(&tr);
  } else {
    groups.emplace_back();
    for (const auto& tr : trials) groups[0].push_back(&tr);
    if (auto* asha = dynamic_cast<const AsyncHalvingSearch*>(method)) {
      add_rungs(*asha);
      titles.push_back(std::to_string(asha->params().num_rungs) + " rungs");
    } else {
      rung_lengths.push_back({s.max_length ? s.max_length->value : 0});
      reached.push_back({trials.size()});
      titles.push_back(s.name == "grid" ? std::to_string(trials.size()) + " grid points" : "");
    }
  }

  int64_t grand_total = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    if (!titles[g].empty()) out << titles[g] << "\n";
    out << "  Rung  Trials  Training length (" << unit << ")\n";
    for (size_t r = 0; r < rung_lengths[g].size(); ++r) {
      int64_t len = rung_lengths[g][r];
      size_t count = reached[g][r];
      out << "  " << std::string(r + 1 < 10 ? 3 : 2, ' ') << (r + 1) << "  "
          << std::string(6 - std::min<size_t>(6, std::to_string(count).size()), ' ') << count
          << "  " << len << "\n";
    }
    int64_t total = 0;
    for (const auto* tr : groups[g])
      if (!tr->validate_after.empty()) total += tr->validate_after.back();
    grand_total += total;
    out << "  Total: " << groups[g].size() << " trials, " << total << " " << unit
        << " of training\n";
  }
  if (groups.size() > 1)
    out << "All brackets: " << trials.size() << " trials, " << grand_total << " " << unit
        << " of training\n";
  return out.str();
}

}  // namespace det::search
