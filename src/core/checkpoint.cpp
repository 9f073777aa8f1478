#include "det/core/checkpoint.h"

#include <torch/cuda.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>
#include <torch/version.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <random>
#include <sstream>

#include "det/optim/adadelta.h"
#include "det/optim/state_key.h"
#include "det/record/torch_archive.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/strings.h"

namespace det::checkpoint {
namespace fs = std::filesystem;

namespace {

// The CUDA device the trial's models live on (each rank's own), or nullopt on the CPU.
std::optional<torch::Device> cuda_device_of(
    const std::vector<std::shared_ptr<torch::nn::Module>>& models) {
  for (const auto& m : models)
    for (const auto& p : m->parameters())
      if (p.is_cuda()) return p.device();
  return std::nullopt;
}
const char* kStateFile = "state.pt";

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// Mirrors torch::nn::Module::load, but names what does not match instead of asserting.
void load_module(torch::nn::Module& module, torch::serialize::InputArchive& archive,
                 const std::string& prefix, const fs::path& dir) {
  torch::NoGradGuard no_grad;
  auto load_tensor = [&](const std::string& name, torch::Tensor& t, bool is_buffer) {
    torch::Tensor saved;
    if (!archive.try_read(name, saved, is_buffer))
      throw CheckpointError(
          dir.string() + ": " + (is_buffer ? "buffer '" : "parameter '") + prefix + name +
          "' of the trial's model is not in the checkpoint (was it written by a different model?)");
    if (saved.sizes() != t.sizes())
      throw CheckpointError(dir.string() + ": '" + prefix + name + "' has shape " +
                            shape_str(saved) + " in the checkpoint but " + shape_str(t) +
                            " in the trial's model (hyperparameters or model code differ)");
    t.copy_(saved);
  };
  for (auto& p : module.named_parameters(/*recurse=*/false)) load_tensor(p.key(), p.value(), false);
  for (auto& b : module.named_buffers(/*recurse=*/false)) load_tensor(b.key(), b.value(), true);
  for (auto& child : module.named_children()) {
    if (!child.value()->is_serializable()) continue;
    torch::serialize::InputArchive sub;
    if (!archive.try_read(child.key(), sub))
      throw CheckpointError(
          dir.string() + ": module '" + prefix + child.key() +
          "' of the trial's model is not in the checkpoint (was it written by a different model?)");
    load_module(*child.value(), sub, prefix + child.key() + ".", dir);
  }
}

// The optimizers written and read in det's layout, each with its parameter state and options
// types: calls f(Layout<State, Options>{}) for o's type and returns true, or returns false for
// an optimizer with a layout of its own. The one list save_optimizer and load_optimizer share.
template <typename S, typename O>
struct Layout {
  using State = S;
  using Options = O;
};
template <typename F>
bool with_standard_layout(const torch::optim::Optimizer& o, F&& f) {
  namespace to = torch::optim;
  if (dynamic_cast<const to::SGD*>(&o)) return f(Layout<to::SGDParamState, to::SGDOptions>{}), true;
  if (dynamic_cast<const to::AdamW*>(&o))
    return f(Layout<to::AdamWParamState, to::AdamWOptions>{}), true;
  if (dynamic_cast<const to::Adam*>(&o))
    return f(Layout<to::AdamParamState, to::AdamOptions>{}), true;
  if (dynamic_cast<const to::Adagrad*>(&o))
    return f(Layout<to::AdagradParamState, to::AdagradOptions>{}), true;
  if (dynamic_cast<const to::RMSprop*>(&o))
    return f(Layout<to::RMSpropParamState, to::RMSpropOptions>{}), true;
  if (dynamic_cast<const optim::Adadelta*>(&o))
    return f(Layout<optim::AdadeltaParamState, optim::AdadeltaOptions>{}), true;
  return false;
}

// LibTorch's Optimizer::save keys each parameter's state by its TensorImpl address (and walks a
// hash map), so two identical runs write different bytes. This writes the same layout keyed by
// position instead: a checkpoint's bytes identify its content. Each key is the parameter's
// position over all groups as a decimal number, which LibTorch's Optimizer::load also reads
// (1.13 keeps keys as strings, 2.x parses them with std::stoull, so "0.1" and "0.2" would be one
// key there). det reads its checkpoints itself (load_optimizer), also the "group.index" keys it
// wrote before. Optimizers with a layout of their own (a user's subclass overriding save) keep
// LibTorch's writer and reader.
void save_optimizer(const torch::optim::Optimizer& o, torch::serialize::OutputArchive& archive) {
  if (!with_standard_layout(o, [](auto) {})) {
    o.save(archive);
    return;
  }
  size_t position = 0;
  archive.write("pytorch_version", c10::IValue("1.5.0"));
  torch::serialize::OutputArchive state(archive.compilation_unit()),
      groups(archive.compilation_unit());
  const auto& param_groups = o.param_groups();
  groups.write("param_groups/size", torch::tensor(static_cast<int64_t>(param_groups.size())));
  for (size_t g = 0; g < param_groups.size(); ++g) {
    const auto& params = param_groups[g].params();
    torch::serialize::OutputArchive group(archive.compilation_unit()),
        options(archive.compilation_unit());
    group.write("params/size", torch::tensor(static_cast<int64_t>(params.size())));
    for (size_t k = 0; k < params.size(); ++k) {
      const std::string key = std::to_string(position++);
      group.write("params/" + std::to_string(k), c10::IValue(key));
      auto it = o.state().find(optim::state_key(params[k]));
      if (it == o.state().end()) continue;
      torch::serialize::OutputArchive param_state(archive.compilation_unit());
      it->second->serialize(param_state);
      state.write(key, param_state);
    }
    param_groups[g].options().serialize(options);
    group.write("options", options);
    groups.write("param_groups/" + std::to_string(g), group);
  }
  archive.write("state", state);
  archive.write("param_groups", groups);
}

// Reads what save_optimizer wrote into an optimizer whose parameter state is State and whose
// group options are Options: the groups' options, then each parameter's state by the key its
// position lists. Throws std::runtime_error naming what does not fit.
template <typename State, typename Options>
void load_standard(torch::optim::Optimizer& o, torch::serialize::InputArchive& archive) {
  torch::serialize::InputArchive groups, state;
  archive.read("param_groups", groups);
  archive.read("state", state);
  torch::Tensor n_groups;
  groups.read("param_groups/size", n_groups);
  auto& param_groups = o.param_groups();
  if (n_groups.item<int64_t>() != static_cast<int64_t>(param_groups.size()))
    throw std::runtime_error("it has " + std::to_string(n_groups.item<int64_t>()) +
                             " parameter group(s), the trial's optimizer " +
                             std::to_string(param_groups.size()));
  for (size_t g = 0; g < param_groups.size(); ++g) {
    torch::serialize::InputArchive group, options_archive;
    groups.read("param_groups/" + std::to_string(g), group);
    const auto& params = param_groups[g].params();
    torch::Tensor n_params;
    group.read("params/size", n_params);
    if (n_params.item<int64_t>() != static_cast<int64_t>(params.size()))
      throw std::runtime_error("group " + std::to_string(g) + " has " +
                               std::to_string(n_params.item<int64_t>()) +
                               " parameter(s), the trial's " + std::to_string(params.size()));
    group.read("options", options_archive);
    Options options(0.0);
    options.serialize(options_archive);
    param_groups[g].set_options(std::make_unique<Options>(options));
    for (size_t k = 0; k < params.size(); ++k) {
      c10::IValue key;
      group.read("params/" + std::to_string(k), key);
      torch::serialize::InputArchive param_state;
      const auto slot = optim::state_key(params[k]);
      if (!state.try_read(key.toStringRef(), param_state)) {
        o.state().erase(slot);  // no step taken for it yet
        continue;
      }
      auto st = std::make_unique<State>();
      st->serialize(param_state);
      o.state()[slot] = std::move(st);
    }
  }
}

void load_optimizer(torch::optim::Optimizer& o, torch::serialize::InputArchive& archive) {
  const bool standard = with_standard_layout(o, [&](auto layout) {
    using L = decltype(layout);
    load_standard<typename L::State, typename L::Options>(o, archive);
  });
  if (!standard) o.load(archive);  // a layout of its own
}

int64_t count_params(const torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}
}  // namespace

fs::path normalize_dir(const fs::path& dir) {
  fs::path p = fs::absolute(dir).lexically_normal();
  if (p.filename().empty() && p.has_parent_path()) p = p.parent_path();
  return p;
}

std::string new_uuid() {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 1
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48),
                static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

namespace {

// A file written through LibTorch's archive writer. The writer must not throw through the zip
// writer (it would abort the process), so a failed write is remembered and reported afterwards.
class FileSink {
 public:
  explicit FileSink(const fs::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) errno_ = errno;
  }
  ~FileSink() {
    if (fd_ >= 0) ::close(fd_);
  }
  size_t write(const void* data, size_t n) {
    if (errno_ != 0) return n;  // swallow the rest; finish() reports the first error
    const char* p = static_cast<const char*>(data);
    size_t done = 0;
    while (done < n) {
      ssize_t w = ::write(fd_, p + done, n - done);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        errno_ = w < 0 ? errno : EIO;
        return n;
      }
      done += static_cast<size_t>(w);
    }
    return n;
  }
  /// fsyncs and closes; throws det::Error with the first failure.
  void finish() {
    if (errno_ == 0 && ::fsync(fd_) != 0) errno_ = errno;
    if (fd_ >= 0 && ::close(fd_) != 0 && errno_ == 0) errno_ = errno;
    fd_ = -1;
    if (errno_ == 0) return;
    const std::string msg = "cannot write " + path_.string() + ": " + std::strerror(errno_);
    if (is_storage_errno(errno_)) throw StorageError(msg);
    throw Error(msg);
  }

