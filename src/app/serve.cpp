// `det-run serve`: the live view of an experiment store over HTTP (http_server.h), read-only.
#include <cctype>
#include <cstdio>
#include <optional>

#include "det/config/metric.h"
#include "det/record/states.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "http_server.h"
#include "queries.h"
#include "report.h"

namespace det::app {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string short_number(const json& v) {
  if (!v.is_number()) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v.get<double>());
  return buf;
}

json experiments_json(experiment::ExperimentStore& store) {
  json out = json::array();
  for (const auto& e : store.experiments()) {
    const auto trials = store.trials(e.id);
    std::optional<double> best;
    for (const auto& t : trials)
      if (t.best_metric && config::is_better(*t.best_metric, best, e.smaller_is_better))
        best = t.best_metric;
    out.push_back({{"id", e.id},
                   {"name", e.name},
                   {"state", record::to_string(e.state)},
                   {"searcher", e.searcher},
                   {"metric", e.metric},
                   {"trials", trials.size()},
                   {"best", best ? json(*best) : json(nullptr)},
                   {"start_time", e.start_time},
                   {"end_time", e.end_time}});
  }
  return out;
}

// The experiments list: small enough to render on the server; it reloads itself.
std::string index_page(const json& experiments, const std::string& store) {
  std::string rows;
  for (auto it = experiments.rbegin(); it != experiments.rend(); ++it) {
    const auto& e = *it;
    const std::string id = std::to_string(e["id"].get<int64_t>());
    rows += "<tr data-experiment=\"" + id + "\"><td><a href=\"/experiments/" + id + "\">" + id +
            "</a></td><td class=\"text\"><a href=\"/experiments/" + id + "\">" +
            escape_html(e["name"].get<std::string>()) + "</a></td><td class=\"text state-" +
            escape_html(e["state"].get<std::string>()) + "\">" +
            escape_html(e["state"].get<std::string>()) + "</td><td class=\"text\">" +
            escape_html(e["searcher"].get<std::string>()) + "</td><td>" +
            std::to_string(e["trials"].get<size_t>()) + "</td><td data-value=\"" +
            (e["best"].is_null() ? "" : e["best"].dump()) + "\">" + short_number(e["best"]) +
            " <span class=\"muted\">" + escape_html(e["metric"].get<std::string>()) +
            "</span></td><td class=\"text\">" + escape_html(e["start_time"].get<std::string>()) +
            "</td></tr>\n";
  }
  return "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>det experiments"
         "</title><meta http-equiv=\"refresh\" content=\"10\"><style>body{font:14px/1.45 system-ui,"
         "sans-serif;margin:0;color:#1d2330;background:#f5f6f8}header{background:#1d2330;color:#"
         "fff;"
         "padding:14px 24px}h1{margin:0;font-size:20px}main{padding:12px 24px}table{border-"
         "collapse:collapse;width:100%;background:#fff}th,td{padding:6px 10px;border-bottom:1px "
         "solid"
         " #e4e7ec;text-align:right}.text{text-align:left}th{background:#f0f2f5}.muted{color:#"
         "5b6472}"
         ".state-COMPLETED{color:#1a7f37}.state-ERROR{color:#c0352b}.state-ACTIVE{color:#2456a6}"
         ".state-PAUSED,.state-STOPPED{color:#8a6d00}.state-CANCELED{color:#6e4b9e}"
         "</style></head><body><header><h1>det experiments</h1><div class=\"muted\">" +
         escape_html(store) +
         "</div></header><main><table id=\"experiments\"><thead><tr><th>ID</th><th class=\"text\">"
         "Name</th><th class=\"text\">State</th><th class=\"text\">Searcher</th><th>Trials</th><th>"
         "Best</th><th class=\"text\">Started</th></tr></thead><tbody>\n" +
         rows + "</tbody></table></main></body></html>\n";
}

}  // namespace

