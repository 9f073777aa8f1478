#include "det/search/searcher.h"

#include <random>

namespace det::search {

Searcher::Searcher(const config::ExperimentConfig& config, uint32_t seed)
    : hparams_(config.hyperparameters),
      method_(make_search_method(config.searcher, hparams_)),
      rng_(seed) {}

std::vector<Operation> Searcher::record(std::vector<Operation> ops) {
  for (const auto& op : ops)
    if (std::holds_alternative<Create>(op)) ++trials_requested_;
  return ops;
}

std::vector<Operation> Searcher::initial_operations() {
  auto ctx = context();
  return record(method_->initial_operations(ctx));
}

std::vector<Operation> Searcher::trial_created(const std::string& request_id) {
  trials_created_.insert(request_id);
  trial_progress_[request_id] = 0;
  auto ctx = context();
  return record(method_->trial_created(ctx, request_id));
}

std::vector<Operation> Searcher::validation_completed(const std::string& request_id, double metric,
                                                      int64_t length) {
  std::string key = request_id + "@" + std::to_string(length);
  if (completed_operations_.count(key)) return {};  // a replayed report after a restart
  auto ctx = context();
  auto ops = method_->validation_completed(ctx, request_id, metric, length);
  completed_operations_.insert(key);
  trial_progress_[request_id] = static_cast<double>(length);
  return record(std::move(ops));
}

std::vector<Operation> Searcher::trial_closed(const std::string& request_id) {
  if (trials_closed_.count(request_id)) return {};
  trials_closed_.insert(request_id);
  auto ctx = context();
  auto ops = record(method_->trial_closed(ctx, request_id));
  if (!shutdown_ && trials_requested_ == static_cast<int>(trials_closed_.size())) {
    Shutdown s;
    s.cancel = static_cast<int>(cancels_.size()) >= trials_requested_;
    s.failure = static_cast<int>(failures_.size()) >= trials_requested_;
    ops.emplace_back(s);
    shutdown_ = true;
  }
  return ops;
}

std::vector<Operation> Searcher::trial_exited_early(const std::string& request_id,
                                                    ExitedReason reason) {
  if (exits_.count(request_id)) return {};
  if (reason == ExitedReason::kErrored) failures_.insert(request_id);
  if (reason == ExitedReason::kUserCanceled) cancels_.insert(request_id);
  auto ctx = context();
  auto ops = method_->trial_exited_early(ctx, request_id, reason);
  exits_.insert(request_id);
  return record(std::move(ops));
}

double Searcher::progress() const {
  if (shutdown_) return 1;
  return method_->progress(trial_progress_, trials_closed_);
}

nlohmann::json Searcher::snapshot() const {
  return {{"trials_requested", trials_requested_},
          {"trials_created", trials_created_},
          {"trials_closed", trials_closed_},
          {"exits", exits_},
          {"cancels", cancels_},
          {"failures", failures_},
          {"completed_operations", completed_operations_},
          {"trial_progress", trial_progress_},
          {"shutdown", shutdown_},
          {"rand", rng_.state()},
          {"search_method_state", method_->snapshot()}};
}

void Searcher::restore(const nlohmann::json& state) {
  using Set = std::set<std::string>;
  trials_requested_ = state.at("trials_requested").get<int>();
  trials_created_ = state.at("trials_created").get<Set>();
  trials_closed_ = state.at("trials_closed").get<Set>();
  exits_ = state.at("exits").get<Set>();
  cancels_ = state.at("cancels").get<Set>();
  failures_ = state.at("failures").get<Set>();
  completed_operations_ = state.at("completed_operations").get<Set>();
  trial_progress_ = state.at("trial_progress").get<TrialProgress>();
  shutdown_ = state.at("shutdown").get<bool>();
  rng_.set_state(state.at("rand").get<std::string>());
  method_->restore(state.at("search_method_state"));
}

uint32_t experiment_seed(const config::ExperimentConfig& config) {
  if (config.experiment_seed) return *config.experiment_seed;
  std::random_device rd;
  return rd();
}

}  // namespace det::search
