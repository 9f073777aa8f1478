#pragma once
// Helpers of the trials' tests: run a registered trial from a config, and a tiny ImageFolder tree.
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "../core/test_trials.h"
#include "det/core/controller.h"

namespace det::testing {

/// Runs the config's trial in `dir` (seed 1), for `batches` batches when given.
inline TrialResult run_trial_for(const config::ExperimentConfig& cfg,
                                 const std::filesystem::path& dir,
                                 std::optional<int64_t> batches = {}) {
  TrialRunOptions opt;
  opt.trial_dir = dir;
  opt.trial_seed = 1;
  opt.hparams =
      config::sample_hyperparameters(cfg.hyperparameters, *std::make_unique<util::NpRandom>(1));
  opt.show_progress = false;
  opt.max_length_batches = batches;
  TrialController controller(cfg, TrialRegistry::instance().find(cfg.entrypoint), opt);
  return controller.run();
}

/// Two classes of real JPEG/PNG files from tests/testdata/images, one corrupt file.
inline std::filesystem::path make_tree(const std::filesystem::path& root) {
  const std::filesystem::path images = std::string(DET_TEST_DATA_DIR) + "/images";
  for (const char* split : {"train", "val"}) {
    std::filesystem::create_directories(root / split / "a");
    std::filesystem::create_directories(root / split / "b");
    int i = 0;
    for (const char* f : {"rgb.png", "gray.png", "rgb420.jpg", "palette.png"})
      std::filesystem::copy_file(images / f, root / split / "a" / (std::to_string(i++) + "_" + f));
    for (const char* f : {"rgba.png", "gray.jpg", "rgb444.jpg", "big420.jpg"})
      std::filesystem::copy_file(images / f, root / split / "b" / (std::to_string(i++) + "_" + f));
  }
  std::ofstream(root / "train" / "b" / "broken.jpg") << "not a jpeg";
  return root;
}

}  // namespace det::testing
