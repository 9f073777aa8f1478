#pragma once
/// \file
/// Where this process stands among the ranks of a trial, and the collectives between them.
/// The size-1 context is the default; the c10d-backed one (Gloo on CPU, NCCL on CUDA) plugs in
/// behind the same interface (make_context_from_env). No c10d header is visible from here.

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/arg.h>
#include <torch/types.h>
#include <nlohmann/json.hpp>

#include "det/util/error.h"

namespace det::distributed {

/// A collective that failed because another rank is gone or did not answer in time: a
/// consequence of a failure elsewhere (the launcher names the rank that failed first).
class PeerFailure : public DistributedError {
 public:
  using DistributedError::DistributedError;
};

/// How a tensor allreduce combines the ranks' values.
enum class ReduceOp { kSum, kAvg, kMin, kMax };

/// A collective in flight. wait() blocks until it is done; a failure (a peer died, a timeout)
/// throws DistributedError naming this rank.
class Work {
 public:
  virtual ~Work() = default;
  /// Blocks until the collective is done (its tensor then holds the result, divided for kAvg);
  /// later calls return at once.
  virtual void wait() = 0;
};

/// Rank, size and collectives on tensors and on small serialisable objects. This base class is
/// the local, single-process version: every collective returns its own input.
class DistributedContext {
 public:
  virtual ~DistributedContext() = default;
  /// This process's global rank, 0..size()-1.
  virtual int rank() const { return 0; }
  /// Number of ranks in the trial (the world size).
  virtual int size() const { return 1; }
  /// This process's rank on its node; also its CUDA device index.
  virtual int local_rank() const { return 0; }
  /// Number of ranks on this node.
  virtual int local_size() const { return 1; }
  /// The node's index among the nodes (torchrun's GROUP_RANK).
  virtual int cross_rank() const { return 0; }
  /// The number of nodes.
  virtual int cross_size() const { return 1; }
  /// "local", "gloo" or "nccl".
  virtual std::string backend() const { return "local"; }
  /// True on rank 0, which writes checkpoints and reports.
  bool is_chief() const { return rank() == 0; }

  // ---- small objects (JSON), on every backend through CPU tensors ----
  /// Every rank's `value`, in rank order, on every rank.
  virtual std::vector<nlohmann::json> allgather(const nlohmann::json& value) { return {value}; }
  /// Rank 0's `value` on every rank.
  virtual nlohmann::json broadcast(const nlohmann::json& value) { return value; }
  /// Waits for every rank.
  virtual void barrier() {}

  // ---- tensors (on the context's device: CPU for Gloo, this rank's GPU for NCCL) ----
  /// Combines `tensor` across ranks in place.
  virtual void allreduce(torch::Tensor& /*tensor*/, ReduceOp /*op*/ = ReduceOp::kSum) {}
  /// Starts an in-place allreduce and returns at once; `tensor` must stay alive until wait().
  /// ReduceOp::kAvg divides when the work is waited for.
  virtual std::unique_ptr<Work> allreduce_async(torch::Tensor tensor, ReduceOp op = ReduceOp::kSum);
  /// Every rank's `tensor` (same shape on every rank), in rank order.
  virtual std::vector<torch::Tensor> allgather(const torch::Tensor& tensor) { return {tensor}; }
  /// Overwrites `tensor` with `root`'s in place.
  virtual void broadcast(torch::Tensor& /*tensor*/, int /*root*/ = 0) {}
};

/// The single-process context.
std::shared_ptr<DistributedContext> make_local_context();

/// Where a launcher put this process: read from torchrun's variables (RANK, WORLD_SIZE,
/// LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR, MASTER_PORT), else OpenMPI's
/// (OMPI_COMM_WORLD_*), else Slurm's (SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, ... of an srun
/// step: SLURM_STEP_ID set; a batch script's own process is not a rank).
struct LaunchEnvironment {
  /// @{
  /// Global rank and world size; rank and ranks on this node; node index and node count (as
  /// DistributedContext's accessors of the same names).
  int rank = 0, size = 1, local_rank = 0, local_size = 1, cross_rank = 0, cross_size = 1;
  /// @}
  /// MASTER_ADDR: the host of rank 0's TCPStore (unused by det-launch's one-node file store).
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;      ///< MASTER_PORT, 1..65535.
  std::string source = "none";  ///< "torchrun", "openmpi", "pmi", "slurm" or "none".
};

/// The first host of a Slurm node list ("gpu[07-09,12],cpu1" -> "gpu07"); empty when `list` is
/// empty. Throws DistributedError on an unbalanced bracket.
std::string first_slurm_host(const std::string& list);

/// The rendezvous port ranks started by mpirun or srun agree on without talking: 10000 + a hash
/// of the job's (and step's) id modulo 20000, below Linux's ephemeral ports.
int port_for_job(const std::string& job_id);

/// The launcher environment of this process, or nullopt when none is set. Inconsistent values
/// (RANK outside WORLD_SIZE, a non-number) throw DistributedError naming the variable.
///
/// Where MASTER_ADDR/MASTER_PORT are not set, ranks started by mpirun or srun find the rendezvous
/// by a rule: on one node the loopback (127.0.0.1); on several, under Slurm the first node of the
/// step's node list, under mpirun an error asking for MASTER_ADDR (`mpirun -x MASTER_ADDR=...`);
/// the port from the job's id (port_for_job). torchrun's variables are taken as they are.
std::optional<LaunchEnvironment> detect_launch_environment();

/// Options of the c10d context.
struct DistributedOptions {
  /// The defaults, overridden by DET_DIST_BACKEND, DET_RENDEZVOUS_TIMEOUT and DET_DIST_TIMEOUT
  /// (seconds).
  static DistributedOptions from_env();

  /// "auto" (NCCL when built with it and CUDA is there, else Gloo), "gloo" or "nccl".
  TORCH_ARG(std::string, backend) = "auto";
  /// Waiting for every rank to join (DET_RENDEZVOUS_TIMEOUT).
  TORCH_ARG(std::chrono::seconds, rendezvous_timeout) = std::chrono::seconds(300);
  /// One collective (DET_DIST_TIMEOUT).
  TORCH_ARG(std::chrono::seconds, timeout) = std::chrono::seconds(600);
};

/// A c10d context for `env`: rendezvous through a TCPStore at MASTER_ADDR:MASTER_PORT (rank 0
/// serves it), then a Gloo (or NCCL) process group. Throws DistributedError with a one-line
/// message when the rendezvous times out or the backend is not available.
std::shared_ptr<DistributedContext> make_process_group_context(
    const LaunchEnvironment& env,
    const DistributedOptions& options = DistributedOptions::from_env());

/// The context this process was launched into: the c10d one when a launcher environment with
/// more than one rank is set, else the local one.
std::shared_ptr<DistributedContext> make_context_from_env(
    const DistributedOptions& options = DistributedOptions::from_env());

}  // namespace det::distributed
