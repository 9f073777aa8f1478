#pragma once
// Test helpers for searchers: a config from a searcher section, and a FIFO driver that carries
// out a Searcher's operations with made-up outcomes (the simulation, step by step).

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "det/search/searcher.h"

namespace det::search::testing {

inline config::ExperimentConfig parse(const std::string& searcher_yaml,
                                      const std::string& hparams_yaml = "  x: 1\n", int seed = 7) {
  std::string yaml =
      "name: t\nentrypoint: mnist\nreproducibility:\n  experiment_seed: " + std::to_string(seed) +
      "\nhyperparameters:\n" + hparams_yaml + "searcher:\n" + searcher_yaml;
  return config::parse_experiment_config(yaml, "exp.yaml");
}

// ---- A FIFO driver over a Searcher (the simulation, step by step) ----------------------------

/// Outcome of a ValidateAfter: the metric, or an early exit for the given reason.
struct Outcome {
  double metric = 0;
  std::optional<ExitedReason> exit;
};

struct Driver {
  Searcher searcher;
  std::deque<Operation> queue;
  std::vector<std::string> ids;  // creation order
  std::map<std::string, std::vector<int64_t>> lengths;
  std::set<std::string> gone;
  std::vector<std::string> log;                   // every operation handled, as text
  std::map<std::string, nlohmann::json> hparams;  // as each trial was created
  int64_t current_length = 0;                     // of the ValidateAfter being answered
  std::function<Outcome(size_t trial, size_t validation)> outcome;

  Driver(const config::ExperimentConfig& c, std::function<Outcome(size_t, size_t)> f)
      : searcher(c, *c.experiment_seed), outcome(std::move(f)) {}
  void start() { push(searcher.initial_operations()); }
  /// Continues where `first` stopped, as a restarted master would: the searcher restored from
  /// `first`'s snapshot (through text, as on disk), its queue and everything seen so far.
  void resume_from(const Driver& first) {
    searcher.restore(nlohmann::json::parse(first.searcher.snapshot().dump()));
    queue = first.queue;
    ids = first.ids;
    lengths = first.lengths;
    gone = first.gone;
    log = first.log;
    hparams = first.hparams;
  }
  void push(std::vector<Operation> ops) { queue.insert(queue.end(), ops.begin(), ops.end()); }
  bool step() {
    if (queue.empty()) return false;
    Operation op = queue.front();
    queue.pop_front();
    log.push_back(to_string(op));
    if (auto* c = std::get_if<Create>(&op)) {
      ids.push_back(c->request_id);
      hparams[c->request_id] = c->hparams;
      push(searcher.trial_created(c->request_id));
    } else if (auto* v = std::get_if<ValidateAfter>(&op)) {
      if (gone.count(v->request_id)) return true;
      auto& ls = lengths[v->request_id];
      size_t t =
          static_cast<size_t>(std::find(ids.begin(), ids.end(), v->request_id) - ids.begin());
      current_length = v->length;
      Outcome o = outcome(t, ls.size());
      ls.push_back(v->length);
      if (o.exit) {
        gone.insert(v->request_id);
        push(searcher.trial_exited_early(v->request_id, *o.exit));
        push(searcher.trial_closed(v->request_id));
      } else {
        push(searcher.validation_completed(v->request_id, o.metric, v->length));
      }
    } else if (auto* cl = std::get_if<Close>(&op)) {
      if (gone.count(cl->request_id)) return true;
      gone.insert(cl->request_id);
      push(searcher.trial_closed(cl->request_id));
    }
    return true;
  }
  void run() {
    start();
    while (step()) {
    }
  }
};

}  // namespace det::search::testing
