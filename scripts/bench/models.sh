#!/usr/bin/env bash
# Training and inference throughput (images/s) of ShiftViT (the Determined MNIST and CIFAR-10
# models, 18.8M parameters) and the small from-scratch ViT (configs/vit/scratch_cifar10.yaml),
# det (bench_models) against the same models in Python PyTorch (models_pytorch.py, Debian's
# python3-torch: the same LibTorch underneath), synthetic batches, AdamW, no dropout.
# ROUNDS interleaved rounds; medians and the det/PyTorch ratio are printed.
#   scripts/bench/models.sh [ROUNDS=3] [BATCH=64] [ITERS=10] [WARMUP=2]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The Python peer runs on Debian's python3-torch (the same LibTorch 1.13 as Debian's det build).
/usr/bin/python3 -c 'import torch, numpy' 2>/dev/null || {
  echo "bench: installing python3-torch (Debian) for the Python peer" >&2
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y -qq --no-install-recommends python3-torch >/dev/null
}
rounds=${1:-3} batch=${2:-64} iters=${3:-10} warmup=${4:-2}
build=${DET_BUILD_DIR:-$root/build}
[ -x "$build/bench_models" ] || ninja -C "$build" bench_models >&2
results=()
for r in $(seq "$rounds"); do
  for m in shiftvit_mnist shiftvit_cifar10 vit_scratch_cifar10; do
    results+=("$("$build/bench_models" "$m" "$batch" "$iters" "$warmup")")
    results+=("$(/usr/bin/python3 "$root/scripts/bench/models_pytorch.py" "$m" "$batch" "$iters" "$warmup")")
  done
  echo "round $r done" >&2
done
printf '%s\n' "${results[@]}" > "${DET_BENCH_RAW:-/dev/null}"
printf '%s\n' "${results[@]}" | /usr/bin/python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
med = {}
for r in rows:
    for k in ("train_images_per_second", "infer_images_per_second"):
        med.setdefault((r["model"], r["impl"], k), []).append(r[k])
print("| model | det train img/s | PyTorch train img/s | ratio | det inference img/s | PyTorch inference img/s | ratio |")
print("|---|---|---|---|---|---|---|")
for m in dict.fromkeys(r["model"] for r in rows):
    t = [statistics.median(med[(m, i, "train_images_per_second")]) for i in ("det", "pytorch")]
    v = [statistics.median(med[(m, i, "infer_images_per_second")]) for i in ("det", "pytorch")]
    print(f"| {m} | {t[0]:.1f} | {t[1]:.1f} | {t[0]/t[1]:.2f} | {v[0]:.1f} | {v[1]:.1f} | {v[0]/v[1]:.2f} |")
'
