#!/usr/bin/env bash
# Training throughput of the MNIST CNN (configs/mnist/const.yaml, batch 64), side by side:
#   det-run (the whole harness: loader thread, metrics, reports)
#   a hand-written LibTorch loop (bench_mnist_loop), with and without det's malloc tuning
#   the same model in Python PyTorch (Debian's python3-torch)
# Each is timed over the same 300 batches after 50 warm-up batches; ROUNDS rounds are run
# interleaved and the medians compared.   scripts/bench/mnist.sh [ROUNDS=3]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The Python peer runs on Debian's python3-torch (the same LibTorch 1.13 as Debian's det build).
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || {
  echo "bench: installing python3-torch (Debian) for the Python peer" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y -qq --no-install-recommends python3-torch >/dev/null
}
rounds=${1:-3}
"$root/scripts/setup.sh" det-run bench_mnist_loop >&2
build=${DET_BUILD_DIR:-$root/build}
data=${DET_DATA_DIR:-$root/../shared/data}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
det_run_rate() {
  "$build/det-run" "$root/configs/mnist/const.yaml" --no-progress --config searcher.max_length.batches=350 \
    --config scheduling_unit=50 --config checkpoint_storage.host_path="$tmp" >/dev/null 2>&1
  local metrics
  metrics=$(ls -t "$tmp"/*/trial-1/metrics.jsonl | head -1)
  # Steady state: skip the first report (warm-up batches 1-50), then batches / seconds.
  /usr/bin/python3 - "$metrics" <<'PY'
import json, sys
reports = [json.loads(l) for l in open(sys.argv[1]) if '"training"' in l][1:]
secs = sum(50 / r["throughput"]["batches_per_second"] for r in reports)
print(json.dumps({"impl": "det_run", "batches_per_second": 50 * len(reports) / secs}))
PY
}
results=()
for r in $(seq "$rounds"); do
  results+=("$(det_run_rate)")
  results+=("$("$build/bench_mnist_loop" "$data")")
  results+=("$("$build/bench_mnist_loop" "$data" 300 50 --no-malloc-tuning)")
  results+=("$(/usr/bin/python3 "$root/scripts/bench/mnist_pytorch.py" "$data")")
  echo "round $r done" >&2
done
printf '%s\n' "${results[@]}" > "${DET_BENCH_RAW:-/dev/null}"
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
by = {}
for r in rows: by.setdefault(r["impl"], []).append(r["batches_per_second"])
med = {k: statistics.median(v) for k, v in by.items()}
base = med["libtorch_loop"]
print("| implementation | batches/s (median) | samples/s | vs hand-written loop | runs |")
print("|---|---:|---:|---:|---|")
for k in ["det_run", "libtorch_loop", "libtorch_loop_no_malloc_tuning", "python_pytorch"]:
    v = by[k]
    runs = ", ".join("%.2f" % x for x in v)
    print("| %s | %.2f | %.0f | %.3f | %s |" % (k, med[k], med[k] * 64, med[k] / base, runs))
'
