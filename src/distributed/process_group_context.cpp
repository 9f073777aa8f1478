// The c10d-backed DistributedContext: TCPStore rendezvous, then ProcessGroupGloo (CPU) or
// ProcessGroupNCCL (CUDA, when built with DET_WITH_NCCL). c10d headers stay in this file.
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef DET_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <torch/version.h>
#ifdef DET_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>
#include <torch/cuda.h>

#include "det/distributed/distributed_context.h"
#include "det/util/error.h"
#include "det/util/fs.h"
#include "det/util/heartbeat.h"
#include "det/util/log.h"

namespace det::distributed {

namespace {

// LibTorch 2.x split ProcessGroup into a dispatching ProcessGroup and per-backend Backends;
// Gloo and NCCL derive from Backend there and from ProcessGroup in 1.13. Both have the same calls.
#if TORCH_VERSION_MAJOR >= 2
using PGBackend = c10d::Backend;
#else
using PGBackend = c10d::ProcessGroup;
#endif

std::string first_line(const std::string& s) {
  auto nl = s.find('\n');
  return nl == std::string::npos ? s : s.substr(0, nl);
}

c10d::ReduceOp to_c10d(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg:
      return c10d::ReduceOp::SUM;  // Gloo has no AVG: sum, then divide.
    case ReduceOp::kMin:
      return c10d::ReduceOp::MIN;
    case ReduceOp::kMax:
      return c10d::ReduceOp::MAX;
  }
  return c10d::ReduceOp::SUM;
}

[[maybe_unused]] bool is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

// The address of this host's interface that reaches `host` (a UDP socket's connect only looks up
// the route; nothing is sent), or "" when there is none. Gloo binds there: ranks on several hosts
// then find each other over the network that reaches rank 0, whatever this host's name resolves to.
[[maybe_unused]] std::string local_address_towards(const std::string& host, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    return "";
  std::string out;
  for (addrinfo* a = res; a && out.empty(); a = a->ai_next) {
    const int fd = ::socket(a->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    sockaddr_storage local{};
    socklen_t len = sizeof local;
    char buf[INET6_ADDRSTRLEN] = {};
    if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0) {
      const void* ip =
          local.ss_family == AF_INET
              ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&local)->sin_addr)
              : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr);
      if (::inet_ntop(local.ss_family, ip, buf, sizeof buf)) out = buf;
    }
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return out;
}

