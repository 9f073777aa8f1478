// searcher.source_checkpoint_uuid and source_trial_id: the checkpoint a new trial starts from.

#include <filesystem>

#include "det/experiment/runner.h"
#include "det/experiment/store.h"
#include "det/record/checkpoint.h"
#include "det/util/error.h"

namespace det::experiment {
namespace fs = std::filesystem;

std::optional<fs::path> warm_start_checkpoint(const config::ExperimentConfig& cfg,
                                              ExperimentStore& store) {
  const auto& s = cfg.searcher;
  if (!s.source_checkpoint_uuid && !s.source_trial_id) return std::nullopt;
  const std::string in = " in the experiment store " + store.path().string();
  if (s.source_checkpoint_uuid && s.source_trial_id)
    throw ConfigError(
        "searcher.source_checkpoint_uuid and searcher.source_trial_id are both set; "
        "give one");
  std::optional<CheckpointRow> row;
  std::string key;
  if (s.source_checkpoint_uuid) {
    key = "searcher.source_checkpoint_uuid: ";
    row = store.checkpoint(*s.source_checkpoint_uuid);
    if (!row) throw ConfigError(key + "no checkpoint '" + *s.source_checkpoint_uuid + "'" + in);
    if (row->state != "ACTIVE")
      throw ConfigError(key + "checkpoint '" + row->uuid +
                        "' was deleted by its trial's retention"
                        " (checkpoint_storage.save_trial_latest / save_trial_best)");
  } else {
    key = "searcher.source_trial_id: ";
    TrialRow t;
    try {
      t = store.trial(*s.source_trial_id);
    } catch (const Error&) {
      throw ConfigError(key + "no trial " + std::to_string(*s.source_trial_id) + in +
                        " (det-run describe EXP_ID lists trial ids)");
    }
    auto rows = store.checkpoints(t.id);  // oldest first
    if (rows.empty())
      throw ConfigError(key + "trial " + std::to_string(t.id) + " has no checkpoint");
    row = rows.back();
  }
  const fs::path dir = row->path;
  std::error_code ec;
  if (!fs::exists(dir / record::kMetadataFile, ec))
    throw ConfigError(key + "checkpoint '" + row->uuid + "' is recorded at " + dir.string() +
                      ", which holds no " + record::kMetadataFile);
  return dir;
}

}  // namespace det::experiment
