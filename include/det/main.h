#pragma once
/// \file
/// det::main: the det-run command line, for det-run itself and for a user's executable
/// that links its own trials (see docs/writing-a-trial.md). It is the public door of the app
/// layer (src/app/).

namespace det {

/// Runs the det-run command line: `CONFIG [--test] [--resume DIR] [--config k=v]`,
/// `--resume-experiment DIR`, `validate-config`, `preview-search`, `experiments`, `describe`,
/// `metrics`, `list-trials`. Returns the exit code: 0 success, 2 user error (config, usage), 1
/// failure, 130 stopped by a signal (resumable from its checkpoint).
int main(int argc, char** argv);

}  // namespace det
