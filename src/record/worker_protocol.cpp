#include "det/record/worker_protocol.h"

#include <cmath>
#include <limits>

#include "det/util/error.h"
#include "det/util/strings.h"
#include "fields.h"

namespace det::record {
namespace {

using json = nlohmann::json;
using F = detail::Fields<Error>;
constexpr int64_t kMaxBatches = CheckpointMetadata::kMaxBatches;

const char* kReasons[] = {"completed", "stop_requested", "stopped", "invalid_hp",
                          "error",     "non_finite",     "storage"};
constexpr int kNumReasons = 7;

std::string cut(const std::string& line) { return util::shorten(line, 120); }

json parse_line(const std::string& line, const char* sender) {
  try {
    return json::parse(line);
  } catch (const json::exception&) {
    throw Error(std::string(sender) + " sent a line that is not JSON: " + cut(line));
  }
}

MetricsReport report_from(const F& f) {
  MetricsReport r;
  std::string kind = f.get<std::string>("kind");
  if (kind != "training" && kind != "validation") f.fail("kind", "\"training\" or \"validation\"");
  r.kind = kind == "training" ? MetricsReport::Kind::kTraining : MetricsReport::Kind::kValidation;
  r.trial_id = f.get_int("trial_id", 0, kMaxBatches);
  r.batches = f.get_int("batches", 0, kMaxBatches);
  r.epochs = f.value<double>("epochs", 0.0);
  r.metrics = f.get<json>("metrics");
  if (!r.metrics.is_object()) f.fail("metrics", "an object of metrics");
  if (f.has("throughput")) r.throughput = f.get<json>("throughput");
  if (f.has("learning_rates")) {
    r.learning_rates = f.get<json>("learning_rates");
    if (!r.learning_rates.is_object()) f.fail("learning_rates", "an object of numbers");
  }
  r.ranks = static_cast<int>(f.value<int64_t>("ranks", 1));
  r.seconds = f.value<double>("seconds", 0.0);
  r.time = f.value<std::string>("time", "");
  return r;
}

}  // namespace

json portable_metrics(const json& metrics) {
  if (metrics.is_number_float()) {
    const double v = metrics.get<double>();
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
    return metrics;
  }
  if (!metrics.is_object()) return metrics;
  json out = json::object();
  for (auto it = metrics.begin(); it != metrics.end(); ++it)
    out[it.key()] = portable_metrics(it.value());
  return out;
}

std::optional<double> metric_value(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (v == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (v == "Infinity") return std::numeric_limits<double>::infinity();
  if (v == "-Infinity") return -std::numeric_limits<double>::infinity();
  return std::nullopt;
}

json MetricsReport::to_json() const {
  json j = {{"kind", kind_name()},
            {"trial_id", trial_id},
            {"batches", batches},
            {"epochs", epochs},
            {"metrics", portable_metrics(metrics)}};
  if (kind == Kind::kTraining) {
    j["throughput"] = throughput;
    if (!learning_rates.empty()) j["learning_rates"] = learning_rates;
    j["ranks"] = ranks;
  } else {
    j["seconds"] = seconds;
  }
  j["time"] = time;
  return j;
}

MetricsReport MetricsReport::from_json(const json& j, const std::string& where) {
  return report_from(F(j, where));
}

const char* reason_name(WorkerExit::Reason reason) { return kReasons[static_cast<int>(reason)]; }

std::string encode(const WorkerEvent& event) {
  json j;
  if (auto* r = std::get_if<MetricsReport>(&event)) {
    j = {{"event", "report"}, {"report", r->to_json()}};
  } else if (auto* c = std::get_if<CheckpointEvent>(&event)) {
    json kept = json::array();
    for (const auto& k : c->kept) kept.push_back(k.to_json());
    j = {{"event", "checkpoint"}, {"checkpoint", c->checkpoint.to_json()}, {"kept", kept}};
  } else if (auto* t = std::get_if<TargetReached>(&event)) {
    j = {{"event", "target_reached"},
         {"length", t->length},
         {"metric", portable_metrics(t->metric)}};
  } else {
    const auto& e = std::get<WorkerExit>(event);
    j = {{"event", "exit"}, {"reason", reason_name(e.reason)}, {"message", e.message}};
  }
  j["v"] = kProtocolVersion;
  return j.dump() + "\n";
}

std::string encode(const RunnerAnswer& a) {
  json j;
  switch (a.kind) {
    case RunnerAnswer::Kind::kTarget:
      j = {{"target", a.target}};
      break;
    case RunnerAnswer::Kind::kExit:
      j = {{"exit", true}};
      break;
    case RunnerAnswer::Kind::kRecorded:
      j = {{"recorded", a.uuid}};
      break;
  }
  if (a.re >= 0) j["re"] = a.re;
  j["v"] = kProtocolVersion;
  return j.dump() + "\n";
}

WorkerEvent decode_event(const std::string& line) {
  const json j = parse_line(line, "a trial worker");
  const std::string where = "worker message " + cut(line);
  F f(j, where);
  const int64_t version = f.value<int64_t>("v", 1);
  if (version < 1 || version > kProtocolVersion)
    throw Error("a trial worker speaks protocol version " + std::to_string(version) +
                ", this det reads 1.." + std::to_string(kProtocolVersion) +
                ": run the runner and its workers from the same det");
  const std::string kind = f.get<std::string>("event");
  if (kind == "report") return report_from(f.child("report"));
  if (version == 1 && (kind == "training" || kind == "validation")) {
    // Version 1 put the kind in the event name and the batch beside the report.
    MetricsReport r = report_from(f.child("report"));
    if (r.batches != f.get_int("batches", 0, kMaxBatches))
      throw Error(where + ": the report's batches disagree with the event's");
    return r;
  }
  if (kind == "checkpoint") {
    CheckpointEvent e;
    e.checkpoint = CheckpointRef::from_json(f.get<json>("checkpoint"), where + ": checkpoint");
    for (const auto& k : f.array("kept"))
      e.kept.push_back(CheckpointRef::from_json(k, where + ": kept"));
    return e;
  }
  if (kind == "target_reached") {
    auto metric = metric_value(f.get<json>("metric"));
    if (!metric) f.fail("metric", "a number, \"NaN\", \"Infinity\" or \"-Infinity\"");
    return TargetReached{f.get_int("length", 0, kMaxBatches), *metric};
  }
  if (kind == "exit") {
    WorkerExit e;
    std::string reason = f.get<std::string>("reason");
    bool known = false;
    for (int i = 0; i < kNumReasons; ++i)
      if (reason == kReasons[i]) e.reason = static_cast<WorkerExit::Reason>(i), known = true;
    if (!known)
      f.fail("reason",
             "one of completed, stop_requested, stopped, invalid_hp, error, non_finite, storage");
    e.message = f.value<std::string>("message", "");
    return e;
  }
  f.fail("event", "one of report, checkpoint, target_reached, exit");
}

RunnerAnswer decode_answer(const std::string& line) {
  const json j = parse_line(line, "the experiment runner");
  F f(j, "runner message " + cut(line));
  RunnerAnswer a;
  if (f.has("re")) a.re = f.get_int("re", 0, kMaxBatches);
  if (f.has("target")) {
    a.kind = RunnerAnswer::Kind::kTarget;
    a.target = f.get_int("target", 0, kMaxBatches);
  } else if (f.has("recorded")) {
    a.kind = RunnerAnswer::Kind::kRecorded;
    a.uuid = f.get<std::string>("recorded");
  } else if (f.value<bool>("exit", false)) {
    a.kind = RunnerAnswer::Kind::kExit;
  } else {
    throw Error("the experiment runner sent an answer with neither target, recorded nor exit: " +
                cut(line));
  }
  return a;
}

}  // namespace det::record
