#pragma once
/// \file
/// The run directory of an experiment (its records are written by experiment::Recorder).
///
///   <root>/<name>-<YYYYmmdd-HHMMSS>/
///     config.yaml        the resolved config (every default filled in)
///     experiment.json    summary: every trial's hparams, state, validation metrics, checkpoints
///     det.log            the log
///     trial-<id>/metrics.jsonl, trial-<id>/checkpoints/<uuid>/

#include <filesystem>
#include <string>

namespace det::experiment {

/// Creates a fresh, uniquely named run directory under `root` for `config`.
std::filesystem::path create_run_dir(const std::filesystem::path& root, const std::string& name);

/// The most recently modified run directory (one with experiment.json) under `root`, or "".
std::filesystem::path latest_run_dir(const std::filesystem::path& root);

}  // namespace det::experiment
