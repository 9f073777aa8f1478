#include <deque>
#include <functional>
#include <optional>
#include <sstream>

#include "det/config/args.h"
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

// TRIALS.json through the strict reader of user-supplied settings: every error names the file,
// the key path, what was expected and what was found.
std::vector<Predefined> parse_trials(const nlohmann::json& j) {
  auto sources = std::make_shared<config::SourceMap>();
  for (const char* path : {"", "trials"}) sources->add(path, "TRIALS.json");
  const config::Args root(j, "", sources);
  if (!root.is_object()) root.fail_expected("a mapping with a \"trials\" list");
  root.check_keys({"trials"});
  const config::Args list = root["trials"];
  if (!list.is_array()) list.fail_expected("a list of trials like {\"metric\": 0.5}");
  std::vector<Predefined> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const config::Args t = list[i].as<config::Args>();
    t.check_keys({"metric", "early_exit_at"});
    Predefined p;
    p.metric = t.get<double>("metric");
    if (t.has("early_exit_at"))
      p.early_exit_at = t.get<int64_t>("early_exit_at", config::Range::at_least(0));
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

namespace {

// "Searcher: asha, max_length 100 batches, max_trials 16, ...": the settings that shape the search.
std::string searcher_line(const config::SearcherConfig& s, const std::string& unit) {
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
  return out.str();
}

// How BOHB proposes trials, and a note when max_concurrent_trials leaves the model nothing to
// propose.
std::string bohb_lines(const config::ExperimentConfig& config, const BohbSearch& bohb) {
  const auto& s = config.searcher;
  std::ostringstream out;
  out << "New trials: random until a rung has " << bohb.min_observations()
      << " results, then proposed by a TPE model of the longest such rung (top " << s.top_fraction
      << " good, " << s.candidates << " candidates, bandwidth x" << s.bandwidth_factor
      << "), except a random " << s.random_fraction << " of them\n";
  // Trials created before any result exists can only be random: max_concurrent_trials of them.
  Searcher probe(config, config.experiment_seed.value_or(0));
  int upfront = 0;
  for (const auto& op : probe.initial_operations()) upfront += std::holds_alternative<Create>(op);
  if (upfront >= bohb.min_observations())
    out << "Note: " << upfront << " of the " << s.max_trials
        << " trials are created before any result (max_concurrent_trials "
        << s.max_concurrent_trials
        << "); set max_concurrent_trials to the trials that run at once (the slots) so that "
           "the model proposes the rest\n";
  return out.str();
}

// The simulated trials grouped by bracket (one group unless adaptive ASHA), with each group's
// rung lengths and the trials that reported in each rung.
struct Group {
  std::string title;
  std::vector<const SimTrial*> trials;
  std::vector<int64_t> rung_lengths;
  std::vector<size_t> reached;
};

Group rungs_of(const AsyncHalvingSearch& asha, std::string title) {
  Group g;
  g.title = std::move(title);
  for (const auto& rung : asha.rungs()) {
    g.rung_lengths.push_back(rung.units_needed);
    g.reached.push_back(rung.metrics.size());
  }
  return g;
}

std::vector<Group> group_trials(const SearchMethod* method, const std::vector<SimTrial>& trials,
                                const config::SearcherConfig& s) {
  std::vector<Group> groups;
  if (auto* t = dynamic_cast<const TournamentSearch*>(method)) {
    for (size_t b = 0; b < t->searches().size(); ++b) {
      auto* asha = dynamic_cast<const AsyncHalvingSearch*>(t->searches()[b].get());
      const auto& p = asha->params();
      groups.push_back(
          rungs_of(*asha, "Bracket " + std::to_string(b + 1) + ": " + std::to_string(p.num_rungs) +
                              " rungs, " + std::to_string(p.max_trials) + " trials, " +
                              std::to_string(p.max_concurrent_trials) + " concurrent"));
    }
    for (const auto& tr : trials)
      groups[static_cast<size_t>(t->search_of(tr.request_id))].trials.push_back(&tr);
    return groups;
  }
  if (auto* asha = dynamic_cast<const AsyncHalvingSearch*>(method)) {
    groups.push_back(rungs_of(*asha, std::to_string(asha->params().num_rungs) + " rungs"));
  } else {
    Group g;
    g.rung_lengths = {s.max_length ? s.max_length->value : 0};
    g.reached = {trials.size()};
    g.title = s.name == "grid" ? std::to_string(trials.size()) + " grid points" : "";
    groups.push_back(g);
  }
  for (const auto& tr : trials) groups[0].trials.push_back(&tr);
  return groups;
}

// One group's rung table and total; returns its training total.
int64_t print_group(std::ostream& out, const Group& g, const std::string& unit) {
  if (!g.title.empty()) out << g.title << "\n";
  out << "  Rung  Trials  Training length (" << unit << ")\n";
  for (size_t r = 0; r < g.rung_lengths.size(); ++r) {
    const std::string count = std::to_string(g.reached[r]);
    out << "  " << std::string(r + 1 < 10 ? 3 : 2, ' ') << (r + 1) << "  "
        << std::string(6 - std::min<size_t>(6, count.size()), ' ') << count << "  "
        << g.rung_lengths[r] << "\n";
  }
  int64_t total = 0;
  for (const auto* tr : g.trials)
    if (!tr->validate_after.empty()) total += tr->validate_after.back();
  out << "  Total: " << g.trials.size() << " trials, " << total << " " << unit << " of training\n";
  return total;
}

}  // namespace

std::string preview_search(const config::ExperimentConfig& config) {
  const auto& s = config.searcher;
  const std::string unit = unit_of(config);
  // Trial n reports metric n: a fixed, ordered outcome so the preview is the same every time.
  Searcher searcher(config, config.experiment_seed.value_or(0));
  auto trials = run(searcher, [&](size_t i) -> std::optional<Predefined> {
    if (i > 1000000) return std::nullopt;
    Predefined p;
    p.metric = static_cast<double>(s.smaller_is_better ? i : -static_cast<double>(i));
    return p;
  });

  std::ostringstream out;
  out << searcher_line(s, unit);
  const SearchMethod* method = &searcher.method();
  if (auto* bohb = dynamic_cast<const BohbSearch*>(method)) {
    out << bohb_lines(config, *bohb);
    method = &bohb->tournament();
  }
  const auto groups = group_trials(method, trials, s);
  int64_t grand_total = 0;
  for (const auto& g : groups) grand_total += print_group(out, g, unit);
  if (groups.size() > 1)
    out << "All brackets: " << trials.size() << " trials, " << grand_total << " " << unit
        << " of training\n";
  return out.str();
}

}  // namespace det::search