// The secret every rank of a run shares: DET_RENDEZVOUS_SECRET, else the user's own
// ~/.det/rendezvous-secret (created once with 32 random bytes, mode 0600; a home directory shared
// by the nodes gives every rank the same). Every key of the run's TCPStore is prefixed with it, so
// a peer without it can neither join the rendezvous nor read or write what the ranks exchange.
std::string rendezvous_secret() {
  if (const char* s = std::getenv("DET_RENDEZVOUS_SECRET"); s && *s) return s;
  const char* home = std::getenv("HOME");
  if (!home || !*home) {  // a batch system's bare environment: the password database knows
    const passwd* pw = ::getpwuid(::getuid());
    home = pw ? pw->pw_dir : nullptr;
  }
  if (!home || !*home)
    throw DistributedError(
        "no rendezvous secret: set DET_RENDEZVOUS_SECRET to the same value for every rank (this "
        "user has no home directory for ~/.det/rendezvous-secret)");
  namespace fs = std::filesystem;
  const fs::path path = fs::path(home) / ".det" / "rendezvous-secret";
  auto read = [&]() -> std::string {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "";
    if ((st.st_mode & 077) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      throw DistributedError(path.string() + " can be read by others (mode " + mode +
                             "): it guards the rendezvous; chmod 600 it");
    }
    const std::string text = util::ReadFile(path, &util::throw_as<DistributedError>,
                                            "it should hold one line: the rendezvous secret")
                                 .read_all(4096, "a rendezvous secret");
    return text.substr(0, text.find('\n'));
  };
  if (std::string secret = read(); !secret.empty()) return secret;
  // Created beside, then linked into place: ranks starting at once all end up with one secret.
  std::error_code ec;
  fs::create_directories(path.parent_path(), ec);
  ::chmod(path.parent_path().c_str(), 0700);
  unsigned char bytes[32];
  std::ifstream random("/dev/urandom", std::ios::binary);
  if (!random.read(reinterpret_cast<char*>(bytes), sizeof bytes))
    throw DistributedError("cannot read /dev/urandom for the rendezvous secret");
  std::string hex;
  for (unsigned char b : bytes) {
    static const char* digits = "0123456789abcdef";
    hex += digits[b >> 4];
    hex += digits[b & 15];
  }
  const fs::path tmp = path.string() + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 ||
      ::write(fd, (hex + "\n").data(), hex.size() + 1) != static_cast<ssize_t>(hex.size() + 1))
    throw DistributedError("cannot write the rendezvous secret " + tmp.string() + ": " +
                           std::strerror(errno) + "; set DET_RENDEZVOUS_SECRET instead");
  ::fsync(fd);
  ::close(fd);
  ::link(tmp.c_str(), path.c_str());  // fails if another rank was first: its secret wins
  ::unlink(tmp.c_str());
  std::string secret = read();
  if (secret.empty())
    throw DistributedError("cannot read the rendezvous secret " + path.string() +
                           "; set DET_RENDEZVOUS_SECRET instead");
  return secret;
}

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
// Rank 0's listening socket for the TCPStore, bound to the address the other ranks connect to
// (MASTER_ADDR's) rather than to every interface; -1 where that cannot be known safely (then
// TCPStore binds as it does by default): a host name that resolves to a loopback address here
// (Debian's /etc/hosts gives the host's own name 127.0.1.1) may be another address to the others.
int bound_listener(const std::string& master_addr, int port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string host = master_addr == "localhost" ? "127.0.0.1" : master_addr;
  if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || !res)
    return -1;
  int fd = -1;
  for (addrinfo* a = res; a && fd < 0; a = a->ai_next) {
    char ip[INET6_ADDRSTRLEN] = {};
    const void* addr =
        a->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if (!::inet_ntop(a->ai_family, addr, ip, sizeof ip)) continue;
    if (is_loopback(ip) && !is_loopback(master_addr)) break;  // see above
    const int s = ::socket(a->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) continue;
    int one = 1;
    ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(s, a->ai_addr, a->ai_addrlen) != 0) {
      const int err = errno;
      ::close(s);
      if (err == EADDRNOTAVAIL) continue;  // not this host's address (NAT): the default
      ::freeaddrinfo(res);
      throw DistributedError("rank 0 cannot listen on " + std::string(ip) + ":" +
                             std::to_string(port) + " for the rendezvous: " + std::strerror(err) +
                             " (is the port in use? set MASTER_PORT)");
    }
    if (::listen(s, 2048) != 0) {
      ::close(s);
      continue;
    }
    fd = s;
  }
  ::freeaddrinfo(res);
  return fd;
}
#endif

class C10dWork : public Work {
 public:
  C10dWork(c10::intrusive_ptr<c10d::Work> work, torch::Tensor tensor, double divisor,
           std::string what)
      : work_(std::move(work)),
        tensor_(std::move(tensor)),
        divisor_(divisor),
        what_(std::move(what)) {}
  void wait() override {
    if (!work_) return;
    try {
      work_->wait();
    } catch (const std::exception& e) {
      work_.reset();
      throw PeerFailure(what_ + " failed: " + first_line(e.what()) +
                        " (another rank has probably failed or stopped; see its log)");
    }
    work_.reset();
    if (divisor_ != 1.0) tensor_.div_(divisor_);
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  torch::Tensor tensor_;
  double divisor_;
  std::string what_;
};

std::string rendezvous_at(const LaunchEnvironment& env) {
  return env.master_addr + ":" + std::to_string(env.master_port);
}

std::chrono::milliseconds rendezvous_ms(const DistributedOptions& options) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(options.rendezvous_timeout());
}

