#!/usr/bin/env bash
# Installs what is missing, builds everything, runs the test suite (all but the `slow` label)
# against the LibTorch that scripts/setup.sh picks (DET_TORCH, default auto); with
# DET_TEST_SMOKE_TORCH=<line> also builds det against that other line and smoke-tests it.
# Tests labelled `data` need the real MNIST/CIFAR files: they run when DET_DATA_DIR (or a
# shared/data checkout beside the project) is there, and are skipped otherwise.
# Extra arguments go to ctest, e.g. scripts/test.sh -R OneVar   or   scripts/test.sh -L slow
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
start=$(date +%s)
"$root/scripts/setup.sh"
# What only the tests need, from Debian: Chromium (the browser tests of the report and the live
# view), Open MPI (mpirun), Slurm and munge (a one-machine cluster, tests/cluster/); and PyPI's
# tensorboard in .venv/ (TensorBoard reads det's event files back) and lizard (lint.complexity).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v mpirun >/dev/null 2>&1 || missing+=(openmpi-bin)
[ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ] && command -v srun >/dev/null 2>&1 ||
  missing+=(slurm-wlm)
[ -x /usr/sbin/munged ] || missing+=(munge)
if [ ${#missing[@]} -gt 0 ]; then
  echo "det test: installing ${missing[*]} (browser, MPI and Slurm tests)" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
venv="$root/.venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c 'import tensorboard' 2>/dev/null; then
  echo "det test: installing tensorboard into $venv (the TensorBoard reader test)" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "tensorboard==${DET_TENSORBOARD_VERSION:-2.21.0}"
fi
if ! "$venv/bin/python" -c 'import lizard' 2>/dev/null; then
  echo "det test: installing lizard into $venv (lint.complexity)" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check "lizard==${DET_LIZARD_VERSION:-1.24.3}"
fi
echo "det test: set up and built in $(($(date +%s) - start)) s" >&2
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
main=$(cut -d' ' -f1 "$build/det-torch.txt" 2>/dev/null || echo '?')
echo "det test: the whole suite against LibTorch line '$main' ($build)" >&2
rc=0
(cd "$build" && ctest --output-on-failure -j "$(nproc)" -LE "$exclude" "$@") || rc=$?
echo "det test: the suite ended (exit $rc) at $(($(date +%s) - start)) s" >&2
# The other LibTorch line (CI: DET_TEST_SMOKE_TORCH=debian beside the pypi main line): built
# and run as a smoke test (scripts/smoke.sh).
smoke=${DET_TEST_SMOKE_TORCH:-}
if [ -n "$smoke" ] && [ "$smoke" != "$main" ]; then
  "$root/scripts/smoke.sh" "$smoke" || rc=1
elif [ -n "$smoke" ]; then
  echo "det test: DET_TEST_SMOKE_TORCH=$smoke is the main line already: no smoke build" >&2
fi
echo "det test: done in $(($(date +%s) - start)) s" >&2
exit $rc
