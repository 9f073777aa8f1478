// The read-only commands of det-run: config checks, search previews and what the store and the
// run directory hold.
#include "queries.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "commands.h"
#include "det/config/experiment_config.h"
#include "det/config/hyperparameters.h"
#include "det/core/context.h"
#include "det/core/registry.h"
#include "det/distributed/distributed_context.h"
#include "det/experiment/run_dir.h"
#include "det/record/experiment_summary.h"
#include "det/record/run_dir.h"
#include "det/record/states.h"
#include "det/search/searcher.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/rng.h"

namespace det::app {
namespace fs = std::filesystem;

namespace {

std::string num(std::optional<double> v) {
  if (!v) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", *v);
  return buf;
}

}  // namespace

std::string format_experiments(const std::vector<experiment::ExperimentRow>& rows) {
  std::ostringstream out;
  char line[512];
  std::snprintf(line, sizeof line, "%-4s %-32s %-10s %-14s %-20s %s\n", "id", "name", "state",
                "searcher", "started", "run directory");
  out << line;
  for (const auto& r : rows) {
    std::snprintf(line, sizeof line, "%-4lld %-32s %-10s %-14s %-20s %s\n",
                  static_cast<long long>(r.id), r.name.c_str(), record::to_string(r.state),
                  r.searcher.c_str(), r.start_time.c_str(), r.run_dir.c_str());
    out << line;
  }
  return out.str();
}

std::string format_experiment(experiment::ExperimentStore& store, int64_t experiment_id) {
  auto e = store.experiment(experiment_id);
  std::ostringstream out;
  out << "experiment " << e.id << " " << e.name << " (" << record::to_string(e.state)
      << "), searcher " << e.searcher << " on " << e.metric
      << (e.smaller_is_better ? " (smaller is better)" : " (larger is better)") << "\n";
  out << "run directory: " << e.run_dir << "\n";
  for (const auto& t : store.trials(experiment_id)) {
    out << "trial " << t.number << " (id " << t.id << "): " << record::to_string(t.state) << ", "
        << t.batches_trained << " batches, best " << e.metric << " " << num(t.best_metric)
        << ", restarts " << t.restarts << "\n";
    out << "  hparams: " << t.hparams.dump() << "\n";
    for (const auto& j : store.jobs(t.id))
      out << "  launch " << j.launch << ": " << (j.scheduler == "slurm" ? "Slurm job " : "process ")
          << j.job_id << " on " << (j.node.empty() ? "?" : j.node) << ", " << j.state << "\n";
    for (const auto& c : store.checkpoints(t.id))
      out << "  checkpoint " << c.uuid << " at batch " << c.batches << ", " << e.metric << " "
          << num(c.metric) << ": " << c.path << "\n";
  }
  return out.str();
}

std::string format_metrics(const std::vector<experiment::MetricRow>& rows,
                           const std::string& format) {
  if (format == "json") {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& r : rows)
      a.push_back({{"kind", r.kind},
                   {"batches", r.batches},
                   {"epochs", r.epochs},
                   {"metrics", r.metrics},
                   {"time", r.time}});
    return a.dump(2) + "\n";
  }
  if (format != "table" && format != "csv")
    throw UsageError("--format must be table, csv or json, not '" + format + "'");
  // One column per metric name seen, in first-seen order.
  std::vector<std::string> names;
  for (const auto& r : rows)
    for (auto it = r.metrics.begin(); it != r.metrics.end(); ++it)
      if (std::find(names.begin(), names.end(), it.key()) == names.end()) names.push_back(it.key());
  const bool csv = format == "csv";
  auto cell = [&](const std::string& s, int width) {
    if (csv) return s;
    std::string padded = s;
    if (static_cast<int>(padded.size()) < width)
      padded.insert(0, static_cast<size_t>(width) - padded.size(), ' ');
    return padded;
  };
  const std::string sep = csv ? "," : "  ";
  std::ostringstream out;
  out << cell("kind", 10) << sep << cell("batches", 8) << sep << cell("epochs", 8);
  for (const auto& n : names) out << sep << cell(n, 14);
  out << "\n";
  for (const auto& r : rows) {
    char ep[32];
    std::snprintf(ep, sizeof ep, "%.3f", r.epochs);
    out << cell(r.kind, 10) << sep << cell(std::to_string(r.batches), 8) << sep << cell(ep, 8);
    for (const auto& n : names) {
      std::string v = "";
      if (r.metrics.contains(n))
        v = r.metrics[n].is_number() ? num(r.metrics[n].get<double>()) : r.metrics[n].dump();
      out << sep << cell(v, 14);
    }
    out << "\n";
  }
  return out.str();
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

fs::path store_path_or_default(const std::string& given) {
  fs::path p = given.empty() ? record::RunDir::store_in("runs") : fs::path(given);
  if (fs::is_directory(p)) p = record::RunDir::store_in(p);
  if (!fs::exists(p))
    throw UsageError(
        "no experiment store at " + p.string() +
        " (runs record into <checkpoint_storage.host_path>/det.db; pass --store PATH)");
  return p;
}

namespace {

std::string metric_cell(const std::optional<record::MetricPoint>& p, const std::string& metric) {
  if (!p || !p->metrics.contains(metric) || !p->metrics[metric].is_number()) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", p->metrics[metric].get<double>());
  return buf;
}

}  // namespace

int validate_config(const std::string& path, const std::vector<std::string>& overrides) {
  auto cfg = config::load_experiment_config(path, overrides);
  TrialRegistry::instance().find(cfg.entrypoint, cfg.source);
  // The trial's own settings, with one draw of the hyperparameters, as a run checks them.
  util::NpRandom rng(0);
  const nlohmann::json hparams = config::sample_hyperparameters(cfg.hyperparameters, rng);
  const TrialContext context(cfg, hparams, 1, 0, torch::Device(torch::kCPU),
                             distributed::make_local_context());
  TrialRegistry::instance().check_config(cfg.entrypoint, context);
  std::printf("%s: valid (searcher %s, entrypoint %s)\n", path.c_str(), cfg.searcher.name.c_str(),
              cfg.entrypoint.c_str());
  for (const auto& n : cfg.notices) std::printf("  no effect here: %s\n", n.c_str());
  return 0;
}

int preview_search(const std::string& path, const std::vector<std::string>& overrides,
                   const std::string& trials_file) {
  auto cfg = config::load_experiment_config(path, overrides);
  if (trials_file.empty()) {
    std::printf("%s", search::preview_search(cfg).c_str());
    return 0;
  }
  nlohmann::json trials;
  try {
    trials = nlohmann::json::parse(util::read_file(trials_file));
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(trials_file + ": not valid JSON: " + first_line(e.what()));
  } catch (const Error& e) {
    throw ConfigError(std::string(e.what()) + " (--simulate takes a TRIALS.json file)");
  }
  nlohmann::json result;
  try {
    result = search::simulate(cfg, trials);
  } catch (const ConfigError& e) {
    std::string msg = first_line(e.what());
    const std::string generic = "TRIALS.json: ";
    if (msg.rfind(generic, 0) == 0) msg = msg.substr(generic.size());
    throw ConfigError(trials_file + ": " + msg);
  }
  std::printf("%s\n", result.dump(2).c_str());
  return 0;
}

int list_trials(const std::string& dir_arg) {
  fs::path dir = dir_arg.empty() ? experiment::latest_run_dir("runs") : fs::path(dir_arg);
  if (dir.empty())
    throw UsageError("list-trials: no run directory given and none found under ./runs");
  auto s = record::ExperimentSummary::load(dir);
  const std::string& metric = s.searcher_metric;
  std::printf("experiment %s (%s) in %s\n", s.name.c_str(), record::to_string(s.state),
              dir.string().c_str());
  std::printf("%-6s %-10s %10s %16s %16s  %s\n", "trial", "state", "batches",
              ("best " + metric).c_str(), ("last " + metric).c_str(), "latest checkpoint");
  for (const auto& t : s.trials)
    std::printf("%-6lld %-10s %10lld %16s %16s  %s\n", static_cast<long long>(t.id),
                record::to_string(t.state), static_cast<long long>(t.batches_trained),
                metric_cell(t.best_validation, metric).c_str(),
                metric_cell(t.latest_validation, metric).c_str(),
                t.latest_checkpoint.value_or("-").c_str());
  return 0;
}

int list_experiments(const std::string& store) {
  experiment::ExperimentStore s(store_path_or_default(store));
  std::printf("%s", format_experiments(s.experiments()).c_str());
  return 0;
}

int describe_experiment(int64_t experiment_id, const std::string& store) {
  experiment::ExperimentStore s(store_path_or_default(store));
  std::printf("%s", format_experiment(s, experiment_id).c_str());
  return 0;
}

int show_metrics(int64_t trial_id, const std::string& kind, const std::string& format,
                 const std::string& store) {
  experiment::ExperimentStore s(store_path_or_default(store));
  s.trial(trial_id);  // a clear error for an unknown trial
  std::printf("%s", format_metrics(s.metrics(trial_id, kind), format).c_str());
  return 0;
}

int show_logs(int64_t trial_id, bool follow, const std::string& store,
              const std::atomic<bool>* stop) {
  const fs::path store_path = store_path_or_default(store);
  fs::path log;
  {
    experiment::ExperimentStore s(store_path);
    const auto t = s.trial(trial_id);  // a clear error for an unknown trial
    const auto e = s.experiment(t.experiment_id);
    log = record::RunDir(e.run_dir).trial(t.number).log();
  }
  auto finished = [&] {
    experiment::ExperimentStore s(store_path);
    const auto t = s.trial(trial_id);
    return record::is_final(t.state) || t.state == record::TrialStatus::kStopped ||
           !record::goes_on(s.experiment(t.experiment_id).state);
  };
  std::ifstream in;
  std::vector<char> buf(1 << 16);
  bool ended = false;
  while (true) {
    if (!in.is_open()) {
      std::error_code ec;
      if (fs::exists(log, ec) && !fs::is_regular_file(log, ec))  // a FIFO would block the open
        throw Error(log.string() + ": not a regular file; a trial's log is one det writes");
      in.open(log, std::ios::binary);
      if (!in.is_open() && !follow)
        throw Error("trial " + std::to_string(trial_id) + " has no log yet (" + log.string() + ")");
    }
    if (in.is_open()) {
      while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
        std::fwrite(buf.data(), 1, static_cast<size_t>(in.gcount()), stdout);
        if (in.eof()) break;
      }
      in.clear();  // at the end for now: more may come
      std::fflush(stdout);
    }
    // Once the trial has ended, one more read takes what it wrote last.
    if (!follow || ended || (stop && stop->load())) return 0;
    ended = finished();
    if (!ended) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

}  // namespace det::app
