#include "checkpoint_keeper.h"

#include <algorithm>
#include <chrono>
#include <string>

#include <spdlog/spdlog.h>

#include "det/core/checkpoint.h"
#include "det/util/error.h"
#include "det/util/log.h"
#include "det/util/strings.h"

namespace det::detail {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void CheckpointKeeper::load_state(const fs::path& dir, const record::CheckpointMetadata& m) {
  auto& h = *run_.h;
  run_.each_callback([&](Callback& cb) { cb.on_checkpoint_load_start(m); });
  checkpoint::load(dir, h.models, h.optimizers, /*restore_rng=*/true);
  if (m.lr_schedulers.size() != h.schedulers.size())
    throw CheckpointError(
        dir.string() + ": the checkpoint holds " + std::to_string(m.lr_schedulers.size()) +
        " LR scheduler(s) but the trial wraps " + std::to_string(h.schedulers.size()));
  for (size_t i = 0; i < m.lr_schedulers.size(); ++i)
    h.schedulers[i].scheduler->load_state_dict(m.lr_schedulers[i]);
  restore_callbacks(dir, m);
  restore_scaler(dir, m);
}

void CheckpointKeeper::warm_start() {
  const fs::path& dir = *run_.opt.warm_start_from;
  load_state(dir, *run_.warm_meta);
  if (run_.chief())
    util::logger()->info(
        "trial {}: warm start from {} (trial {} at batch {}): its weights and optimizer state, "
        "this trial's hyperparameters, counters from 0",
        run_.state().trial_id, dir.string(), run_.warm_meta->trial_state.trial_id,
        run_.warm_meta->trial_state.batches_trained);
}

void CheckpointKeeper::restore() {
  const auto& m = *run_.resume_meta;
  const fs::path& dir = *run_.opt.resume_from;
  load_state(dir, m);
  if (m.epoch_len != run_.epoch_len())
    util::logger()->warn(
        "the checkpoint was written with {} batches per epoch, the data now gives {}: the data "
        "position is not exactly where training stopped",
        m.epoch_len, run_.epoch_len());
  run_.last_val_metrics = m.last_validation_metrics;
  run_.best_val_metrics = m.best_validation_metrics;
  scan_existing();
  if (run_.chief())
    util::logger()->info("trial {}: resumed from {} at batch {} (epoch {})", run_.state().trial_id,
                         dir.string(), run_.state().batches_trained, run_.state().epochs_trained);
}

// Every callback gets its saved state; a saved state without its callback is a checkpoint of
// another trial.
void CheckpointKeeper::restore_callbacks(const fs::path& dir, const record::CheckpointMetadata& m) {
  std::vector<std::string> names;
  for (auto& [name, cb] : run_.callbacks) {
    names.push_back(util::quote(name));
    auto it = m.callbacks.find(name);
    if (it != m.callbacks.end()) cb->load_state_dict(it->second);
  }
  for (const auto& [name, s] : m.callbacks)
    if (std::none_of(run_.callbacks.begin(), run_.callbacks.end(),
                     [&](const auto& c) { return c.first == name; }))
      throw CheckpointError(
          dir.string() + ": the checkpoint holds the state of callback " + util::quote(name) +
          ", which trial '" + run_.cfg().entrypoint +
          "' does not have (its callbacks: " + (names.empty() ? "none" : util::join(names, ", ")) +
          "); resume it with the trial that wrote it");
}

// The loss scale continues where it was, so a resumed fp16 run equals an uninterrupted one.
void CheckpointKeeper::restore_scaler(const fs::path& dir, const record::CheckpointMetadata& m) {
  const std::string where = dir.string();
  const auto& scaler = run_.h->scaler;
  if (scaler && m.grad_scaler) {
    try {
      scaler->load_state_dict(*m.grad_scaler);
    } catch (const CheckpointError& e) {
      throw CheckpointError(where + ": " + e.what());
    }
  } else if (scaler && scaler->is_enabled() && run_.chief()) {
    util::logger()->warn(
        "trial {}: {} was written without loss scaling; the scaler starts at its initial "
        "scale {}",
        run_.state().trial_id, where, scaler->get_scale());
  } else if (!scaler && m.grad_scaler && run_.chief()) {
    util::logger()->warn(
        "trial {}: {} holds a loss scaler's state but this run scales no loss "
        "(optimizations.mixed_precision is {}); ignored",
        run_.state().trial_id, where,
        config::precision_name(run_.cfg().optimizations.mixed_precision));
  }
}

// The trial's complete checkpoints already on disk (a resumed trial's), for retention.
void CheckpointKeeper::scan_existing() {
  if (!fs::is_directory(dir())) return;
  for (const auto& entry : fs::directory_iterator(dir())) {
    if (!entry.is_directory() || record::is_staging_name(entry.path().filename().string()))
      continue;
    try {
      auto meta = record::read_checkpoint_metadata(entry.path(), /*verify_files=*/false);
      checkpoints_.push_back(
          {meta.uuid, entry.path(), meta.trial_state.batches_trained, meta.searcher_metric});
    } catch (const Error&) {
      // Not a complete checkpoint: the experiment recorder cleans those up.
    }
  }
  std::sort(checkpoints_.begin(), checkpoints_.end(),
            [](const auto& a, const auto& b) { return a.batches < b.batches; });
}

void CheckpointKeeper::save_if_new() {
  if (run_.state().last_checkpoint != run_.state().batches_trained) save();
}

// What metadata.json says, the callbacks' states included (after on_checkpoint_save_start, which
// may still change the metadata).
record::CheckpointMetadata CheckpointKeeper::metadata() {
  const auto& state = run_.state();
  const auto& metric = run_.cfg().searcher.metric;
  record::CheckpointMetadata meta;
  meta.uuid = checkpoint::new_uuid();
  meta.time = util::utc_now_iso8601();
  meta.entrypoint = run_.cfg().entrypoint;
  meta.experiment_name = run_.cfg().name;
  meta.trial_state = state;
  meta.trial_seed = run_.h->trial_seed;
  meta.hparams = run_.h->hparams;
  meta.epoch_len = run_.epoch_len();
  for (auto& s : run_.h->schedulers) meta.lr_schedulers.push_back(s.scheduler->state_dict());
  if (run_.h->scaler && run_.h->scaler->is_enabled())
    meta.grad_scaler = run_.h->scaler->state_dict();
  const auto& last = run_.last_val_metrics;
  if (state.last_validation == state.batches_trained && last && (*last)[metric].is_number())
    meta.searcher_metric = (*last)[metric].get<double>();
  meta.last_validation_metrics = last;
  meta.best_validation_metrics = run_.best_val_metrics;
  run_.each_callback([&](Callback& cb) { cb.on_checkpoint_save_start(meta); });
  for (auto& [name, cb] : run_.callbacks) {
    nlohmann::json s = cb->state_dict();
    if (!s.is_null()) meta.callbacks[name] = std::move(s);
  }
  return meta;
}

void CheckpointKeeper::save() {
  auto& state = run_.state();
  state.last_checkpoint = state.batches_trained;
  if (!run_.chief()) return;
  const record::CheckpointMetadata meta = metadata();
  const auto start = Clock::now();
  const fs::path parent = dir();
  const fs::path staged = checkpoint::write(parent, meta, run_.h->models, run_.h->optimizers);
  record::CheckpointRef ref{meta.uuid, parent / meta.uuid, state.batches_trained,
                            meta.searcher_metric};
  checkpoints_.push_back(ref);
  const auto storage = run_.cfg().storage();
  auto kept =
      record::checkpoints_to_keep(checkpoints_, storage.save_trial_latest, storage.save_trial_best,
                                  run_.cfg().searcher.smaller_is_better);
  // Recorded, then committed, then the old ones deleted: whatever moment the process dies at,
  // every checkpoint on disk is recorded and every recorded one is whole (a recorded but
  // uncommitted one is committed when the experiment resumes).
  if (run_.opt.listener) run_.opt.listener->on_checkpoint({ref, kept});
  checkpoint::commit(staged);
  util::logger()->info("trial {} [checkpoint] batch {}: {} ({:.2f}s)", state.trial_id,
                       state.batches_trained, ref.path.string(),
                       std::chrono::duration<double>(Clock::now() - start).count());
  run_.each_callback([&](Callback& cb) { cb.on_checkpoint_write_end(ref.path); });
  retain(kept);
}

// Deletes the checkpoints retention dropped (after they are recorded as dropped).
void CheckpointKeeper::retain(const std::vector<record::CheckpointRef>& kept) {
  for (const auto& c : checkpoints_) {
    if (std::any_of(kept.begin(), kept.end(), [&](const auto& k) { return k.uuid == c.uuid; }))
      continue;
    std::error_code ec;
    fs::remove_all(c.path, ec);
    util::logger()->debug("deleted checkpoint {} (batch {})", c.path.string(), c.batches);
  }
  checkpoints_ = kept;
}

}  // namespace det::detail
