#include "det/optim/adamw.h"

#include <algorithm>

#include "det/util/error.h"

namespace det::optim {

WeightDecayGroups weight_decay_groups(const torch::nn::Module& module, const std::vector<std::string>& skip) {
  WeightDecayGroups g;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const auto& name = item.key();
    const auto& p = item.value();
    if (!p.requires_grad()) continue;
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    const bool skipped = std::find(skip.begin(), skip.end(), name) != skip.end();
    (p.dim() <= 1 || is_bias || skipped ? g.no_decay : g.decay).push_back(p);
  }
  return g;
}

std::shared_ptr<torch::optim::AdamW> make_adamw(const torch::nn::Module& module, torch::optim::AdamWOptions options,
                                                const std::vector<std::string>& skip) {
  auto groups = weight_decay_groups(module, skip);
  auto no_decay = std::make_unique<torch::optim::AdamWOptions>(options);
  no_decay->weight_decay(0.0);
  auto decay = std::make_unique<torch::optim::AdamWOptions>(options);
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  param_groups.emplace_back(groups.no_decay, std::move(no_decay));
  param_groups.emplace_back(groups.decay, std::move(decay));
  options.weight_decay(0.0);  // the defaults; every group sets its own
  return std::make_shared<torch::optim::AdamW>(std::move(param_groups), options);
}

std::shared_ptr<torch::optim::AdamW> make_adamw_from_json(const torch::nn::Module& module, const nlohmann::json& s,
                                                          const std::string& where, const std::vector<std::string>& skip) {
  if (!s.is_object()) throw ConfigError(where + ": expected a mapping of timm create_optimizer arguments");
  static const std::vector<std::string> known = {"opt", "lr", "opt_eps", "opt_betas", "weight_decay", "momentum", "clip_grad"};
  for (const auto& [k, v] : s.items())
    if (std::find(known.begin(), known.end(), k) == known.end())
      throw ConfigError(where + "." + k + ": unknown optimizer argument (known: opt, lr, opt_eps, opt_betas, weight_decay, momentum, clip_grad)");
  try {
    std::string opt = s.value("opt", std::string("adamw"));
    if (opt != "adamw")
      throw ConfigError(where + ".opt: '" + opt + "' is not supported; det builds timm's 'adamw' only");
    if (!s.contains("lr")) throw ConfigError(where + ".lr: missing; set the learning rate");
    torch::optim::AdamWOptions o(s.at("lr").get<double>());
    o.weight_decay(s.value("weight_decay", 0.0));
    if (s.contains("opt_eps") && !s["opt_eps"].is_null()) o.eps(s["opt_eps"].get<double>());
    else o.eps(1e-8);
    if (s.contains("opt_betas") && !s["opt_betas"].is_null()) {
      auto b = s["opt_betas"].get<std::vector<double>>();
      if (b.size() != 2) throw ConfigError(where + ".opt_betas: expected two numbers [beta1, beta2] or null");
      o.betas({b[0], b[1]});
    }
    if (s.contains("clip_grad") && !s["clip_grad"].is_null())
      throw ConfigError(where + ".clip_grad: gradient clipping is not supported here; set it to null");
    return make_adamw(module, o, skip);
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(where + ": a value has the wrong type (" + std::string(e.what()) + ")");
  }
}

}  // namespace det::optim
