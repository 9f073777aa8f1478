#include "device.h"

#include <ATen/Context.h>

#ifdef DET_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace det::detail {

std::vector<std::string> apply_backend_options(const config::OptimizationsConfig& o,
                                               const torch::Device& device) {
  std::vector<std::string> no_effect;
  auto& ctx = at::globalContext();
  if (o.cudnn_benchmark) {
    if (device.is_cuda())
      ctx.setBenchmarkCuDNN(true);
    else
      no_effect.push_back("optimizations.cudnn_benchmark: true has no effect on the CPU");
  }
  if (o.tf32) {
    if (device.is_cuda()) {
      ctx.setAllowTF32CuBLAS(*o.tf32);
      ctx.setAllowTF32CuDNN(*o.tf32);
    } else {
      no_effect.push_back("optimizations.tf32 has no effect on the CPU");
    }
  }
  return no_effect;
}

void to_channels_last(const std::vector<std::shared_ptr<torch::nn::Module>>& models) {
  torch::NoGradGuard no_grad;
  for (const auto& m : models) {
    for (auto& p : m->parameters())
      if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
    for (auto& b : m->buffers())
      if (b.dim() == 4) b.set_data(b.data().contiguous(at::MemoryFormat::ChannelsLast));
  }
}

data::Batch to_channels_last(data::Batch batch) {
  auto convert = [](torch::Tensor& t) {
    if (t.defined() && t.dim() == 4 && t.is_floating_point())
      t = t.contiguous(at::MemoryFormat::ChannelsLast);
  };
  convert(batch.data);
  for (auto& [name, t] : batch.extra) convert(t);
  return batch;
}

std::optional<int64_t> peak_device_memory(const torch::Device& device) {
#ifdef DET_WITH_CUDA
  if (device.is_cuda()) {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    return stats.allocated_bytes[0].peak;  // index 0: StatType::AGGREGATE
  }
#else
  (void)device;
#endif
  return std::nullopt;
}

void reset_peak_device_memory(const torch::Device& device) {
#ifdef DET_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(device.index());
#else
  (void)device;
#endif
}

}  // namespace det::detail
