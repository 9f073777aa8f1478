#pragma once
/// \file
/// AdamW with timm's parameter groups: no weight decay for biases and 1-D parameters.
/// The update is LibTorch's torch::optim::AdamW, which computes what torch.optim.AdamW does
/// (tested against PyTorch in tests/optim/adamw_test.cpp).

#include <memory>
#include <string>
#include <vector>

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include "det/config/args.h"

namespace det::optim {

/// timm's add_weight_decay split of a module's trainable parameters.
struct WeightDecayGroups {
  std::vector<torch::Tensor> decay;  ///< Every other trainable parameter.
  std::vector<torch::Tensor>
      no_decay;  ///< 1-D parameters, names ending in ".bias", names in `skip`.
};

/// Splits the trainable (requires_grad) parameters of `module` as timm's add_weight_decay does.
/// `skip` holds full parameter names (e.g. "cls_token", "pos_embed") that are never decayed.
WeightDecayGroups weight_decay_groups(const torch::nn::Module& module,
                                      const std::vector<std::string>& skip = {});

/// AdamW over `module` with timm's groups [no_decay (weight_decay 0), decay (weight_decay)], as
/// timm.optim.create_optimizer builds it with filter_bias_and_bn.
std::shared_ptr<torch::optim::AdamW> make_adamw(const torch::nn::Module& module,
                                                torch::optim::AdamWOptions options,
                                                const std::vector<std::string>& skip = {});

/// Builds AdamW from the ShiftViT example's `optimizer` section (timm create_optimizer args:
/// opt "adamw", lr, opt_eps, opt_betas, weight_decay, momentum (unused by AdamW), clip_grad
/// (null only)), e.g. `context.hparam("optimizer")`. Unknown keys, wrong types and other
/// optimizers are ConfigErrors naming the file position and key.
std::shared_ptr<torch::optim::AdamW> make_adamw_from_json(
    const torch::nn::Module& module, const config::Args& section,
    const std::vector<std::string>& skip = {});

}  // namespace det::optim
