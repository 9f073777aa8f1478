// The controller's setup: device, seed, precision, the trial and its callbacks, sharding and the
// batch arithmetic (trial_run.h).

#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <torch/cuda.h>

#include "det/config/metric.h"
#include "det/core/checkpoint.h"
#include "det/core/registry.h"
#include "det/distributed/gradient_sync.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "device.h"
#include "trial_run.h"

namespace det::detail {
namespace {

// The harness's fields from the options, or from the checkpoint resumed from: its
// hyperparameters, seed and training position win.
void read_resume(TrialRun& run) {
  auto& h = *run.h;
  auto& opt = run.opt;
  h.hparams = opt.hparams;
  h.trial_seed = opt.trial_seed;
  h.test_mode = opt.test_mode;
  h.state.trial_id = opt.trial_id;
  if (opt.resume_from) {
    opt.resume_from = checkpoint::normalize_dir(*opt.resume_from);
    run.resume_meta = checkpoint::read_metadata(*opt.resume_from);
    const auto& m = *run.resume_meta;
    if (!m.entrypoint.empty() && m.entrypoint != h.config.entrypoint)
      throw CheckpointError(opt.resume_from->string() + ": written by trial '" + m.entrypoint +
                            "', but the config's entrypoint is '" + h.config.entrypoint + "'");
    h.hparams = m.hparams;
    h.hparams_source = (*opt.resume_from / record::kMetadataFile).string();
    h.trial_seed = m.trial_seed;
    h.state = m.trial_state;
    if (opt.trial_dir.empty()) opt.trial_dir = opt.resume_from->parent_path().parent_path();
  } else if (opt.warm_start_from) {
    opt.warm_start_from = checkpoint::normalize_dir(*opt.warm_start_from);
    run.warm_meta = checkpoint::read_metadata(*opt.warm_start_from);
    const auto& m = *run.warm_meta;
    if (!m.entrypoint.empty() && m.entrypoint != h.config.entrypoint)
      throw CheckpointError(opt.warm_start_from->string() + ": written by trial '" + m.entrypoint +
                            "', but the config's entrypoint is '" + h.config.entrypoint +
                            "'; warm-start from a checkpoint of the same trial class");
  }
  h.initial_batch = h.state.batches_trained;
}

// The device (cuda:LOCAL_RANK when CUDA is available), the autocast precision and its loss
// scaler, and the seeds.
void choose_device(TrialRun& run) {
  auto& h = *run.h;
  h.distributed = run.opt.distributed ? run.opt.distributed : distributed::make_local_context();
  h.device = torch::cuda::is_available() ? torch::Device(torch::kCUDA, h.distributed->local_rank())
                                         : torch::Device(torch::kCPU);
  h.precision = h.config.optimizations.mixed_precision;
  check_precision_supported(h.precision, h.device);
  if (h.precision == Precision::kFloat16) {  // fp16 needs loss scaling; bf16's range does not
    h.scaler = std::make_shared<GradScaler>();
    h.harness_scaler = true;
  }
  torch::manual_seed(h.trial_seed);
  std::srand(h.trial_seed);
}

// The trial object and its callbacks, checked: a trial wraps a model and an optimizer, its
// callbacks are named once each (the name keys their checkpointed state).
void build_trial(TrialRun& run, const TrialFactory& factory) {
  const std::string& entrypoint = run.cfg().entrypoint;
  run.ctx = std::make_unique<TrialContext>(run.h);
  TrialRegistry::instance().check_config(entrypoint, *run.ctx);  // as validate-config does
  run.trial = factory(*run.ctx);
  if (run.h->models.empty())
    throw Error("trial '" + entrypoint +
                "' wrapped no model: call context.wrap_model(...) in its constructor");
  if (run.h->optimizers.empty())
    throw Error("trial '" + entrypoint +
                "' wrapped no optimizer: call context.wrap_optimizer(...) in its constructor");
  run.callbacks = run.trial->build_callbacks();
  std::set<std::string> names;
  for (const auto& [name, cb] : run.callbacks) {
    if (!cb) throw Error("trial '" + entrypoint + "': callback '" + name + "' is null");
    if (!names.insert(name).second)
      throw Error("trial '" + entrypoint + "': two callbacks are named '" + name +
                  "'; names key their checkpointed state");
  }
}

// Determined's DistributedBatchSampler: rank r keeps the loader's batches r, r + n, ...
std::shared_ptr<data::DataLoader> shard_for_ranks(const TrialRun& run,
                                                  const std::shared_ptr<data::DataLoader>& loader,
                                                  const char* which) {
  const int n = run.world(), r = run.h->distributed->rank();
  if (n == 1) return loader;
  const auto& o = loader->options();
  if (o.num_replicas() == n && o.rank() == r) return loader;  // the trial sharded it itself
  if (o.num_replicas() != 1)
    throw Error(std::string("the ") + which + " data loader of trial '" + run.cfg().entrypoint +
                "' is sharded " + std::to_string(o.num_replicas()) +
                " ways but the trial runs on " + std::to_string(n) +
                " ranks; leave sharding to the harness");
  return loader->sharded(n, r);
}

// The backend options, then the trial's loaders, sharded across the ranks.
void build_loaders(TrialRun& run) {
  const auto& cfg = run.cfg();
  for (const auto& line : apply_backend_options(cfg.optimizations, run.h->device))
    if (run.chief()) util::logger()->info("{} ({})", line, cfg.source);
  if (cfg.optimizations.channels_last) to_channels_last(run.h->models);
  run.train_loader = run.trial->build_training_data_loader();
  run.val_loader = run.trial->build_validation_data_loader();
  if (!run.train_loader || !run.val_loader)
    throw Error("trial '" + cfg.entrypoint + "' returned a null data loader");
  run.train_loader = shard_for_ranks(run, run.train_loader, "training");
  run.val_shard = shard_for_ranks(run, run.val_loader, "validation");
  if (run.opt.test_mode) {  // Determined's test mode: one validation batch
    run.val_loader = run.val_loader->limited(1);
    run.val_shard = run.val_shard->limited(1);
  }
}

// The epoch length, the global batch size and the batch to train to.
void batch_arithmetic(TrialRun& run) {
  const auto& cfg = run.cfg();
  const auto& ctx = *run.ctx;
  const int64_t len = run.train_loader->batches_per_epoch();
  if (len < 1) throw DataError("the training data loader yields no batch (is the dataset empty?)");
  run.h->clock.set_epoch_len(len);
  const bool asked = ctx.has_hparam("global_batch_size");
  run.gbs = asked ? ctx.global_batch_size() : run.train_loader->batch_size() * ctx.size();
  // Determined's calculate_batch_sizes: per-slot batch = gbs // slots, and the batch trained is
  // per-slot * slots, said once when it is not the one asked for.
  if (asked && run.chief())
    if (const auto n = ctx.hparam("global_batch_size").as<int64_t>(); n != run.gbs)
      util::logger()->warn(
          "trial {}: global_batch_size {} is not a multiple of the {} ranks: each trains {} "
          "examples a batch, {} in all",
          run.state().trial_id, n, ctx.size(), run.gbs / ctx.size(), run.gbs);
  if (run.opt.test_mode) {
    run.max_batches = run.state().batches_trained + 1;
  } else if (run.opt.target) {
    run.max_batches = config::to_batches(*run.opt.target, run.gbs, len);
  } else if (run.opt.max_length_batches) {
    run.max_batches = *run.opt.max_length_batches;
  } else {
    if (!cfg.searcher.max_length)
      throw ConfigError(cfg.source + ": searcher.max_length is required");
    run.max_batches = config::to_batches(*cfg.searcher.max_length, run.gbs, len);
  }
}

}  // namespace

void build_trial_run(TrialRun& run, config::ExperimentConfig config, const TrialFactory& factory) {
  run.h = std::make_shared<TrialHarness>(std::move(config));
  read_resume(run);
  choose_device(run);
  build_trial(run, factory);
  build_loaders(run);
  batch_arithmetic(run);
}

void start_data_parallel(TrialRun& run) {
  auto& d = *run.h->distributed;
  std::vector<torch::Tensor> params;
  {
    torch::NoGradGuard no_grad;
    for (auto& m : run.h->models) {
      for (auto& p : m->parameters()) {
        torch::Tensor t = p;
        d.broadcast(t, 0);
        params.push_back(p);
      }
      for (auto& b : m->buffers()) {
        torch::Tensor t = b;
        d.broadcast(t, 0);
      }
    }
  }
  run.h->grad_sync =
      std::make_unique<distributed::GradientSynchronizer>(run.h->distributed, params);
  if (run.chief())
    util::logger()->info(
        "trial {}: data-parallel on {} ranks ({}), {} gradient bucket(s), per-slot batch {}, "
        "{} intra-op thread(s) a rank",
        run.state().trial_id, run.world(), d.backend(), run.h->grad_sync->num_buckets(),
        run.train_loader->batch_size(), at::get_num_threads());
}

}  // namespace det::detail
