#!/usr/bin/env bash
# A smoke test of det against another LibTorch line than the main build's (CI runs the whole
# suite on one line and this on the other): builds det-run, det-launch and the example user
# executable against it in their own build directory, then runs, through the real executables,
# MNIST in test mode (one batch, one validation, a checkpoint: with the real data when present),
# a resume from that checkpoint, and the end-to-end command-line scripts of the suite
# (tests/e2e/cli_test.sh, dist_cli_test.sh: run directories, resume, errors, two Gloo ranks).
#   scripts/smoke.sh LINE      LINE: debian, pypi or a LibTorch path, as DET_TORCH (setup.sh)
# Environment: DET_SMOKE_BUILD_DIR (default: build-smoke-<line>), DET_DATA_DIR.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
line=${1:?usage: scripts/smoke.sh debian|pypi|PATH}
name=$(basename "$line")
build=${DET_SMOKE_BUILD_DIR:-$root/build-smoke-$name}
start=$(date +%s)
DET_TORCH=$line DET_BUILD_DIR=$build "$root/scripts/setup.sh" det-run det-launch my-trainer
echo "det smoke ($line): built in $(($(date +%s) - start)) s ($build)" >&2
work=$build/smoke
rm -rf "$work" && mkdir -p "$work"
fails=0
step() {  # step NAME COMMAND...: runs it, its output in $work/NAME.log; reports
  local name=$1
  shift
  if "$@" >"$work/$name.log" 2>&1; then
    echo "det smoke ($line): $name: ok" >&2
  else
    echo "det smoke ($line): $name: FAILED; the last lines of $work/$name.log:" >&2
    tail -n 15 "$work/$name.log" | sed 's/^/    /' >&2
    fails=$((fails + 1))
  fi
}
if [ -z "${DET_DATA_DIR:-}" ] && [ -d "$root/../shared/data/mnist" ]; then
  export DET_DATA_DIR=$(cd "$root/../shared/data" && pwd)
fi
if [ -n "${DET_DATA_DIR:-}" ]; then
  mnist_resume() {  # trains 4 batches with a checkpoint at 2, then resumes from that checkpoint
    local runs=$work/mnist-runs
    "$build/det-run" "$root/configs/mnist/const.yaml" --no-progress \
      --config searcher.max_length.batches=4 --config min_checkpoint_period.batches=2 \
      --config checkpoint_storage.save_trial_latest=2 --config checkpoint_storage.host_path="$runs"
    local ckpt
    ckpt=$(grep -lE '"batches_trained": ?2[,}]' $(find "$runs" -name metadata.json) | head -1)
    [ -n "$ckpt" ] || { echo "no checkpoint at batch 2 under $runs"; return 1; }
    "$build/det-run" "$root/configs/mnist/const.yaml" --no-progress --resume "$(dirname "$ckpt")" \
      --config searcher.max_length.batches=4 --config checkpoint_storage.host_path="$runs"
  }
  step mnist_test_mode "$build/det-run" "$root/configs/mnist/const.yaml" --test --no-progress \
    --config checkpoint_storage.host_path="$work/mnist-test"
  step mnist_resume mnist_resume
else
  echo "det smoke ($line): no MNIST (DET_DATA_DIR): the MNIST steps are skipped" >&2
fi
step cli bash "$root/tests/e2e/cli_test.sh" "$build/det-run" "$build/my-trainer" "$root" "$work/cli"
step dist_cli bash "$root/tests/e2e/dist_cli_test.sh" "$build/det-launch" "$build/my-trainer" \
  "$root" "$work/dist-cli"
echo "det smoke ($line): $fails failure(s), $(($(date +%s) - start)) s in all" >&2
((fails == 0))