// Everything the ranks exchange is under the run's secret; rank 0's word under it is the proof
// that the peers share it, and every peer answers under it too: one without it is named here,
// within the rendezvous timeout, instead of a collective's much longer one.
void exchange_secret(c10d::Store& secret, const LaunchEnvironment& env,
                     const DistributedOptions& options) {
  const std::string hello = "hello";
  const std::string fix =
      " s): give every rank the same DET_RENDEZVOUS_SECRET, or the same "
      "~/.det/rendezvous-secret (a home directory the nodes share does)";
  const std::string timeout = std::to_string(options.rendezvous_timeout().count());
  if (env.rank == 0) {
    secret.set(hello, std::vector<uint8_t>{1});
    std::vector<std::string> answers;
    for (int r = 1; r < env.size; ++r) answers.push_back(hello + "/" + std::to_string(r));
    try {
      if (!answers.empty()) secret.wait(answers, rendezvous_ms(options));
    } catch (const std::exception&) {
      throw DistributedError(
          "rank 0: not every rank at " + rendezvous_at(env) +
          " shares this run's rendezvous secret (or they did not answer within " + timeout + fix);
    }
    return;
  }
  try {
    secret.wait({hello}, rendezvous_ms(options));
  } catch (const std::exception&) {
    throw DistributedError(
        "rank " + std::to_string(env.rank) + ": rank 0 at " + rendezvous_at(env) +
        " does not share this run's rendezvous secret (or did not answer within " + timeout + fix);
  }
  secret.set(hello + "/" + std::to_string(env.rank), std::vector<uint8_t>{1});
}

c10::intrusive_ptr<c10d::Store> tcp_rendezvous(const LaunchEnvironment& env,
                                               const DistributedOptions& options) {
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.size);
    so.waitWorkers = true;
    so.timeout = rendezvous_ms(options);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    // Only where the run needs it (LibTorch 1.13's TCPStore cannot be told: it listens on
    // every interface; docs/distributed.md, What listens where).
    if (so.isServer)
      if (const int fd = bound_listener(env.master_addr, env.master_port); fd >= 0)
        so.masterListenFd = fd;
#endif
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    auto secret = c10::make_intrusive<c10d::PrefixStore>("det/" + rendezvous_secret(), tcp);
    exchange_secret(*secret, env, options);
    return secret;
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError(
        "rank " + std::to_string(env.rank) + ": rendezvous with the " + std::to_string(env.size) +
        " ranks at " + rendezvous_at(env) + " failed within " +
        std::to_string(options.rendezvous_timeout().count()) + " s: " + first_line(e.what()) +
        (env.rank == 0 ? " (did every rank start? is the port free?)"
                       : " (is rank 0 running and MASTER_ADDR/MASTER_PORT reachable?)"));
  }
}

// One node launched by det-launch: the rendezvous goes through a file in a directory only this
// launch knows, so nothing listens on a port (LibTorch 1.13's TCPStore listens on every
// interface, whatever MASTER_ADDR says). Else a TCPStore at MASTER_ADDR:MASTER_PORT.
c10::intrusive_ptr<c10d::Store> rendezvous(const LaunchEnvironment& env,
                                           const DistributedOptions& options) {
  const char* store_dir = std::getenv("DET_STORE_DIR");
  if (!store_dir || !*store_dir || env.local_size != env.size) return tcp_rendezvous(env, options);
  auto store =
      c10::make_intrusive<c10d::FileStore>(std::string(store_dir) + "/rendezvous", env.size);
  store->setTimeout(rendezvous_ms(options));
  return store;
}

std::string resolve_backend(const std::string& requested) {
  if (requested != "auto") return requested;
#ifdef DET_WITH_NCCL
  return torch::cuda::is_available() ? "nccl" : "gloo";
#else
  return "gloo";
#endif
}

// A process group and the device its collectives run on.
struct Group {
  c10::intrusive_ptr<PGBackend> pg;
  torch::Device device = torch::Device(torch::kCPU);
};