 private:
  fs::path path_;
  int fd_ = -1;
  int errno_ = 0;  ///< The first failure.
};

}  // namespace

fs::path write(const fs::path& parent, record::CheckpointMetadata metadata,
               const std::vector<std::shared_ptr<torch::nn::Module>>& models,
               const std::vector<std::shared_ptr<torch::optim::Optimizer>>& optimizers) {
  const fs::path final_dir = parent / metadata.uuid;
  const fs::path tmp_dir = record::staging_dir(final_dir);
  try {
    fs::create_directories(tmp_dir);
    torch::serialize::OutputArchive top;
    metadata.models.clear();
    for (size_t i = 0; i < models.size(); ++i) {
      torch::serialize::OutputArchive sub(top.compilation_unit());
      models[i]->save(sub);
      top.write("model_" + std::to_string(i), sub);
      metadata.models.push_back({models[i]->name(), count_params(*models[i])});
    }
    for (size_t i = 0; i < optimizers.size(); ++i) {
      torch::serialize::OutputArchive sub(top.compilation_unit());
      save_optimizer(*optimizers[i], sub);
      top.write("optimizer_" + std::to_string(i), sub);
    }
    {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      top.write("rng_cpu", gen.get_state());
    }
    if (auto device = cuda_device_of(models)) {  // this rank's GPU (LOCAL_RANK), not GPU 0
      const auto& gen = at::globalContext().defaultGenerator(*device);
      top.write("rng_cuda", gen.get_state());
    }
    FileSink sink(tmp_dir / kStateFile);
    top.save_to([&sink](const void* data, size_t n) { return sink.write(data, n); });
    sink.finish();

    metadata.format_version = record::CheckpointMetadata::kFormatVersion;
    metadata.libtorch_version = TORCH_VERSION;
    metadata.num_optimizers = static_cast<int64_t>(optimizers.size());
    metadata.files.clear();
    metadata.files[kStateFile] = {fs::file_size(tmp_dir / kStateFile),
                                  util::file_crc32(tmp_dir / kStateFile)};
    util::write_file_atomic(tmp_dir / record::kMetadataFile, metadata.to_json().dump(2));
    util::fsync_dir(tmp_dir);
  } catch (const StorageError& e) {
    std::error_code ec;
    fs::remove_all(tmp_dir, ec);
    throw StorageError(
        "cannot write checkpoint " + final_dir.string() + ": " + util::shorten(e.what(), 200) +
        "; the previous checkpoints are intact: free space, then continue (--resume-experiment)");
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(tmp_dir, ec);
    if (const auto* fe = dynamic_cast<const fs::filesystem_error*>(&e);
        fe && is_storage_errno(fe->code().value()))
      throw StorageError(
          "cannot write checkpoint " + final_dir.string() + ": " + fe->code().message() +
          "; the previous checkpoints are intact: free space, then continue (--resume-experiment)");
    throw CheckpointError("cannot write checkpoint " + final_dir.string() + ": " +
                          util::shorten(e.what(), 200) +
                          " (check free disk space; the previous checkpoints are intact)");
  }
  return tmp_dir;
}

