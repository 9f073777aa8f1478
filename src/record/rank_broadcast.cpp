#include "det/record/rank_broadcast.h"

#include <limits>
#include <string>

#include "det/util/error.h"
#include "fields.h"

namespace det::record {
namespace {
using nlohmann::json;
using BroadcastFields = detail::Fields<DistributedError>;

// The record's fields, its version checked: absent is version 1.
BroadcastFields open(const json& j, const char* what) {
  const std::string where = std::string("the chief's broadcast of ") + what;
  BroadcastFields f(j, where);
  const int64_t version = f.value<int64_t>("v", 1);
  if (version < 1 || version > kRankBroadcastVersion)
    throw DistributedError(where + " has version " + std::to_string(version) +
                           ", this det reads 1.." + std::to_string(kRankBroadcastVersion) +
                           ": start every rank from the same det");
  return f;
}

json path_or_null(const std::optional<std::filesystem::path>& p) {
  return p ? json(p->string()) : json(nullptr);
}
}  // namespace

json TrialOptionsBroadcast::to_json() const {
  return {{"v", kRankBroadcastVersion},
          {"trial_id", trial_id},
          {"hparams", hparams},
          {"trial_seed", trial_seed},
          {"trial_dir", trial_dir.string()},
          {"resume_from", path_or_null(resume_from)}};
}

TrialOptionsBroadcast TrialOptionsBroadcast::from_json(const json& j) {
  BroadcastFields f = open(j, "the trial's options");
  TrialOptionsBroadcast o;
  o.trial_id = f.get_int("trial_id", 0, std::numeric_limits<int64_t>::max());
  o.hparams = f.get<json>("hparams");
  if (!o.hparams.is_object()) f.fail("hparams", "an object");
  o.trial_seed = f.get<uint32_t>("trial_seed");
  o.trial_dir = f.get<std::string>("trial_dir");
  if (auto r = f.optional<std::string>("resume_from")) o.resume_from = *r;
  return o;
}

json NextTargetBroadcast::to_json() const {
  return {{"v", kRankBroadcastVersion}, {"target", target ? json(*target) : json(nullptr)}};
}

NextTargetBroadcast NextTargetBroadcast::from_json(const json& j) {
  NextTargetBroadcast t;
  if (j.is_null()) return t;  // version 1's "no target"
  BroadcastFields f = open(j, "the next target");
  t.target = f.optional_int("target", 0, std::numeric_limits<int64_t>::max());
  return t;
}

json FullValidationBroadcast::to_json() const {
  return {{"v", kRankBroadcastVersion}, {"full", full}, {"metrics", metrics}};
}

FullValidationBroadcast FullValidationBroadcast::from_json(const json& j) {
  BroadcastFields f = open(j, "evaluate_full_dataset's metrics");
  FullValidationBroadcast v;
  v.full = f.get<bool>("full");
  v.metrics = f.get<json>("metrics");
  if (v.full && !v.metrics.is_object()) f.fail("metrics", "an object");
  return v;
}

}  // namespace det::record
