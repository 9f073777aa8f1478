#pragma once
/// \file
/// The key of a parameter in a torch::optim::Optimizer's state map, on either LibTorch line.

#include <torch/types.h>
#include <torch/version.h>

#include <sstream>
#include <string>

namespace det::optim {

/// The key LibTorch's optimizers use for `param`'s state: its TensorImpl's address printed to a
/// string in 1.13, the address itself since 2.0.
inline auto state_key(const torch::Tensor& param) {
#if TORCH_VERSION_MAJOR >= 2
  return static_cast<void*>(param.unsafeGetTensorImpl());
#else
  std::ostringstream key;
  key << param.unsafeGetTensorImpl();
  return key.str();
#endif
}

}  // namespace det::optim
