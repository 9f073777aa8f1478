#!/usr/bin/env bash
# MNIST end to end, whole process, as a newcomer runs it: det-run configs/mnist/const.yaml for
# BATCHES batches plus the full validation (start-up, data loading, checkpoint included), against
# Determined's mnist_pytorch example as one Python process (mnist_example.py: torchvision's
# dataset and DataLoader) on the same LibTorch. Measured by proctree.py: wall, user and system
# seconds of the whole process tree and its peak resident memory (the sum over its processes).
# ROUNDS interleaved rounds, medians; each build in DET_BENCH_BUILDS is one LibTorch line
# (scripts/bench/lib.sh), e.g. DET_BENCH_BUILDS="build build-2x" for both side by side.
#   scripts/bench/e2e_mnist.sh [ROUNDS=3] [BATCHES=300]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/scripts/bench/lib.sh"
rounds=${1:-3} batches=${2:-300}
data=${DET_DATA_DIR:-$root/../shared/data}
[ -f "$data/mnist/train-images-idx3-ubyte.gz" ] || { echo "bench: no MNIST under $data/mnist (set DET_DATA_DIR)" >&2; exit 2; }
export DET_DATA_DIR=$data
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS  # each side's own threading defaults
builds=$(bench_builds)
for b in $builds; do
  bench_setup "$b" det-run
  bench_need_peer "$b" torch torchvision numpy
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# torchvision reads the raw (unpacked) files, as the example's download leaves them.
mkdir -p "$tmp/data/MNIST/raw"
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  gzip -dc "$data/mnist/$f.gz" >"$tmp/data/MNIST/raw/$f"
done
measure() {  # LINE IMPL COMMAND...: one JSON row with the accuracy the run reached
  local line=$1 impl=$2
  shift 2
  local row
  row=$(python3 "$root/scripts/bench/proctree.py" --label "$impl" --log "$tmp/log" -- "$@")
  local acc
  if [ "$impl" = det_run ]; then
    acc=$(python3 -c 'import json,sys
rows=[json.loads(l) for l in open(sys.argv[1]) if "\"validation\"" in l]
print(rows[-1]["metrics"]["accuracy"] if rows else "null")' "$(ls -t "$tmp"/runs/*/trial-1/metrics.jsonl | head -1)")
  else
    acc=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["accuracy"])' "$tmp/log")
  fi
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(line=sys.argv[2], accuracy=float(sys.argv[3])); print(json.dumps(r))' \
    "$row" "$line" "$acc"
}
rows=()
for r in $(seq "$rounds"); do
  for b in $builds; do
    line=$(bench_line "$b")
    rm -rf "$tmp/runs"
    rows+=("$(measure "$line" det_run \
      "$b/det-run" "$root/configs/mnist/const.yaml" --no-progress \
      --config searcher.max_length.batches="$batches" --config checkpoint_storage.host_path="$tmp/runs")")
    rows+=("$(measure "$line" python_example \
      "$(bench_python "$b")" "$root/scripts/bench/mnist_example.py" "$tmp/data" "$batches")")
  done
  echo "round $r done" >&2
done
printf '%s\n' "${rows[@]}" >"${DET_BENCH_RAW:-/dev/null}"
printf '%s\n' "${rows[@]}" >"$tmp/rows"
python3 - "$tmp/rows" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
failed = [r for r in rows if r["rc"] != 0]
if failed:
    sys.exit("bench: a run failed: " + json.dumps(failed[0]))
by = {}
for r in rows:
    by.setdefault((r["line"], r["label"]), []).append(r)
def med(key, rs):
    return statistics.median(r[key] for r in rs)
print("| LibTorch | implementation | wall s | user s | system s | peak PSS MB | peak RSS MB (sum) "
      "| accuracy | Python wall / det wall | runs (wall s) |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
for (line, impl), rs in by.items():
    ratio = med("wall_s", by[(line, "python_example")]) / med("wall_s", rs)
    runs = ", ".join("%.1f" % r["wall_s"] for r in rs)
    print("| %s | %s | %.1f | %.1f | %.1f | %.0f | %.0f | %.4f | %.2f | %s |" % (
        line, impl, med("wall_s", rs), med("user_s", rs), med("sys_s", rs),
        med("peak_tree_pss_mb", rs), med("peak_tree_rss_mb", rs), med("accuracy", rs), ratio, runs))
PY
