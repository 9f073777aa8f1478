#include "det/nn/safetensors.h"

#include <algorithm>
#include <cstring>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "det/util/error.h"
#include "det/util/fs.h"

namespace det::nn {
namespace {

struct DtypeName {
  const char* name;
  torch::ScalarType type;
};
const DtypeName kDtypes[] = {{"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16},
                             {"BF16", torch::kBFloat16}, {"I64", torch::kInt64},  {"I32", torch::kInt32},
                             {"I16", torch::kInt16},     {"I8", torch::kInt8},    {"U8", torch::kUInt8},
                             {"BOOL", torch::kBool}};

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

}  // namespace

TensorFile parse_safetensors(const std::string& bytes, const std::string& where) {
  if (bytes.size() < 8)
    throw DataError(where + ": not a safetensors file: " + std::to_string(bytes.size()) + " bytes, shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(bytes[static_cast<size_t>(i)]);
  if (n > bytes.size() - 8)
    throw DataError(where + ": truncated or not a safetensors file: the header announces " + std::to_string(n) +
                    " bytes but only " + std::to_string(bytes.size() - 8) + " follow");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<std::ptrdiff_t>(n));
  } catch (const nlohmann::json::exception& e) {
    throw DataError(where + ": the safetensors header is not valid JSON (" + e.what() + ")");
  }
  if (!header.is_object()) throw DataError(where + ": the safetensors header is not a JSON object");
  const size_t data_start = 8 + n, data_size = bytes.size() - data_start;
  TensorFile out;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) throw DataError(where + ": __metadata__ must be an object of strings");
      for (const auto& [k, v] : info.items()) {
        if (!v.is_string()) throw DataError(where + ": __metadata__." + k + " is not a string");
        out.metadata[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string what = where + ": tensor '" + name + "'";
    try {
      std::string dtype = info.at("dtype").get<std::string>();
      auto shape = info.at("shape").get<std::vector<int64_t>>();
      auto offsets = info.at("data_offsets").get<std::vector<uint64_t>>();
      auto it = std::find_if(std::begin(kDtypes), std::end(kDtypes), [&](const DtypeName& d) { return dtype == d.name; });
      if (it == std::end(kDtypes)) throw DataError(what + ": unsupported dtype '" + dtype + "'");
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size)
        throw DataError(what + ": data_offsets outside the " + std::to_string(data_size) + " data bytes (truncated file?)");
      int64_t numel = 1;
      for (auto d : shape) {
        if (d < 0) throw DataError(what + ": negative dimension in shape " + shape_str(shape));
        numel *= d;
      }
      const uint64_t expected = static_cast<uint64_t>(numel) * c10::elementSize(it->type);
      if (offsets[1] - offsets[0] != expected)
        throw DataError(what + ": shape " + shape_str(shape) + " of " + dtype + " needs " + std::to_string(expected) +
                        " bytes, data_offsets give " + std::to_string(offsets[1] - offsets[0]));
      ranges.emplace_back(offsets[0], offsets[1]);
      auto t = torch::empty(shape, torch::TensorOptions().dtype(it->type));
      if (expected) std::memcpy(t.data_ptr(), bytes.data() + data_start + offsets[0], expected);
      out.tensors[name] = t;
    } catch (const nlohmann::json::exception& e) {
      throw DataError(what + ": malformed header entry (" + e.what() + "); expected {dtype, shape, data_offsets}");
    }
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second && ranges[i].first != ranges[i].second)
      throw DataError(where + ": two tensors' data_offsets overlap; the file is corrupt");
  return out;
}

TensorFile read_safetensors(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) throw DataError(path.string() + ": no such safetensors file");
  return parse_safetensors(util::read_file(path), path.string());
}

std::string serialize_safetensors(const std::map<std::string, torch::Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    auto it = std::find_if(std::begin(kDtypes), std::end(kDtypes), [&](const DtypeName& d) { return d.type == t.scalar_type(); });
    if (it == std::end(kDtypes))
      throw Error("write_safetensors: tensor '" + name + "' has dtype " + std::string(c10::toString(t.scalar_type())) +
                  ", which safetensors cannot hold here; convert it first");
    const uint64_t size = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", it->name}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + size}}};
    offset += size;
    data.push_back(t);
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // align the data to 8 bytes, as the Rust writer does
  std::string out(8, '\0');
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += h;
  out.reserve(out.size() + offset);
  for (const auto& t : data) out.append(static_cast<const char*>(t.data_ptr()), static_cast<size_t>(t.numel()) * t.element_size());
  return out;
}

void write_safetensors(const std::filesystem::path& path, const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  util::write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters(true)) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers(true)) out[b.key()] = b.value();
  return out;
}

std::vector<std::string> load_state_dict(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                                         const std::string& where, const std::vector<std::string>& allow_missing,
                                         bool ignore_unexpected) {
  auto own = state_dict(module);
  std::vector<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : own) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (std::find(allow_missing.begin(), allow_missing.end(), name) != allow_missing.end()) continue;
      throw DataError(where + ": missing tensor '" + name + "' of shape " + shape_str(target.sizes()) +
                      "; the weights were saved from a different model or variant");
    }
    if (it->second.sizes() != target.sizes())
      throw DataError(where + ": tensor '" + name + "' has shape " + shape_str(it->second.sizes()) + ", the model expects " +
                      shape_str(target.sizes()) + "; check the variant, image size and number of classes");
    target.copy_(it->second);
    loaded.push_back(name);
  }
  if (!ignore_unexpected)
    for (const auto& [name, t] : tensors)
      if (!own.count(name))
        throw DataError(where + ": unexpected tensor '" + name + "' of shape " + shape_str(t.sizes()) +
                        " that the model does not have; the weights were saved from a different model");
  return loaded;
}

}  // namespace det::nn
