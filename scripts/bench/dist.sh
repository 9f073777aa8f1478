#!/usr/bin/env bash
# Data-parallel throughput of the MNIST CNN (configs/mnist/distributed.yaml, global batch 64), side
# by side on this machine:
#   1rank           slots_per_trial 1: one process, batch 64, all cores to its intra-op pool
#   2ranks          slots_per_trial 2: two Gloo ranks over loopback, batch 32 each, 1 thread each
#   2ranks_no_overlap  the same, but every gradient bucket is launched after backward
#                   (DET_DIST_OVERLAP=0) instead of from the autograd hooks
# Buckets are 1 MB (DET_BUCKET_MB=1) so the CNN's 4.8 MB of gradients make several buckets and the
# hooks have something to overlap (with the 25 MB default the CNN is one bucket).
# Each run trains BATCHES global batches; the first report (50 batches) is warm-up and skipped.
# ROUNDS rounds run interleaved; medians are compared.   scripts/bench/dist.sh [ROUNDS=3] [BATCHES=300]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rounds=${1:-3}
batches=${2:-300}
"$root/scripts/setup.sh" det-run det-launch >&2
build=${DET_BUILD_DIR:-$root/build}
export DET_DATA_DIR=${DET_DATA_DIR:-$root/../shared/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
run() {  # run NAME SLOTS [ENV=VALUE...]
  local name=$1 slots=$2; shift 2
  local out="$tmp/$name-$RANDOM"
  env DET_BUCKET_MB=1 "$@" "$build/det-run" "$root/configs/mnist/distributed.yaml" --no-progress \
    --config resources.slots_per_trial="$slots" --config searcher.max_length.batches="$batches" \
    --config scheduling_unit=50 --config checkpoint_storage.host_path="$out" >"$out.log" 2>&1
  local metrics
  metrics=$(ls -t "$out"/*/trial-1/metrics.jsonl | head -1)
  /usr/bin/python3 - "$name" "$metrics" "$out.log" <<'PY'
import json, re, sys
name, metrics, log = sys.argv[1:]
reports = [json.loads(l) for l in open(metrics) if '"training"' in l][1:]
secs = sum(50 / r["throughput"]["batches_per_second"] for r in reports)
row = {"impl": name, "batches_per_second": 50 * len(reports) / secs}
m = re.search(r"(\d+)% of buckets launched during backward, ([0-9.]+) ms per step waited", open(log).read())
if m: row.update(in_backward=int(m.group(1)), wait_ms=float(m.group(2)))
print(json.dumps(row))
PY
}
results=()
for r in $(seq "$rounds"); do
  results+=("$(run 1rank 1)")
  results+=("$(run 2ranks 2)")
  results+=("$(run 2ranks_no_overlap 2 DET_DIST_OVERLAP=0)")
  echo "round $r done" >&2
done
printf '%s\n' "${results[@]}" > "${DET_BENCH_RAW:-/dev/null}"
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
by = {}
for r in rows: by.setdefault(r["impl"], []).append(r)
med = {k: statistics.median(x["batches_per_second"] for x in v) for k, v in by.items()}
base = med["1rank"]
print("| run | global batches/s (median) | samples/s | vs 1 rank | buckets launched in backward | wait after backward (ms/step, median) | runs |")
print("|---|---:|---:|---:|---:|---:|---|")
for k in ["1rank", "2ranks", "2ranks_no_overlap"]:
    v = by[k]
    runs = ", ".join("%.2f" % x["batches_per_second"] for x in v)
    inb = ("%d%%" % v[0]["in_backward"]) if "in_backward" in v[0] else "-"
    wait = ("%.1f" % statistics.median(x["wait_ms"] for x in v)) if "wait_ms" in v[0] else "-"
    print("| %s | %.2f | %.0f | %.3f | %s | %s | %s |" % (k, med[k], med[k] * 64, med[k] / base, inb, wait, runs))
'