#ifdef DET_WITH_GLOO
Group gloo_group(const c10::intrusive_ptr<c10d::Store>& store, const LaunchEnvironment& env,
                 const DistributedOptions& options) {
  auto o = c10d::ProcessGroupGloo::Options::create(
      std::chrono::duration_cast<std::chrono::milliseconds>(options.timeout()));
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"); ifname && *ifname) {
    o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
  } else if (is_loopback(env.master_addr)) {
    o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  } else if (const auto local = local_address_towards(env.master_addr, env.master_port);
             !local.empty()) {
    o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(local));
  } else {
    o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
  }
  return {c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.size, o),
          torch::Device(torch::kCPU)};
}
#else
Group gloo_group(const c10::intrusive_ptr<c10d::Store>&, const LaunchEnvironment&,
                 const DistributedOptions&) {
  throw DistributedError(
      "this det was built without Gloo's headers, so without the gloo backend: install "
      "libgloo-dev and rebuild" +
      std::string(
#ifdef DET_WITH_NCCL
          ", or use DET_DIST_BACKEND=nccl"
#else
          ""
#endif
          ));
}
#endif

Group nccl_group([[maybe_unused]] const c10::intrusive_ptr<c10d::Store>& store,
                 [[maybe_unused]] const LaunchEnvironment& env,
                 [[maybe_unused]] const DistributedOptions& options) {
#ifdef DET_WITH_NCCL
  if (!torch::cuda::is_available())
    throw DistributedError(
        "the NCCL backend needs CUDA, and no GPU is visible; use DET_DIST_BACKEND=gloo");
  auto o = c10d::ProcessGroupNCCL::Options::create();
  o->timeout = std::chrono::duration_cast<std::chrono::milliseconds>(options.timeout());
  return {c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.size, o),
          torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank))};
#else
  throw DistributedError(
      "this det was built without NCCL (configure with -DDET_WITH_NCCL=ON against a CUDA "
      "LibTorch); use DET_DIST_BACKEND=gloo");
#endif
}

Group connect(const std::string& backend, const c10::intrusive_ptr<c10d::Store>& store,
              const LaunchEnvironment& env, const DistributedOptions& options) {
  try {
    if (backend == "gloo") return gloo_group(store, env, options);
    if (backend == "nccl") return nccl_group(store, env, options);
    throw DistributedError("unknown distributed backend '" + backend +
                           "' (DET_DIST_BACKEND): use auto, gloo or nccl");
  } catch (const DistributedError&) {
    throw;
  } catch (const std::exception& e) {
    throw DistributedError("rank " + std::to_string(env.rank) + ": could not connect the " +
                           backend + " process group of " + std::to_string(env.size) +
                           " ranks (rendezvous " + rendezvous_at(env) +
                           "): " + first_line(e.what()));
  }
}

class ProcessGroupContext : public DistributedContext {
 public:
  ProcessGroupContext(const LaunchEnvironment& env, const DistributedOptions& options) : env_(env) {
    // Liveness for det-launch: a stopped or hung rank stops beating and is named within the
    // heartbeat timeout, long before a collective would time out.
    if (const char* hb = std::getenv("DET_HEARTBEAT_FILE"); hb && *hb)
      heartbeat_ = std::make_unique<util::Heartbeat>(hb, std::chrono::milliseconds(1000));
    store_ = rendezvous(env, options);
    backend_ = resolve_backend(options.backend());
    Group group = connect(backend_, store_, env, options);
    pg_ = std::move(group.pg);
    device_ = group.device;
    util::logger()->debug("rank {}/{} (local {}/{}, node {}/{}): {} process group via {}", env.rank,
                          env.size, env.local_rank, env.local_size, env.cross_rank, env.cross_size,
                          backend_, rendezvous_at(env));
  }

  int rank() const override { return env_.rank; }
  int size() const override { return env_.size; }
  int local_rank() const override { return env_.local_rank; }
  int local_size() const override { return env_.local_size; }
  int cross_rank() const override { return env_.cross_rank; }
  int cross_size() const override { return env_.cross_size; }
  std::string backend() const override { return backend_; }

