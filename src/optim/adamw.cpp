#include "det/optim/adamw.h"

#include <algorithm>

#include "det/util/error.h"
#include "det/util/strings.h"

namespace det::optim {

WeightDecayGroups weight_decay_groups(const torch::nn::Module& module,
                                      const std::vector<std::string>& skip) {
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

std::shared_ptr<torch::optim::AdamW> make_adamw(const torch::nn::Module& module,
                                                torch::optim::AdamWOptions options,
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

std::shared_ptr<torch::optim::AdamW> make_adamw_from_json(const torch::nn::Module& module,
                                                          const config::Args& s,
                                                          const std::vector<std::string>& skip) {
  if (!s.is_object()) s.fail_expected("a mapping of timm create_optimizer arguments");
  s.check_keys({"opt", "lr", "opt_eps", "opt_betas", "weight_decay", "momentum", "clip_grad"});
  const std::string opt = s.get<std::string>("opt", "adamw");
  if (opt != "adamw")
    s["opt"].fail(util::quote(opt) + " is not supported; det builds timm's 'adamw' only");
  torch::optim::AdamWOptions o(s.get<double>("lr", config::Range::at_least(0)));
  o.weight_decay(s.get<double>("weight_decay", 0.0, config::Range::at_least(0)));
  o.eps(s.get<double>("opt_eps", 1e-8, config::Range::at_least(0)));
  if (s.has("opt_betas")) {
    auto b =
        s.get<std::vector<double>>("opt_betas", config::Range{0, 1, false, /*max_excluded=*/true});
    if (b.size() != 2) s["opt_betas"].fail_expected("two numbers [beta1, beta2] or null");
    o.betas({b[0], b[1]});
  }
  s.get<double>("momentum", 0.0);  // timm passes it on; AdamW does not use it
  if (s.has("clip_grad"))
    s["clip_grad"].fail("gradient clipping is not supported here; set it to null");
  return make_adamw(module, o, skip);
}

}  // namespace det::optim
