#include "det/experiment/tensorboard_log.h"

#include <cmath>

#include "det/record/run_dir.h"

namespace det::experiment {
namespace fs = std::filesystem;
namespace tb = record::tensorboard;
using json = nlohmann::json;

namespace {

using HParamInfo = tb::hparams::HParamInfo;

HParamInfo::Type type_of(const json& v) {
  if (v.is_number()) return HParamInfo::Type::kFloat64;
  if (v.is_boolean()) return HParamInfo::Type::kBool;
  return HParamInfo::Type::kString;
}

// A value as its column's type holds it: strings for string columns.
json as_column_value(const json& v, HParamInfo::Type type) {
  if (type == HParamInfo::Type::kString && !v.is_string()) return v.dump();
  return v;
}

void add_infos(const config::HyperparameterSpace& space, const std::string& prefix,
               std::vector<HParamInfo>& out) {
  using T = config::Hyperparameter::Type;
  for (const auto& [name, h] : space) {
    const std::string full = prefix + name;
    if (h.type == T::kNested) {
      add_infos(h.nested, full + ".", out);
      continue;
    }
    HParamInfo info;
    info.name = full;
    switch (h.type) {
      case T::kConst:
        info.type = type_of(h.val);
        info.discrete = {as_column_value(h.val, info.type)};
        break;
      case T::kInt:
      case T::kDouble:
        info.interval = std::make_pair(h.minval, h.maxval);
        break;
      case T::kLog:
        info.interval = std::make_pair(std::pow(h.base, h.minval), std::pow(h.base, h.maxval));
        break;
      case T::kCategorical: {
        info.type = h.vals.empty() ? HParamInfo::Type::kString : type_of(h.vals.front());
        for (const auto& v : h.vals)
          if (type_of(v) != info.type) info.type = HParamInfo::Type::kString;
        for (const auto& v : h.vals) info.discrete.push_back(as_column_value(v, info.type));
        break;
      }
      case T::kNested:
        break;
    }
    out.push_back(std::move(info));
  }
}

void flatten(const json& v, const std::string& prefix, json& out) {
  if (v.is_object()) {
    for (const auto& [k, x] : v.items()) flatten(x, prefix + k + ".", out);
    return;
  }
  const std::string name = prefix.substr(0, prefix.size() - 1);
  out[name] = v.is_number() || v.is_boolean() || v.is_string() ? v : json(v.dump());
}

}  // namespace

std::vector<std::pair<std::string, double>> tensorboard_scalars(const record::MetricsReport& r) {
  std::vector<std::pair<std::string, double>> out;
  const std::string kind = r.kind_name();
  auto add = [&](const std::string& prefix, const json& values) {
    if (!values.is_object()) return;
    for (const auto& [k, v] : values.items())
      if (auto x = record::metric_value(v)) out.emplace_back(prefix + k, *x);
  };
  add(kind + "/", r.metrics);
  if (r.kind == record::MetricsReport::Kind::kTraining) {
    // "lr" -> learning_rate, "lr/0.1" -> learning_rate/0.1: apart from any metric's tag.
    if (r.learning_rates.is_object())
      for (const auto& [k, v] : r.learning_rates.items())
        if (auto x = record::metric_value(v))
          out.emplace_back("learning_rate" + (k.size() > 2 ? k.substr(2) : std::string()), *x);
    add("throughput/", r.throughput);
  }
  return out;
}

std::vector<HParamInfo> hparam_infos(const config::HyperparameterSpace& space) {
  std::vector<HParamInfo> out;
  add_infos(space, "", out);
  return out;
}

json flat_hparams(const json& hparams) {
  json out = json::object();
  if (hparams.is_object()) flatten(hparams, "", out);
  return out;
}

fs::path TensorBoardLog::trial_dir(int64_t trial) const {
  return root_ / record::RunDir::trial_name(trial);
}

tb::EventFileWriter& TensorBoardLog::writer(int64_t trial, double time) {
  auto& w = writers_[trial];
  // A new file per trial for each recorder: a resumed experiment's events follow the old ones.
  if (!w) w = std::make_unique<tb::EventFileWriter>(trial_dir(trial), time);
  return *w;
}

void TensorBoardLog::set_columns(const config::HyperparameterSpace& space) {
  column_types_.clear();
  for (const auto& info : hparam_infos(space)) column_types_[info.name] = info.type;
}

void TensorBoardLog::experiment(const config::ExperimentConfig& config, double time) {
  set_columns(config.hyperparameters);
  std::vector<tb::hparams::MetricInfo> metrics;
  if (!config.searcher.metric.empty())
    metrics.push_back({"validation/" + config.searcher.metric, true});
  const std::string content = tb::hparams::experiment(
      config.name, config.description, time, hparam_infos(config.hyperparameters), metrics);
  tb::EventFileWriter(root_, time)
      .append({tb::event::plugin_summary(time, 0, tb::hparams::kExperimentTag,
                                         tb::hparams::kPluginName, content)});
}

void TensorBoardLog::trial_started(int64_t trial, const json& hparams, double time,
                                   const std::string& model_uri) {
  json values = flat_hparams(hparams);
  for (auto& [name, v] : values.items()) {
    auto type = column_types_.find(name);
    if (type != column_types_.end()) v = as_column_value(v, type->second);
  }
  // A SessionLog START first: TensorBoard's Python loader takes a run's first START for its
  // beginning and only the later ones for restarts (restart() writes those).
  writer(trial, time)
      .append({tb::event::session_log(time, 0, tb::SessionStatus::kStart),
               tb::event::plugin_summary(time, 0, tb::hparams::kSessionStartTag,
                                         tb::hparams::kPluginName,
                                         tb::hparams::session_start(values, time, model_uri))});
}

void TensorBoardLog::report(int64_t trial, const record::MetricsReport& r) {
  const double time = tb::seconds_since_epoch(r.time).value_or(0);
  std::vector<std::string> events;
  for (const auto& [tag, value] : tensorboard_scalars(r))
    events.push_back(tb::event::scalar(time, r.batches, tag, value));
  if (!events.empty()) writer(trial, time).append(events);
}

void TensorBoardLog::restart(int64_t trial, int64_t batches, double time) {
  writer(trial, time)
      .append({tb::event::session_log(time, batches + 1, tb::SessionStatus::kStart)});
}

void TensorBoardLog::trial_ended(int64_t trial, record::TrialStatus state, double time) {
  const auto status = state == record::TrialStatus::kCompleted ? tb::hparams::Status::kSuccess
                                                               : tb::hparams::Status::kFailure;
  writer(trial, time)
      .append(
          {tb::event::plugin_summary(time, 0, tb::hparams::kSessionEndTag, tb::hparams::kPluginName,
                                     tb::hparams::session_end(status, time))});
}

}  // namespace det::experiment
