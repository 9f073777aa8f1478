#!/usr/bin/env bash
# det's data loader against torchvision's DataLoader with the same transforms, batch size and
# number of workers, on the CIFAR-10 training pipeline and on an ImageFolder JPEG pipeline,
# ROUNDS interleaved rounds, medians and ratios.     scripts/bench/loader.sh [ROUNDS=3] [WORKERS=2]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rounds=${1:-3} workers=${2:-2}
"$root/scripts/setup.sh" bench_loader >&2
build=${DET_BUILD_DIR:-$root/build}
data=${DET_DATA_DIR:-$root/../shared/data}
tree=${DET_BENCH_JPEG_TREE:-/tmp/det-bench-jpeg-tree}
[ -d "$tree" ] || /usr/bin/python3 "$root/scripts/bench/make_jpeg_tree.py" "$data" "$tree"
results=()
for r in $(seq "$rounds"); do
  results+=("$("$build/bench_loader" cifar "$data" "$workers")")
  results+=("$(/usr/bin/python3 "$root/scripts/bench/loader_torchvision.py" cifar "$data" "$workers")")
  results+=("$("$build/bench_loader" imagefolder "$tree" "$workers" 2>/dev/null)")
  results+=("$(/usr/bin/python3 "$root/scripts/bench/loader_torchvision.py" imagefolder "$tree" "$workers")")
  echo "round $r done" >&2
done
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
by = {}
for r in rows: by.setdefault((r["pipeline"], r["impl"]), []).append(r["images_per_second"])
print("| pipeline | loader | images/s (median) | vs torchvision | runs |")
print("|---|---|---:|---:|---|")
for p in ["cifar", "imagefolder"]:
    tv = statistics.median(by[(p, "torchvision")])
    for impl in ["det", "torchvision"]:
        v = by[(p, impl)]
        print("| %s | %s | %.0f | %.2f | %s |" % (p, impl, statistics.median(v), statistics.median(v) / tv, ", ".join("%.0f" % x for x in v)))
'
