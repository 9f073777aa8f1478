// `det-run serve`: the live view of an experiment store over HTTP (cpp-httplib), read-only.
#include <httplib.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "det/config/metric.h"
#include "det/util/error.h"
#include "det/util/log.h"
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
                   {"state", e.state},
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
         "</style></head><body><header><h1>det experiments</h1><div class=\"muted\">" +
         escape_html(store) +
         "</div></header><main><table id=\"experiments\"><thead><tr><th>ID</th><th class=\"text\">"
         "Name</th><th class=\"text\">State</th><th class=\"text\">Searcher</th><th>Trials</th><th>"
         "Best</th><th class=\"text\">Started</th></tr></thead><tbody>\n" +
         rows + "</tbody></table></main></body></html>\n";
}

}  // namespace

int serve(const std::string& store_arg, const std::string& host, int port,
          const std::atomic<bool>* stop) {
  const fs::path store_path = store_path_or_default(store_arg);
  const std::string plotly = plotly_js();
  httplib::Server server;
  // Every request reads the store afresh (SQLite in WAL mode: the runner keeps writing).
  auto with_store = [store_path](httplib::Response& res, auto&& body) {
    try {
      experiment::ExperimentStore store(store_path);
      body(store);
    } catch (const std::exception& e) {
      res.status = std::string(e.what()).find("no experiment") != std::string::npos ? 404 : 500;
      res.set_content(json{{"error", e.what()}}.dump(), "application/json");
    }
  };
  server.Get("/", [&](const httplib::Request&, httplib::Response& res) {
    with_store(res, [&](experiment::ExperimentStore& store) {
      res.set_content(index_page(experiments_json(store), store_path.string()),
                      "text/html; charset=utf-8");
    });
  });
  server.Get("/api/experiments", [&](const httplib::Request&, httplib::Response& res) {
    with_store(res, [&](experiment::ExperimentStore& store) {
      res.set_content(experiments_json(store).dump(-1, ' ', false, json::error_handler_t::replace),
                      "application/json");
    });
  });
  server.Get(
      R"(/api/experiments/(\d{1,18}))", [&](const httplib::Request& req, httplib::Response& res) {
        const int64_t id = std::stoll(req.matches[1].str());
        with_store(res, [&](experiment::ExperimentStore& store) {
          res.set_content(
              experiment_view(store, id).dump(-1, ' ', false, json::error_handler_t::replace),
              "application/json");
          res.set_header("Cache-Control", "no-store");
        });
      });
  server.Get(
      R"(/experiments/(\d{1,18}))", [&](const httplib::Request& req, httplib::Response& res) {
        res.set_content(experiment_page(nullptr, "", "/api/experiments/" + req.matches[1].str()),
                        "text/html; charset=utf-8");
      });
  server.Get("/static/plotly.js", [&](const httplib::Request&, httplib::Response& res) {
    res.set_content(plotly, "application/javascript");
    res.set_header("Cache-Control", "max-age=3600");
  });
  server.Get("/favicon.ico", [](const httplib::Request&, httplib::Response& res) {
    res.status = 204;  // no icon (and no 404 in the browser's console)
  });
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        res.status = 500;
        res.set_content("{\"error\": \"internal error\"}", "application/json");
      });
  // On loopback, only requests addressed to this machine by name: a web page the user visits
  // cannot point a DNS name of its own at 127.0.0.1 and read the store (DNS rebinding).
  const bool loopback = host == "127.0.0.1" || host == "localhost" || host == "::1";
  int bound_port = 0;
  server.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    if (!loopback) return httplib::Server::HandlerResponse::Unhandled;
    std::string h = req.get_header_value("Host");
    const std::string port_suffix = ":" + std::to_string(bound_port);
    if (h.size() > port_suffix.size() &&
        h.compare(h.size() - port_suffix.size(), port_suffix.size(), port_suffix) == 0)
      h.resize(h.size() - port_suffix.size());
    if (h == "127.0.0.1" || h == "localhost" || h == "[::1]")
      return httplib::Server::HandlerResponse::Unhandled;
    res.status = 403;
    res.set_content("det-run serve answers requests for 127.0.0.1 or localhost only\n",
                    "text/plain");
    return httplib::Server::HandlerResponse::Handled;
  });
  int bound = port;
  if (port == 0) {
    bound = server.bind_to_any_port(host);
    if (bound < 0) throw Error("serve: cannot listen on " + host + " (any port)");
  } else if (!server.bind_to_port(host, port)) {
    throw UsageError("serve: cannot listen on " + host + ":" + std::to_string(port) +
                     " (in use? pick another with --port, or --port 0 for any free one)");
  }
  bound_port = bound;
  const std::string shown = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  std::printf("det-run serve: http://%s:%d/ (the store %s; Ctrl-C stops)\n", shown.c_str(), bound,
              store_path.string().c_str());
  std::fflush(stdout);
  std::atomic<bool> ended{false};
  std::thread loop([&] {
    server.listen_after_bind();
    ended = true;
  });
  while (!stop->load() && !ended) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // stop() takes effect only once the loop runs: a signal right after start waits for it.
  while (!ended) {
    server.stop();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  loop.join();
  return 0;
}

}  // namespace det::app
