#!/usr/bin/env bash
# Installs what is missing, builds everything, runs the test suite (all but the `slow` label).
# Tests labelled `data` need the real MNIST/CIFAR files: they run when DET_DATA_DIR (or a
# shared/data checkout beside the project) is there, and are skipped otherwise.
# Extra arguments go to ctest, e.g. scripts/test.sh -R OneVar   or   scripts/test.sh -L slow
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh"
if [ -z "${DET_DATA_DIR:-}" ] && [ -d "$root/../shared/data/mnist" ]; then
  export DET_DATA_DIR=$(cd "$root/../shared/data" && pwd)
fi
exclude="slow"
if [ -z "${DET_DATA_DIR:-}" ]; then
  echo "det test: DET_DATA_DIR not set and no ../shared/data: skipping tests labelled 'data'" >&2
  exclude="slow|data"
fi
cd "${DET_BUILD_DIR:-$root/build}"
ctest --output-on-failure -j "$(nproc)" -LE "$exclude" "$@"
