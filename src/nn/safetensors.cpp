#include "det/nn/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include "det/util/error.h"
#include "det/util/fs.h"
#include "safetensors_format.h"

namespace det::nn {
namespace {

struct DtypeName {
  const char* name;
  torch::ScalarType type;
};
const DtypeName kDtypes[] = {{"F64", torch::kFloat64}, {"F32", torch::kFloat32},
                             {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
                             {"I64", torch::kInt64},   {"I32", torch::kInt32},
                             {"I16", torch::kInt16},   {"I8", torch::kInt8},
                             {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? "," : "") + std::to_string(s[i]);
  return out + "]";
}

torch::ScalarType scalar_type_of(const std::string& dtype) {
  auto it = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                         [&](const DtypeName& d) { return dtype == d.name; });
  return it->type;  // parse_safetensors_header admits only these dtypes
}

// A BOOL tensor's bytes must be 0 or 1: anything else is not a bool to LibTorch.
void check_bools(const torch::Tensor& t, const SafetensorsEntry& e, const std::string& where) {
  if (t.scalar_type() != torch::kBool) return;
  const auto* b = static_cast<const uint8_t*>(t.data_ptr());
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    if (b[i] > 1)
      throw DataError(where + ": tensor " + quote_for_error(e.name) + " is BOOL but element " +
                      std::to_string(i) + " holds byte " + std::to_string(b[i]) +
                      "; the file is corrupt");
}

}  // namespace

std::string safetensors_dtype_name(torch::ScalarType type) {
  auto it = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                         [&](const DtypeName& d) { return d.type == type; });
  return it != std::end(kDtypes) ? it->name : std::string(c10::toString(type));
}

TensorFile parse_safetensors(const std::string& bytes, const std::string& where) {
  if (bytes.size() < 8)
    throw DataError(where + ": not a safetensors file: " + std::to_string(bytes.size()) +
                    " bytes, shorter than the 8-byte header length");
  const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
  const uint64_t n = safetensors_header_length(b, bytes.size(), where);
  SafetensorsIndex index =
      parse_safetensors_header(std::string_view(bytes).substr(8, n), bytes.size(), where);
  TensorFile out;
  out.metadata = std::move(index.metadata);
  for (const auto& e : index.tensors) {
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(scalar_type_of(e.dtype)));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), b + 8 + n + e.begin, e.end - e.begin);
    check_bools(t, e, where);
    out.tensors[e.name] = t;
  }
  return out;
}

TensorFile read_safetensors(const std::filesystem::path& path) {
  const std::string where = path.string();
  // A regular file, known before a byte is read (a FIFO is refused, never waited on).
  const util::ReadFile file(path, &util::throw_as<DataError>,
                            "give the path of a .safetensors file");
  const uint64_t file_bytes = file.size();
  // Bounded reads at known offsets: the prefix, the header (at most 100 MB, checked against the
  // file first), then each tensor straight into its own memory once the header has been checked
  // to tile the file exactly.
  auto read_at = [&](void* dst, uint64_t size, uint64_t offset, const std::string& what) {
    file.read_at(dst, size, offset, what);
  };
  if (file_bytes < 8)
    throw DataError(where + ": not a safetensors file: " + std::to_string(file_bytes) +
                    " bytes, shorter than the 8-byte header length");
  unsigned char prefix[8];
  read_at(prefix, 8, 0, "the header length");
  const uint64_t n = safetensors_header_length(prefix, file_bytes, where);
  std::string header(n, '\0');
  read_at(header.data(), n, 8, "the header");
  SafetensorsIndex index = parse_safetensors_header(header, file_bytes, where);
  TensorFile out;
  out.metadata = std::move(index.metadata);
  for (const auto& e : index.tensors) {
    auto t = torch::empty(e.shape, torch::TensorOptions().dtype(scalar_type_of(e.dtype)));
    read_at(t.data_ptr(), e.end - e.begin, 8 + n + e.begin, "tensor " + quote_for_error(e.name));
    check_bools(t, e, where);
    out.tensors[e.name] = t;
  }
  return out;
}

std::string serialize_safetensors(const std::map<std::string, torch::Tensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    auto it = std::find_if(std::begin(kDtypes), std::end(kDtypes),
                           [&](const DtypeName& d) { return d.type == t.scalar_type(); });
    if (it == std::end(kDtypes))
      throw Error("write_safetensors: tensor '" + name + "' has dtype " +
                  std::string(c10::toString(t.scalar_type())) +
                  ", which safetensors cannot hold here; convert it first");
    const uint64_t size = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {
        {"dtype", it->name}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + size}}};
    offset += size;
    data.push_back(t);
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // align the data to 8 bytes, as the Rust writer does
  std::string out(8, '\0');
  const uint64_t n = h.size();
  for (int i = 0; i < 8; ++i)
    out[static_cast<size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  out += h;
  out.reserve(out.size() + offset);
  for (const auto& t : data)
    out.append(static_cast<const char*>(t.data_ptr()),
               static_cast<size_t>(t.numel()) * t.element_size());
  return out;
}

void write_safetensors(const std::filesystem::path& path,
                       const std::map<std::string, torch::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  util::write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

std::map<std::string, torch::Tensor> state_dict(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters(true)) out[p.key()] = p.value();
  for (const auto& b : module.named_buffers(true)) out[b.key()] = b.value();
  return out;
}

std::vector<std::string> load_state_dict(torch::nn::Module& module,
                                         const std::map<std::string, torch::Tensor>& tensors,
                                         const std::string& where,
                                         const std::vector<std::string>& allow_missing,
                                         bool ignore_unexpected, bool convert_dtypes) {
  auto own = state_dict(module);
  std::vector<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : own) {
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      if (std::find(allow_missing.begin(), allow_missing.end(), name) != allow_missing.end())
        continue;
      throw DataError(where + ": missing tensor '" + name + "' of shape " +
                      shape_str(target.sizes()) +
                      "; the weights were saved from a different model or variant");
    }
    if (it->second.sizes() != target.sizes())
      throw DataError(where + ": tensor '" + name + "' has shape " + shape_str(it->second.sizes()) +
                      ", the model expects " + shape_str(target.sizes()) +
                      "; check the variant, image size and number of classes");
    if (it->second.scalar_type() != target.scalar_type() && !convert_dtypes)
      throw DataError(
          where + ": tensor '" + name + "' is " + safetensors_dtype_name(it->second.scalar_type()) +
          " but the model's is " + safetensors_dtype_name(target.scalar_type()) +
          "; convert the weights to the model's dtype, or ask for the conversion (convert_dtypes)");
    target.copy_(it->second);
    loaded.push_back(name);
  }
  if (!ignore_unexpected)
    for (const auto& [name, t] : tensors)
      if (!own.count(name))
        throw DataError(
            where + ": unexpected tensor '" + name + "' of shape " + shape_str(t.sizes()) +
            " that the model does not have; the weights were saved from a different model");
  return loaded;
}

}  // namespace det::nn
