#!/usr/bin/env bash
# Whole-process cost of det's threading defaults (docs/performance.md, Threads): det-run trains
# 300 batches of configs/mnist/const.yaml plus the full validation with det's defaults (BLAS held
# to one thread, LibTorch's intra-op threads on every usable CPU) and with the libraries' own
# (DET_BLAS_THREADS=0 DET_INTRA_OP_THREADS=0: OpenBLAS one thread per core, LibTorch's default
# count), ROUNDS interleaved rounds, measured by proctree.py (wall, user, system seconds and the
# peak proportional memory of the process tree); prints the medians. Each build in
# DET_BENCH_BUILDS is one LibTorch line (scripts/bench/lib.sh).
#   scripts/bench/threads.sh [ROUNDS=3] [BATCHES=300]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/scripts/bench/lib.sh"
rounds=${1:-3} batches=${2:-300}
export DET_DATA_DIR=${DET_DATA_DIR:-$root/../shared/data}
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS DET_BLAS_THREADS DET_INTRA_OP_THREADS
builds=$(bench_builds)
for b in $builds; do bench_setup "$b" det-run; done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # BUILD LABEL [VAR=VALUE...]
  local b=$1 label=$2
  shift 2
  rm -rf "$tmp/runs"
  env "$@" python3 "$root/scripts/bench/proctree.py" --label "$label" -- \
    "$b/det-run" "$root/configs/mnist/const.yaml" --no-progress \
    --config searcher.max_length.batches="$batches" --config checkpoint_storage.host_path="$tmp/runs" |
    sed "s/^{/{\"line\": \"$(bench_line "$b")\", /"
}
for r in $(seq "$rounds"); do
  for b in $builds; do
    run "$b" det_defaults
    run "$b" library_defaults DET_BLAS_THREADS=0 DET_INTRA_OP_THREADS=0
  done
  echo "round $r done" >&2
done | tee "$tmp/rows" >"${DET_BENCH_RAW:-/dev/null}"
python3 - "$tmp/rows" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
if any(r["rc"] != 0 for r in rows):
    sys.exit("bench: a run failed")
by = {}
for r in rows:
    by.setdefault((r["line"], r["label"]), []).append(r)
print("| LibTorch | det-run, 300 batches + validation | wall s | user s | system s | peak PSS MB | runs (wall s) |")
print("|---|---|---:|---:|---:|---:|---|")
for (line, label), rs in by.items():
    med = lambda k: statistics.median(r[k] for r in rs)
    print("| %s | %s | %.1f | %.1f | %.1f | %.0f | %s |" % (line, label, med("wall_s"), med("user_s"),
          med("sys_s"), med("peak_tree_pss_mb"), ", ".join("%.1f" % r["wall_s"] for r in rs)))
PY
