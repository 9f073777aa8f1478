#pragma once
/// \file Where this process stands among the ranks of a trial. The size-1 context is the default;
/// the c10d-backed one (Gloo, NCCL) plugs in behind the same interface.

#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

namespace det::dist {

/// Rank, size and collectives on small serialisable objects. This base class is the local,
/// single-process version: every collective returns its own input.
class DistributedContext {
 public:
  virtual ~DistributedContext() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  virtual int local_rank() const { return 0; }
  virtual int local_size() const { return 1; }
  virtual int cross_rank() const { return 0; }
  virtual int cross_size() const { return 1; }
  /// True on rank 0, which writes checkpoints and reports.
  bool is_chief() const { return rank() == 0; }
  /// Every rank's `value`, in rank order, on every rank.
  virtual std::vector<nlohmann::json> allgather(const nlohmann::json& value) { return {value}; }
  /// Rank 0's `value` on every rank.
  virtual nlohmann::json broadcast(const nlohmann::json& value) { return value; }
  /// Waits for every rank.
  virtual void barrier() {}
};

/// The single-process context.
std::shared_ptr<DistributedContext> make_local_context();

}  // namespace det::dist
