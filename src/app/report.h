#pragma once
// Internal to the app layer: the experiment page of `det-run report` (one self-contained HTML
// file) and `det-run serve` (the same page, live).

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "det/experiment/store.h"

namespace det::app {

/// Everything the experiment page shows, from the store: the experiment (config, searcher,
/// state, times, the searcher's rungs in batches), its hyperparameter columns, and per trial its
/// state, hyperparameters (flattened), best and latest searcher metric, batches, restarts,
/// checkpoints, training and validation series. det::Error when the store has no such experiment.
nlohmann::json experiment_view(experiment::ExperimentStore& store, int64_t experiment_id);

/// `s` with & < > " as HTML entities (text and attribute values of det's pages).
std::string escape_html(const std::string& s);

/// Plotly's JavaScript bundle (Debian's python3-plotly, or the file DET_PLOTLY_JS names);
/// det::Error saying how to install it when absent.
std::string plotly_js();

/// The experiment page. With `view`, a self-contained report: the view and `plotly` (the
/// library's text) are embedded. Without, the live page of `det-run serve`, which loads
/// /static/plotly.js and polls `live_url` every `interval_ms`.
std::string experiment_page(const nlohmann::json* view, const std::string& plotly,
                            const std::string& live_url = "", int interval_ms = 2000);

/// `det-run report [RUN_DIR | EXPERIMENT_ID] [-o FILE] [--store PATH]`: writes the report and
/// prints its path.
int write_report(const std::string& target, const std::string& out, const std::string& store);

/// `det-run serve [--port P] [--host H] [--store PATH]`: the live view until SIGINT/SIGTERM.
int serve(const std::string& store, const std::string& host, int port,
          const std::atomic<bool>* stop);

}  // namespace det::app
