#!/usr/bin/env bash
# det's CIFAR-10 training pipeline against torchvision's DataLoader with the same transforms,
# batch (128) and number of workers, side by side, ROUNDS interleaved rounds, medians.
#   scripts/bench/cifar_loader.sh [ROUNDS=3] [WORKERS=2]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rounds=${1:-3} workers=${2:-2}
"$root/scripts/setup.sh" bench_cifar_loader >&2
build=${DET_BUILD_DIR:-$root/build}
data=${DET_DATA_DIR:-$root/../shared/data}
results=()
for r in $(seq "$rounds"); do
  results+=("$("$build/bench_cifar_loader" "$data" "$workers")")
  results+=("$(/usr/bin/python3 "$root/scripts/bench/cifar_loader_torchvision.py" "$data" "$workers")")
  echo "round $r done" >&2
done
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
by = {}
for r in rows: by.setdefault(r["impl"], []).append(r["images_per_second"])
med = {k: statistics.median(v) for k, v in by.items()}
print("| loader | images/s (median) | vs torchvision | runs |")
print("|---|---:|---:|---|")
for k in ["det", "torchvision"]:
    print("| %s | %.0f | %.2f | %s |" % (k, med[k], med[k] / med["torchvision"], ", ".join("%.0f" % x for x in by[k])))
'