  std::vector<nlohmann::json> allgather(const nlohmann::json& value) override {
    auto bytes = encode(value);
    torch::Tensor len = torch::tensor({bytes.numel()}, torch::kLong).to(device_);
    auto lens = allgather(len);
    int64_t max_len = 0;
    std::vector<int64_t> sizes;
    for (auto& l : lens) {
      sizes.push_back(l.cpu().item<int64_t>());
      max_len = std::max(max_len, sizes.back());
    }
    torch::Tensor padded = torch::zeros({std::max<int64_t>(max_len, 1)}, torch::kUInt8);
    padded.narrow(0, 0, bytes.numel()).copy_(bytes);
    auto all = allgather(padded.to(device_));
    std::vector<nlohmann::json> out;
    for (size_t r = 0; r < all.size(); ++r)
      out.push_back(decode(all[r].cpu().narrow(0, 0, sizes[r])));
    return out;
  }

  nlohmann::json broadcast(const nlohmann::json& value) override {
    torch::Tensor bytes = encode(value);
    torch::Tensor len = torch::tensor({bytes.numel()}, torch::kLong).to(device_);
    broadcast(len, 0);
    int64_t n = len.cpu().item<int64_t>();
    torch::Tensor buf =
        rank() == 0 ? bytes.to(device_)
                    : torch::empty({n}, torch::TensorOptions(torch::kUInt8).device(device_));
    if (n > 0) broadcast(buf, 0);
    return decode(buf.cpu());
  }

  void barrier() override { C10dWork(pg_->barrier(), {}, 1.0, what("barrier")).wait(); }

  void allreduce(torch::Tensor& tensor, ReduceOp op) override {
    allreduce_async(tensor, op)->wait();
  }

  std::unique_ptr<Work> allreduce_async(torch::Tensor tensor, ReduceOp op) override {
    std::vector<torch::Tensor> v{tensor};
    c10d::AllreduceOptions o;
    o.reduceOp = to_c10d(op);
    auto work = pg_->allreduce(v, o);
    return std::make_unique<C10dWork>(std::move(work), tensor,
                                      op == ReduceOp::kAvg ? static_cast<double>(size()) : 1.0,
                                      what("allreduce"));
  }

  std::vector<torch::Tensor> allgather(const torch::Tensor& tensor) override {
    torch::Tensor in = tensor.contiguous();
    std::vector<std::vector<torch::Tensor>> outputs(1);
    for (int r = 0; r < size(); ++r) outputs[0].push_back(torch::empty_like(in));
    std::vector<torch::Tensor> inputs{in};
    C10dWork(pg_->allgather(outputs, inputs), {}, 1.0, what("allgather")).wait();
    return outputs[0];
  }

  void broadcast(torch::Tensor& tensor, int root) override {
    std::vector<torch::Tensor> v{tensor};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    C10dWork(pg_->broadcast(v, o), {}, 1.0, what("broadcast")).wait();
  }

 private:
  std::string what(const char* op) const {
    return "rank " + std::to_string(env_.rank) + " of " + std::to_string(env_.size) + ": " +
           backend_ + " " + op;
  }
  static torch::Tensor encode(const nlohmann::json& value) {
    std::string s = value.dump();
    torch::Tensor t = torch::empty({static_cast<int64_t>(s.size())}, torch::kUInt8);
    if (!s.empty()) std::memcpy(t.data_ptr<uint8_t>(), s.data(), s.size());
    return t;
  }
  static nlohmann::json decode(const torch::Tensor& t) {
    torch::Tensor c = t.contiguous();
    std::string s(reinterpret_cast<const char*>(c.data_ptr<uint8_t>()),
                  static_cast<size_t>(c.numel()));
    return nlohmann::json::parse(s);
  }

  LaunchEnvironment env_;
  std::string backend_;
  torch::Device device_{torch::kCPU};
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<PGBackend> pg_;
  std::unique_ptr<util::Heartbeat> heartbeat_;
};

}  // namespace

std::shared_ptr<DistributedContext> make_process_group_context(const LaunchEnvironment& env,
                                                               const DistributedOptions& options) {
  return std::make_shared<ProcessGroupContext>(env, options);
}

}  // namespace det::distributed