namespace {

// "/prefix/123" -> 123; nullopt for anything else (at most 18 digits).
std::optional<int64_t> id_after(const std::string& path, const std::string& prefix) {
  if (path.compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  const std::string digits = path.substr(prefix.size());
  if (digits.empty() || digits.size() > 18 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(digits);
}

// The Host header without its port, in lower case (host names are case-insensitive).
std::string host_name(std::string h, int port) {
  for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::string suffix = ":" + std::to_string(port);
  if (h.size() > suffix.size() && h.compare(h.size() - suffix.size(), suffix.size(), suffix) == 0)
    h.resize(h.size() - suffix.size());
  return h;
}

}  // namespace

int serve(const std::string& store_arg, const std::string& host, int port,
          const std::atomic<bool>* stop) {
  const fs::path store_path = store_path_or_default(store_arg);
  const std::string plotly = plotly_js();
  // On loopback, only requests addressed to this machine by name: a web page the user visits
  // cannot point a DNS name of its own at 127.0.0.1 and read the store (DNS rebinding).
  const bool loopback = host == "127.0.0.1" || host == "localhost" || host == "::1";
  int bound_port = 0;
  auto json_response = [](const json& j) {
    HttpResponse r;
    r.content_type = "application/json";
    r.body = j.dump(-1, ' ', false, json::error_handler_t::replace);
    return r;
  };
  // Every request reads the store afresh (SQLite in WAL mode: the runner keeps writing).
  auto with_store = [&](auto&& body) -> HttpResponse {
    try {
      experiment::ExperimentStore store(store_path);
      return body(store);
    } catch (const std::exception& e) {
      HttpResponse r = json_response(json{{"error", e.what()}});
      r.status = std::string(e.what()).find("no experiment") != std::string::npos ? 404 : 500;
      return r;
    }
  };
  auto handle = [&](const HttpRequest& req) -> HttpResponse {
    if (loopback) {
      const std::string h = host_name(req.header("host"), bound_port);
      if (h != "127.0.0.1" && h != "localhost" && h != "[::1]") {
        HttpResponse r;
        r.status = 403;
        r.body = "det-run serve answers requests for 127.0.0.1 or localhost only\n";
        return r;
      }
    }
    if (req.path == "/")
      return with_store([&](experiment::ExperimentStore& store) {
        HttpResponse r;
        r.content_type = "text/html; charset=utf-8";
        r.body = index_page(experiments_json(store), store_path.string());
        return r;
      });
    if (req.path == "/api/experiments")
      return with_store([&](experiment::ExperimentStore& store) {
        return json_response(experiments_json(store));
      });
    if (auto id = id_after(req.path, "/api/experiments/"))
      return with_store([&](experiment::ExperimentStore& store) {
        HttpResponse r = json_response(experiment_view(store, *id));
        r.headers["Cache-Control"] = "no-store";
        return r;
      });
    if (auto id = id_after(req.path, "/experiments/")) {
      HttpResponse r;
      r.content_type = "text/html; charset=utf-8";
      r.body = experiment_page(nullptr, "", "/api/experiments/" + std::to_string(*id));
      return r;
    }
    if (req.path == "/static/plotly.js") {
      HttpResponse r;
      r.content_type = "application/javascript";
      r.body = plotly;
      r.headers["Cache-Control"] = "max-age=3600";
      return r;
    }
    HttpResponse r;
    r.status = req.path == "/favicon.ico" ? 204 : 404;  // no icon (and no 404 in the console)
    if (r.status == 404) r.body = "not found\n";
    return r;
  };
  HttpServer server(host, port, handle);
  bound_port = server.port();
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::printf("det-run serve: http://%s:%d/ (the store %s; Ctrl-C stops)\n", shown.c_str(),
              bound_port, store_path.string().c_str());
  std::fflush(stdout);
  server.run(*stop);
  return 0;
}

}  // namespace det::app
