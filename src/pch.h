// Precompiled header for the LibTorch layers: parsed once per build, not once per file.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
