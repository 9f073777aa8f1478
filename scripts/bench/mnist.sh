#!/usr/bin/env bash
# Training throughput of the MNIST CNN (configs/mnist/const.yaml, batch 64), side by side:
#   det-run (the whole harness: loader thread, metrics, reports)
#   a hand-written LibTorch loop (bench_mnist_loop), with and without det's malloc tuning
#   the same model in Python PyTorch (the same LibTorch: Debian's python3-torch for 1.13, the
#   wheel in .venv/ for 2.x)
# Each is timed over the same 300 batches after 50 warm-up batches; ROUNDS rounds are run
# interleaved and the medians compared. Each build in DET_BENCH_BUILDS is one LibTorch line
# (scripts/bench/lib.sh).   scripts/bench/mnist.sh [ROUNDS=3]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/scripts/bench/lib.sh"
rounds=${1:-3}
builds=$(bench_builds)
for b in $builds; do
  bench_setup "$b" det-run bench_mnist_loop
  bench_need_peer "$b" torch numpy
done
data=${DET_DATA_DIR:-$root/../shared/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
det_run_rate() {  # BUILD
  local build=$1
  rm -rf "$tmp"/*
  "$build/det-run" "$root/configs/mnist/const.yaml" --no-progress --config searcher.max_length.batches=350 \
    --config scheduling_unit=50 --config checkpoint_storage.host_path="$tmp" >/dev/null 2>&1
  local metrics
  metrics=$(ls -t "$tmp"/*/trial-1/metrics.jsonl | head -1)
  # Steady state: skip the first report (warm-up batches 1-50), then batches / seconds.
  python3 - "$metrics" <<'PY'
import json, sys
reports = [json.loads(l) for l in open(sys.argv[1]) if '"training"' in l][1:]
secs = sum(50 / r["throughput"]["batches_per_second"] for r in reports)
print(json.dumps({"impl": "det_run", "batches_per_second": 50 * len(reports) / secs}))
PY
}
results=()
tag() { sed "s/^{/{\"line\": \"$1\", /"; }
for r in $(seq "$rounds"); do
  for b in $builds; do
    line=$(bench_line "$b") py=$(bench_python "$b")
    results+=("$(det_run_rate "$b" | tag "$line")")
    results+=("$("$b/bench_mnist_loop" "$data" | tag "$line")")
    results+=("$("$b/bench_mnist_loop" "$data" 300 50 --no-malloc-tuning | tag "$line")")
    results+=("$("$py" "$root/scripts/bench/mnist_pytorch.py" "$data" | tag "$line")")
  done
  echo "round $r done" >&2
done
printf '%s\n' "${results[@]}" > "${DET_BENCH_RAW:-/dev/null}"
printf '%s\n' "${results[@]}" | python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
by = {}
for r in rows: by.setdefault((r["line"], r["impl"]), []).append(r["batches_per_second"])
print("| LibTorch | implementation | batches/s (median) | samples/s | vs hand-written loop | runs |")
print("|---|---|---:|---:|---:|---|")
for line in dict.fromkeys(r["line"] for r in rows):
    base = statistics.median(by[(line, "libtorch_loop")])
    for k in ["det_run", "libtorch_loop", "libtorch_loop_no_malloc_tuning", "python_pytorch"]:
        v = by[(line, k)]
        med = statistics.median(v)
        runs = ", ".join("%.2f" % x for x in v)
        print("| %s | %s | %.2f | %.0f | %.3f | %s |" % (line, k, med, med * 64, med / base, runs))
'
