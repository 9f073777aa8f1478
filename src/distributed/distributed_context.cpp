#include "det/distributed/distributed_context.h"

#include <array>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "det/util/error.h"

namespace det::distributed {

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

// MASTER_ADDR/MASTER_PORT for ranks that mpirun or srun started: see the header.
void default_rendezvous(LaunchEnvironment& e) {
  const bool one_node = e.local_size == e.size;
  if (!env("MASTER_PORT")) {
    std::string job;
    if (e.source == "openmpi") {
      if (const char* j = env("OMPI_MCA_ess_base_jobid"))
        job = j;
      else if (const char* n = env("PMIX_NAMESPACE"))
        job = n;
    } else if (e.source == "slurm") {
      if (const char* j = env("SLURM_JOB_ID"))
        job = std::string(j) + "." + (env("SLURM_STEP_ID") ? env("SLURM_STEP_ID") : "");
    }
    if (!job.empty()) e.master_port = port_for_job(job);
  }
  if (env("MASTER_ADDR") || one_node) return;  // the loopback default
  if (e.source == "slurm") {
    const char* list = env("SLURM_STEP_NODELIST");
    if (!list) list = env("SLURM_JOB_NODELIST");
    if (!list) list = env("SLURM_NODELIST");
    e.master_addr = first_slurm_host(list ? list : "");
    if (!e.master_addr.empty()) return;
  }
  throw DistributedError(
      "the " + std::to_string(e.size) + " ranks started by " + e.source + " span " +
      std::to_string(e.cross_size) +
      " nodes and MASTER_ADDR is not set: set it to the address of the node that runs rank 0 " +
      (e.source == "openmpi" ? "(mpirun -x MASTER_ADDR=<host> ...)"
                             : "(export MASTER_ADDR=<host>)"));
}

}  // namespace

std::string first_slurm_host(const std::string& list) {
  // The first entry ends at the first comma outside brackets.
  size_t end = 0;
  int depth = 0;
  for (; end < list.size(); ++end) {
    if (list[end] == '[')
      ++depth;
    else if (list[end] == ']' && --depth < 0)
      break;
    else if (list[end] == ',' && depth == 0)
      break;
  }
  if (depth != 0)
    throw DistributedError("Slurm node list '" + list + "' has an unbalanced bracket");
  // "gpu[07-09,12]-ib[1-2]" -> "gpu07-ib1": each bracket's first number, as written.
  std::string host;
  for (size_t i = 0; i < end;) {
    const size_t open = list.find('[', i);
    if (open == std::string::npos || open >= end) {
      host += list.substr(i, end - i);
      break;
    }
    const size_t close = list.find(']', open);
    host += list.substr(i, open - i);
    const std::string range = list.substr(open + 1, close - open - 1);
    host += range.substr(0, range.find_first_of(",-"));
    i = close + 1;
  }
  return host;
}

int port_for_job(const std::string& job_id) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (unsigned char c : job_id) h = (h ^ c) * 16777619u;
  return 10000 + static_cast<int>(h % 20000u);
}

std::unique_ptr<Work> DistributedContext::allreduce_async(torch::Tensor tensor, ReduceOp op) {
  allreduce(tensor, op);
  return std::make_unique<DoneWork>();
}

std::shared_ptr<DistributedContext> make_local_context() {
  return std::make_shared<DistributedContext>();
}

