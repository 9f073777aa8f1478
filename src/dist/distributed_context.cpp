#include "det/dist/distributed_context.h"

#include <cstdlib>
#include <stdexcept>

#include "det/util/error.h"

namespace det::dist {

namespace {

class DoneWork : public Work {
 public:
  void wait() override {}
};

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

int env_int(const char* name, int fallback) {
  const char* v = env(name);
  if (!v) return fallback;
  try {
    size_t pos = 0;
    int x = std::stoi(v, &pos);
    if (pos != std::string(v).size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw DistributedError(std::string("environment variable ") + name + "='" + v +
                           "' is not an integer");
  }
}

// Slurm's SLURM_TASKS_PER_NODE looks like "4(x2),3": the count of this node is what we need, but
// SLURM_NTASKS_PER_NODE or SLURM_LOCALID ranges are simpler; fall back to the first count.
int slurm_local_size() {
  if (env("SLURM_NTASKS_PER_NODE")) return env_int("SLURM_NTASKS_PER_NODE", 1);
  if (const char* t = env("SLURM_TASKS_PER_NODE")) {
    try {
      return std::stoi(t);
    } catch (const std::exception&) {
    }
  }
  return 1;
}

}  // namespace

std::unique_ptr<Work> DistributedContext::allreduce_async(torch::Tensor tensor, ReduceOp op) {
  allreduce(tensor, op);
  return std::make_unique<DoneWork>();
}

std::shared_ptr<DistributedContext> make_local_context() {
  return std::make_shared<DistributedContext>();
}

std::optional<LaunchEnvironment> detect_launch_environment() {
  LaunchEnvironment e;
  if (env("RANK") || env("WORLD_SIZE")) {
    if (!env("RANK") || !env("WORLD_SIZE"))
      throw DistributedError(std::string("the launcher environment has ") +
                             (env("RANK") ? "RANK" : "WORLD_SIZE") + " but not " +
                             (env("RANK") ? "WORLD_SIZE" : "RANK") +
                             "; set both (det-launch and torchrun do)");
    e.source = "torchrun";
    e.rank = env_int("RANK", 0);
    e.size = env_int("WORLD_SIZE", 1);
    e.local_rank = env_int("LOCAL_RANK", e.rank);
    e.local_size = env_int("LOCAL_WORLD_SIZE", e.size);
    e.cross_rank = env_int("GROUP_RANK", e.local_size > 0 ? e.rank / e.local_size : 0);
  } else if (env("OMPI_COMM_WORLD_RANK")) {
    e.source = "openmpi";
    e.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    e.size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    e.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
    e.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
    e.cross_rank =
        env_int("OMPI_COMM_WORLD_NODE_RANK", e.local_size > 0 ? e.rank / e.local_size : 0);
  } else if (env("PMI_RANK")) {
    e.source = "pmi";
    e.rank = env_int("PMI_RANK", 0);
    e.size = env_int("PMI_SIZE", 1);
    e.local_rank = env_int("MPI_LOCALRANKID", env_int("PMI_LOCAL_RANK", 0));
    e.local_size = env_int("MPI_LOCALNRANKS", env_int("PMI_LOCAL_SIZE", 1));
    e.cross_rank = e.local_size > 0 ? e.rank / e.local_size : 0;
  } else if (env("SLURM_PROCID") && env("SLURM_NTASKS")) {
    e.source = "slurm";
    e.rank = env_int("SLURM_PROCID", 0);
    e.size = env_int("SLURM_NTASKS", 1);
    e.local_rank = env_int("SLURM_LOCALID", 0);
    e.local_size = slurm_local_size();
    e.cross_rank = env_int("SLURM_NODEID", e.local_size > 0 ? e.rank / e.local_size : 0);
  } else {
    return std::nullopt;
  }
  e.cross_size = e.local_size > 0 ? (e.size + e.local_size - 1) / e.local_size : 1;
  e.cross_size = env_int("GROUP_WORLD_SIZE", e.cross_size);
  if (const char* a = env("MASTER_ADDR")) e.master_addr = a;
  e.master_port = env_int("MASTER_PORT", e.master_port);
  if (e.size < 1)
    throw DistributedError("the launcher's world size is " + std::to_string(e.size) + " (" +
                           e.source + " environment); it must be >= 1");
  if (e.rank < 0 || e.rank >= e.size)
    throw DistributedError("the launcher's rank " + std::to_string(e.rank) + " is not in [0, " +
                           std::to_string(e.size) + ") (" + e.source + " environment)");
  if (e.local_rank < 0 || e.local_size < 1 || e.local_rank >= e.local_size)
    throw DistributedError("the launcher's local rank " + std::to_string(e.local_rank) +
                           " is not in [0, " + std::to_string(e.local_size) + ") (" + e.source +
                           " environment)");
  if (e.master_port < 1 || e.master_port > 65535)
    throw DistributedError("MASTER_PORT=" + std::to_string(e.master_port) + " is not a TCP port");
  return e;
}

DistributedOptions DistributedOptions::from_env() {
  DistributedOptions o;
  if (const char* b = env("DET_DIST_BACKEND")) o.backend_ = b;
  o.rendezvous_timeout_ = std::chrono::seconds(
      env_int("DET_RENDEZVOUS_TIMEOUT", static_cast<int>(o.rendezvous_timeout_.count())));
  o.timeout_ =
      std::chrono::seconds(env_int("DET_DIST_TIMEOUT", static_cast<int>(o.timeout_.count())));
  return o;
}

std::shared_ptr<DistributedContext> make_context_from_env(const DistributedOptions& options) {
  auto e = detect_launch_environment();
  if (!e || e->size == 1) return make_local_context();
  return make_process_group_context(*e, options);
}

}  // namespace det::dist
