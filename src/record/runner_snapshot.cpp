#include "det/record/runner_snapshot.h"

#include <limits>

#include "det/util/error.h"
#include "fields.h"

namespace det::record {
namespace {

using json = nlohmann::json;
using F = detail::Fields<Error>;
constexpr int64_t kMaxCount = std::numeric_limits<int64_t>::max();

TrialStatus status_field(const F& f) {
  const auto status = parse_trial_status(f.get<std::string>("state"));
  if (!status) f.fail("state", "one of " + trial_status_names());
  return *status;
}

}  // namespace

json OwedAnswer::to_json() const {
  if (kind == Kind::kRecorded) return {{"re", re}, {"recorded", uuid}};
  return {{"re", re}, {"decision", true}};
}

OwedAnswer OwedAnswer::from_json(const json& j, const std::string& where) {
  F f(j, where, "owed");
  OwedAnswer a;
  a.re = f.get_int("re", 0, kMaxCount);
  if (f.has("recorded")) {
    a.kind = Kind::kRecorded;
    a.uuid = f.get<std::string>("recorded");
  } else if (f.value<bool>("decision", false)) {
    a.kind = Kind::kDecision;
  } else {
    f.fail("", "{\"re\": N, \"recorded\": uuid} or {\"re\": N, \"decision\": true}");
  }
  return a;
}

bool OwedAnswer::operator==(const OwedAnswer& o) const {
  return kind == o.kind && re == o.re && uuid == o.uuid;
}

json TrialSnapshot::to_json() const {
  return {{"id", id},
          {"store_id", store_id},
          {"request_id", request_id},
          {"state", to_string(state)},
          {"target", target ? json(*target) : json(nullptr)},
          {"close_requested", close_requested},
          {"restarts", restarts},
          {"launches", launches},
          {"latest_checkpoint", latest_checkpoint},
          {"checkpoint_batches", checkpoint_batches},
          {"batches", batches},
          {"job", job},
          {"node", node},
          {"job_started", job_started},
          {"events_offset", events_offset},
          {"events_seen", events_seen},
          {"owed", owed ? owed->to_json() : json(nullptr)}};
}

TrialSnapshot TrialSnapshot::from_json(const json& j, const std::string& where) {
  F f(j, where);
  TrialSnapshot t;
  t.id = f.get_int("id", 0, kMaxCount);
  t.store_id = f.get_int("store_id", 0, kMaxCount);
  t.request_id = f.get<std::string>("request_id");
  t.state = status_field(f);
  t.target = f.optional_int("target", 0, kMaxCount);
  t.close_requested = f.get<bool>("close_requested");
  t.restarts = f.get<int>("restarts");
  t.launches = f.value<int>("launches", 0);
  t.latest_checkpoint = f.get<std::string>("latest_checkpoint");
  t.checkpoint_batches = f.value<int64_t>("checkpoint_batches", 0);
  t.batches = f.get<int64_t>("batches");
  t.job = f.value<std::string>("job", "");
  t.node = f.value<std::string>("node", "");
  t.job_started = f.value<bool>("job_started", false);
  t.events_offset = f.value<uint64_t>("events_offset", 0);
  t.events_seen = f.value<int64_t>("events_seen", 0);
  if (f.has("owed")) t.owed = OwedAnswer::from_json(j.at("owed"), where);
  return t;
}

json RunnerSnapshot::to_json() const {
  json ts = json::array();
  for (const auto& t : trials) ts.push_back(t.to_json());
  return {{"format_version", kFormatVersion},
          {"experiment_seed", experiment_seed},
          {"searcher", searcher},
          {"next_trial", next_trial},
          {"trials", ts},
          {"ready", ready},
          {"scheduler", scheduler},
          {"slots", slots}};
}

RunnerSnapshot RunnerSnapshot::from_json(const json& j, const std::string& where) {
  F f(j, where);
  RunnerSnapshot s;
  s.format_version = static_cast<int>(f.value<int64_t>("format_version", 1));
  if (s.format_version < 1 || s.format_version > kFormatVersion)
    throw Error(where + ": runner snapshot version " + std::to_string(s.format_version) +
                " is not one this det reads (1.." + std::to_string(kFormatVersion) +
                "): resume it with the det that ran it");
  s.experiment_seed = f.get<uint32_t>("experiment_seed");
  s.searcher = f.get<json>("searcher");
  s.next_trial = f.get_int("next_trial", 1, kMaxCount);
  const json& trials = f.array("trials");
  if (!f.has("trials")) f.fail("trials", "a list of trials");
  for (size_t i = 0; i < trials.size(); ++i)
    s.trials.push_back(
        TrialSnapshot::from_json(trials[i], where + ": trials[" + std::to_string(i) + "]"));
  for (const auto& id : f.array("ready")) {
    if (!id.is_number_integer()) f.fail("ready", "a list of trial ids");
    s.ready.push_back(id.get<int64_t>());
  }
  s.scheduler = f.value<std::string>("scheduler", "local");
  s.slots = f.value<int>("slots", 0);
  return s;
}

}  // namespace det::record
