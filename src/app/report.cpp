#include "report.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <set>

#include "det/config/experiment_config.h"
#include "det/config/metric.h"
#include "det/experiment/tensorboard_log.h"
#include "det/record/experiment_summary.h"
#include "det/record/run_dir.h"
#include "det/record/states.h"
#include "det/record/worker_protocol.h"
#include "det/search/search_method.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/strings.h"
#include "queries.h"

namespace det::app {
namespace web {
extern const char kReportHtml[];
extern const char kReportJs[];
}  // namespace web

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json value_or_null(const std::optional<double>& v) { return v ? json(*v) : json(nullptr); }

// The searcher's rung lengths in batches (ASHA searchers; none for the others), converted with
// the trials' own batches per epoch where the searcher counts epochs.
json rungs_in_batches(const json& config_json,
                      const std::vector<experiment::MetricRow>& some_rows) {
  json out = json::array();
  config::ExperimentConfig c;
  try {
    c = config::parse_experiment_config(config_json.dump(), "the stored config");
  } catch (const std::exception&) {
    return out;  // a config this det cannot read: the page shows no rungs
  }
  const auto& s = c.searcher;
  if (!s.max_length) return out;
  std::set<int64_t> lengths;
  if (s.name == "async_halving") {
    for (auto r : search::make_rungs(s.num_rungs, s.max_length->value, s.divisor))
      lengths.insert(r);
  } else if (s.name == "adaptive_asha" || s.name == "bohb") {
    for (const auto& b : search::make_adaptive_brackets(s))
      for (auto r : search::make_rungs(b.num_rungs, b.max_length, b.divisor)) lengths.insert(r);
  }
  double per_unit = 1;  // batches per unit of the searcher's length
  if (s.max_length->unit == config::Unit::kRecords) {
    auto gbs = c.hyperparameters.find("global_batch_size");
    if (gbs == c.hyperparameters.end() || !gbs->second.val.is_number()) return out;
    per_unit = 1.0 / std::max(1.0, gbs->second.val.get<double>());
  } else if (s.max_length->unit == config::Unit::kEpochs) {
    per_unit = 0;
    for (const auto& r : some_rows)
      if (r.epochs > 0) {
        per_unit = static_cast<double>(r.batches) / r.epochs;
        break;
      }
    if (per_unit == 0) return out;
  }
  for (auto l : lengths)
    out.push_back(static_cast<int64_t>(static_cast<double>(l) * per_unit + 0.5));
  return out;
}

// A trial's series, column-wise: {"batches": [...], "time": [...], "metrics": {name: [...]}}; a
// metric missing from a report is null there.
json series(const std::vector<experiment::MetricRow>& rows, const std::string& kind) {
  json batches = json::array(), times = json::array(), metrics = json::object();
  size_t n = 0;
  for (const auto& r : rows) {
    if (r.kind != kind) continue;
    batches.push_back(r.batches);
    times.push_back(r.time);
    if (r.metrics.is_object())
      for (const auto& [name, v] : r.metrics.items()) {
        auto& col = metrics[name];
        while (col.size() < n) col.push_back(nullptr);
        col.push_back(v.is_number() || v.is_string() ? v : json(nullptr));
      }
    ++n;
    for (auto& [name, col] : metrics.items())
      while (col.size() < n) col.push_back(nullptr);
  }
  return {{"batches", batches}, {"time", times}, {"metrics", metrics}};
}

// JSON inside a <script> element. Its text is raw to the HTML parser, which still looks for
// "</script" and, after "<!--", for "<script" (the double-escaped state, where a later
// "</script>" no longer ends the element and the page's data swallows the rest). JSON has '<'
// only inside strings, where "\u003c" means the same: with no '<' left, neither can occur.
std::string script_json(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '<')
      out += "\\u003c";
    else
      out += c;
  }
  return out;
}

// Script text inside a <script> element: "</script" would end it early.
std::string script_text(const std::string& js) {
  std::string out;
  out.reserve(js.size());
  for (size_t i = 0; i < js.size(); ++i) {
    if (js[i] == '<' && i + 7 < js.size() && js[i + 1] == '/' &&
        (js.compare(i + 2, 6, "script") == 0 || js.compare(i + 2, 6, "SCRIPT") == 0)) {
      out += "<\\/";
      ++i;
    } else {
      out += js[i];
    }
  }
  return out;
}

// The template with each placeholder replaced, in one pass over the template only: what is put
// in (a name, the data) is never taken for a placeholder.
std::string fill(const std::string& tpl, const std::map<std::string, std::string>& values) {
  std::string out;
  size_t at = 0;
  for (;;) {
    size_t next = std::string::npos;
    const std::string* key = nullptr;
    for (const auto& [k, v] : values) {
      const auto p = tpl.find(k, at);
      if (p < next) {
        next = p;
        key = &k;
      }
    }
    if (!key) break;
    out.append(tpl, at, next - at);
    out += values.at(*key);
    at = next + key->size();
  }
  out.append(tpl, at, std::string::npos);
  return out;
}

}  // namespace

