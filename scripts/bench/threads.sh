#!/usr/bin/env bash
# Whole-process cost of the BLAS thread default (docs/performance.md, Threads): det-run trains
# 300 batches of configs/mnist/const.yaml plus the full validation, with det's default (BLAS held
# to one thread) and with DET_BLAS_THREADS=0 (OpenBLAS's own default: one thread per core),
# ROUNDS interleaved rounds; prints the medians of wall, user and system seconds and peak RSS.
#   scripts/bench/threads.sh [ROUNDS=3]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rounds=${1:-3}
[ -x /usr/bin/time ] || { sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo; $sudo apt-get install -y -qq time >/dev/null; }
"$root/scripts/setup.sh" det-run >&2
build=${DET_BUILD_DIR:-$root/build}
export DET_DATA_DIR=${DET_DATA_DIR:-$root/../shared/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # LABEL [VAR=VALUE]
  local label=$1
  shift
  env -u OPENBLAS_NUM_THREADS -u OMP_NUM_THREADS "$@" /usr/bin/time -f "$label %e %U %S %M" -o "$tmp/time" \
    "$build/det-run" "$root/configs/mnist/const.yaml" --no-progress \
    --config searcher.max_length.batches=300 --config checkpoint_storage.host_path="$tmp/runs" \
    >/dev/null 2>&1
  cat "$tmp/time"
}
for r in $(seq "$rounds"); do
  run det_default
  run blas_all_cores DET_BLAS_THREADS=0
  echo "round $r done" >&2
done | tee "$tmp/rows" >&2
python3 - "$tmp/rows" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 5:
        rows.setdefault(p[0], []).append([float(x) for x in p[1:]])
print("| det-run, 300 batches + validation | wall s | user s | system s | peak RSS MB | runs (wall) |")
print("|---|---:|---:|---:|---:|---|")
for k, v in rows.items():
    med = [statistics.median(c) for c in zip(*v)]
    print(f"| {k} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | {med[3]/1024:.0f} | {', '.join(f'{x[0]:.1f}' for x in v)} |")
PY