namespace {

// The rank as each launcher spells it; nullopt where that launcher did not start this process.
std::optional<LaunchEnvironment> from_torchrun() {
  if (!env("RANK") && !env("WORLD_SIZE")) return std::nullopt;
  if (!env("RANK") || !env("WORLD_SIZE"))
    throw DistributedError(std::string("the launcher environment has ") +
                           (env("RANK") ? "RANK" : "WORLD_SIZE") + " but not " +
                           (env("RANK") ? "WORLD_SIZE" : "RANK") +
                           "; set both (det-launch and torchrun do)");
  LaunchEnvironment e;
  e.source = "torchrun";
  e.rank = env_int("RANK", 0);
  e.size = env_int("WORLD_SIZE", 1);
  e.local_rank = env_int("LOCAL_RANK", e.rank);
  e.local_size = env_int("LOCAL_WORLD_SIZE", e.size);
  e.cross_rank = env_int("GROUP_RANK", e.local_size > 0 ? e.rank / e.local_size : 0);
  return e;
}

// How mpirun (Open MPI), a PMI launcher (MPICH, Intel MPI) and srun spell a rank. A launcher
// started this process when all of its `marks` are set (a Slurm batch script has SLURM_PROCID=0
// and the allocation's SLURM_NTASKS but no step id: there det-run is one process, not a rank).
// Of `local_rank`/`local_size` the first variable set is read; `node` absent: rank / local size.
struct LauncherVars {
  const char* source;
  std::array<const char*, 3> marks;
  const char* rank;
  const char* size;
  std::array<const char*, 2> local_rank;
  std::array<const char*, 2> local_size;
  const char* node;
  int (*default_local_size)();
};

int one() { return 1; }

const LauncherVars kLaunchers[] = {
    {"openmpi",
     {"OMPI_COMM_WORLD_RANK"},
     "OMPI_COMM_WORLD_RANK",
     "OMPI_COMM_WORLD_SIZE",
     {"OMPI_COMM_WORLD_LOCAL_RANK"},
     {"OMPI_COMM_WORLD_LOCAL_SIZE"},
     "OMPI_COMM_WORLD_NODE_RANK",
     one},
    {"pmi",
     {"PMI_RANK"},
     "PMI_RANK",
     "PMI_SIZE",
     {"MPI_LOCALRANKID", "PMI_LOCAL_RANK"},
     {"MPI_LOCALNRANKS", "PMI_LOCAL_SIZE"},
     nullptr,
     one},
    {"slurm",
     {"SLURM_PROCID", "SLURM_NTASKS", "SLURM_STEP_ID"},
     "SLURM_PROCID",
     "SLURM_NTASKS",
     {"SLURM_LOCALID"},
     {},
     "SLURM_NODEID",
     slurm_local_size},
};

// The first of `names` that is set, read as an integer; `fallback` where none is.
int first_env_int(const std::array<const char*, 2>& names, int fallback) {
  for (const char* name : names)
    if (name && env(name)) return env_int(name, fallback);
  return fallback;
}

std::optional<LaunchEnvironment> from_launcher(const LauncherVars& l) {
  for (const char* mark : l.marks)
    if (mark && !env(mark)) return std::nullopt;
  LaunchEnvironment e;
  e.source = l.source;
  e.rank = env_int(l.rank, 0);
  e.size = env_int(l.size, 1);
  e.local_rank = first_env_int(l.local_rank, 0);
  e.local_size = first_env_int(l.local_size, l.default_local_size());
  const int by_rank = e.local_size > 0 ? e.rank / e.local_size : 0;
  e.cross_rank = l.node ? env_int(l.node, by_rank) : by_rank;
  return e;
}

void check_launch_environment(const LaunchEnvironment& e) {
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
}

}  // namespace

std::optional<LaunchEnvironment> detect_launch_environment() {
  std::optional<LaunchEnvironment> found = from_torchrun();
  for (const LauncherVars& launcher : kLaunchers)
    if (!found) found = from_launcher(launcher);
  if (!found) return std::nullopt;
  LaunchEnvironment& e = *found;
  e.cross_size = e.local_size > 0 ? (e.size + e.local_size - 1) / e.local_size : 1;
  e.cross_size = env_int("GROUP_WORLD_SIZE", e.cross_size);
  if (const char* a = env("MASTER_ADDR")) e.master_addr = a;
  e.master_port = env_int("MASTER_PORT", e.master_port);
  if (e.source != "torchrun") default_rendezvous(e);
  check_launch_environment(e);
  return e;
}

DistributedOptions DistributedOptions::from_env() {
  DistributedOptions o;
  if (const char* b = env("DET_DIST_BACKEND")) o.backend(b);
  o.rendezvous_timeout(std::chrono::seconds(
      env_int("DET_RENDEZVOUS_TIMEOUT", static_cast<int>(o.rendezvous_timeout().count()))));
  o.timeout(
      std::chrono::seconds(env_int("DET_DIST_TIMEOUT", static_cast<int>(o.timeout().count()))));
  return o;
}

std::shared_ptr<DistributedContext> make_context_from_env(const DistributedOptions& options) {
  auto e = detect_launch_environment();
  if (!e || e->size == 1) return make_local_context();
  return make_process_group_context(*e, options);
}

}  // namespace det::distributed