std::string escape_html(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

json experiment_view(experiment::ExperimentStore& store, int64_t experiment_id) {
  const auto e = store.experiment(experiment_id);
  const auto trials = store.trials(experiment_id);
  json view;
  view["generated"] = util::utc_now_iso8601();
  std::set<std::string> hparam_names;
  json trial_views = json::array();
  std::vector<experiment::MetricRow> first_rows;
  std::optional<double> best;
  std::optional<int64_t> best_trial;
  for (const auto& t : trials) {
    const auto rows = store.metrics(t.id);
    if (first_rows.empty()) first_rows = rows;
    const json flat = experiment::flat_hparams(t.hparams);
    for (const auto& [k, v] : flat.items()) hparam_names.insert(k);
    std::optional<double> latest;
    for (const auto& r : rows)
      if (r.kind == "validation" && r.metrics.contains(e.metric))
        latest = record::metric_value(r.metrics[e.metric]);
    json checkpoints = json::array();
    for (const auto& c : store.checkpoints(t.id, true))
      checkpoints.push_back({{"uuid", c.uuid},
                             {"batches", c.batches},
                             {"metric", value_or_null(c.metric)},
                             {"state", c.state},
                             {"time", c.time},
                             {"path", c.path}});
    if (t.best_metric && config::is_better(*t.best_metric, best, e.smaller_is_better)) {
      best = t.best_metric;
      best_trial = t.number;
    }
    trial_views.push_back({{"number", t.number},
                           {"id", t.id},
                           {"state", record::to_string(t.state)},
                           {"hparams", flat},
                           {"seed", t.seed},
                           {"restarts", t.restarts},
                           {"batches", t.batches_trained},
                           {"best_metric", value_or_null(t.best_metric)},
                           {"latest_metric", value_or_null(latest)},
                           {"start_time", t.start_time},
                           {"end_time", t.end_time},
                           {"checkpoints", checkpoints},
                           {"training", series(rows, "training")},
                           {"validation", series(rows, "validation")}});
  }
  view["experiment"] = {{"id", e.id},
                        {"name", e.name},
                        {"description", e.description},
                        {"state", record::to_string(e.state)},
                        {"searcher", e.searcher},
                        {"metric", e.metric},
                        {"smaller_is_better", e.smaller_is_better},
                        {"start_time", e.start_time},
                        {"end_time", e.end_time},
                        {"run_dir", e.run_dir},
                        {"config", e.config},
                        {"max_trials", e.config.value("/searcher/max_trials"_json_pointer, json())},
                        {"rungs_batches", rungs_in_batches(e.config, first_rows)}};
  view["hparam_names"] = json(std::vector<std::string>(hparam_names.begin(), hparam_names.end()));
  view["trials"] = trial_views;
  view["best_trial"] = best_trial ? json(*best_trial) : json(nullptr);
  return view;
}

std::string plotly_js() {
  const char* env = std::getenv("DET_PLOTLY_JS");
  std::vector<fs::path> candidates;
  if (env && *env) candidates.emplace_back(env);
  candidates.emplace_back("/usr/share/python3-plotly/plotly.js");
  for (const auto& p : candidates) {
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) continue;
    if (fs::file_size(p, ec) > (64u << 20))
      throw Error(p.string() + ": larger than 64 MB; not Plotly's bundle (DET_PLOTLY_JS)");
    return util::read_file(p);
  }
  throw Error(env && *env ? std::string("DET_PLOTLY_JS=") + env + ": no such file"
                          : "the report's charts need Plotly's JavaScript bundle: install "
                            "Debian's python3-plotly (scripts/setup.sh does), or set "
                            "DET_PLOTLY_JS to a plotly.js file");
}

std::string experiment_page(const json* view, const std::string& plotly,
                            const std::string& live_url, int interval_ms) {
  std::string title = "det experiment";
  if (view) title = "det: " + view->at("experiment").value("name", std::string("experiment"));
  std::string lib = view ? "<script>" + script_text(plotly) + "</script>"
                         : "<script src=\"/static/plotly.js\"></script>";
  std::string data =
      view ? "window.DET_DATA = " + script_json(*view) + ";"
           : "window.DET_LIVE = " + script_json({{"url", live_url}, {"interval_ms", interval_ms}}) +
                 ";";
  return fill(web::kReportHtml, {{"@TITLE@", escape_html(title)},
                                 {"@PLOTLY@", lib},
                                 {"@DATA@", data},
                                 {"@SCRIPT@", web::kReportJs}});
}

int write_report(const std::string& target, const std::string& out, const std::string& store_arg) {
  fs::path store_path;
  std::optional<int64_t> id;
  fs::path run_dir;
  const bool numeric =
      !target.empty() && target.find_first_not_of("0123456789") == std::string::npos;
  if (!target.empty() && !numeric) {
    run_dir = target;
    if (!fs::exists(record::RunDir(run_dir).summary()))
      throw UsageError("report " + target +
                       ": not a run directory (no experiment.json) and not "
                       "an experiment id");
    auto s = record::ExperimentSummary::load(run_dir);
    if (!s.store_experiment_id)
      throw UsageError("report " + target + ": its experiment.json names no experiment store");
    store_path = s.store_path && fs::exists(*s.store_path)
                     ? fs::path(*s.store_path)
                     : record::RunDir(run_dir).default_store();
    id = *s.store_experiment_id;
  } else {
    store_path = store_path_or_default(store_arg);
    if (numeric) id = std::stoll(target);
  }
  experiment::ExperimentStore store(store_path);
  if (!id) {
    auto all = store.experiments();
    if (all.empty()) throw UsageError("the store " + store_path.string() + " holds no experiment");
    id = all.back().id;
  }
  const json view = experiment_view(store, *id);
  fs::path file = out;
  if (file.empty()) {
    const fs::path rd = view["experiment"].value("run_dir", std::string());
    file = !rd.empty() && fs::is_directory(rd)
               ? rd / "report.html"
               : fs::path("experiment-" + std::to_string(*id) + ".html");
  }
  util::write_file_atomic(file, experiment_page(&view, plotly_js()));
  std::printf("%s\n", file.string().c_str());
  return 0;
}

}  // namespace det::app
