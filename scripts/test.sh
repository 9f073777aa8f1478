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
# The torch-free layers build and pass without LibTorch (docs/design.md, Layers): a second,
# small build configured with DET_WITH_TORCH=OFF (no LibTorch is even looked for).
build=${DET_BUILD_DIR:-$root/build}
torch_free="$build-torch-free"
if [ ! -f "$torch_free/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$torch_free" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDET_WITH_TORCH=OFF >/dev/null
fi
cmake --build "$torch_free" -j "$(nproc)" --target det_base_tests >/dev/null
"$torch_free/tests/det_base_tests" --gtest_brief=1 >/dev/null || {
  echo "det test: the torch-free build's det_base_tests failed; rerun $torch_free/tests/det_base_tests" >&2
  exit 1
}
echo "det test: the torch-free layers build and pass without LibTorch ($torch_free)" >&2
cd "$build"
ctest --output-on-failure -j "$(nproc)" -LE "$exclude" "$@"