fs::path commit(const fs::path& staging) { return record::commit_checkpoint(staging); }

fs::path save(const fs::path& parent, record::CheckpointMetadata metadata,
              const std::vector<std::shared_ptr<torch::nn::Module>>& models,
              const std::vector<std::shared_ptr<torch::optim::Optimizer>>& optimizers) {
  return commit(write(parent, std::move(metadata), models, optimizers));
}

void load(const fs::path& dir, const std::vector<std::shared_ptr<torch::nn::Module>>& models,
          const std::vector<std::shared_ptr<torch::optim::Optimizer>>& optimizers,
          bool restore_rng) {
  record::CheckpointMetadata meta = read_metadata(dir);
  if (!meta.files.count(kStateFile))
    throw CheckpointError((dir / record::kMetadataFile).string() +
                          ": field 'files' does not list " + kStateFile);
  size_t saved_models = meta.models.size();
  size_t saved_opts = static_cast<size_t>(meta.num_optimizers);
  if (saved_models != models.size())
    throw CheckpointError(dir.string() + ": the checkpoint holds " + std::to_string(saved_models) +
                          " model(s) but the trial wraps " + std::to_string(models.size()));
  if (saved_opts != optimizers.size())
    throw CheckpointError(dir.string() + ": the checkpoint holds " + std::to_string(saved_opts) +
                          " optimizer(s) but the trial wraps " + std::to_string(optimizers.size()));
  // The archive is checked before LibTorch reads it (it trusts every size in it), and LibTorch
  // then reads the very file checked (through its descriptor).
  const util::ReadFile state(dir / kStateFile, &util::throw_as<CheckpointError>,
                             "a checkpoint's state.pt is a regular file written by det");
  record::check_torch_archive(state);
  torch::serialize::InputArchive top;
  try {
    top.load_from(state.proc_path());
  } catch (const std::exception& e) {
    const std::string what = e.what();
    throw CheckpointError((dir / kStateFile).string() + ": cannot be read as a LibTorch archive (" +
                          util::shorten(what.substr(0, what.find('\n')), 160) + ")");
  }
  for (size_t i = 0; i < models.size(); ++i) {
    torch::serialize::InputArchive sub;
    if (!top.try_read("model_" + std::to_string(i), sub))
      throw CheckpointError(dir.string() + ": model_" + std::to_string(i) +
                            " is missing from state.pt");
    load_module(*models[i], sub, "", dir);
  }
  // The shapes matched (load_module names a parameter that differs); the count the metadata
  // claims must be the model's too.
  for (size_t i = 0; i < models.size(); ++i) {
    int64_t count = 0;
    for (const auto& p : models[i]->parameters()) count += p.numel();
    if (count != meta.models[i].parameters)
      throw CheckpointError(dir.string() + ": model " + std::to_string(i) + " (" +
                            util::quote(meta.models[i].name) + ") was saved with " +
                            std::to_string(meta.models[i].parameters) +
                            " parameter elements, the trial's has " + std::to_string(count) +
                            " (a checkpoint of another model, or different hyperparameters?)");
  }
  for (size_t i = 0; i < optimizers.size(); ++i) {
    torch::serialize::InputArchive sub;
    if (!top.try_read("optimizer_" + std::to_string(i), sub))
      throw CheckpointError(dir.string() + ": optimizer_" + std::to_string(i) +
                            " is missing from state.pt");
    try {
      load_optimizer(*optimizers[i], sub);
    } catch (const std::exception& e) {
      std::string msg = e.what();
      throw CheckpointError(
          dir.string() + ": optimizer " + std::to_string(i) +
          " state does not fit the trial's optimizer (different optimizer type or parameters?): " +
          msg.substr(0, msg.find('\n')));
    }
  }
  if (restore_rng) {
    torch::Tensor state;
    if (top.try_read("rng_cpu", state)) {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(state);
    }
    auto device = cuda_device_of(models);
    if (device && top.try_read("rng_cuda", state)) {
      auto gen = at::globalContext().defaultGenerator(*device);
      gen.set_state(state);
    }
  }
}

}  // namespace det::checkpoint
