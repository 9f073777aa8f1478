#!/usr/bin/env bash
# Training and inference throughput (images/s) of ShiftViT (the Determined MNIST and CIFAR-10
# models, 18.8M parameters) and the small from-scratch ViT (configs/vit/scratch_cifar10.yaml),
# det (bench_models, with det-run's thread defaults) against the same models in Python PyTorch
# eager (models_pytorch.py) on the same LibTorch, synthetic batches, AdamW, no dropout. Each
# build in DET_BENCH_BUILDS is one LibTorch line (scripts/bench/lib.sh; e.g.
# DET_BENCH_BUILDS="build build-2x"); its Python peer is that line's torch.
# ROUNDS interleaved rounds; medians and the det/PyTorch ratio are printed.
#   scripts/bench/models.sh [ROUNDS=3] [BATCH=64] [ITERS=10] [WARMUP=2]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/scripts/bench/lib.sh"
rounds=${1:-3} batch=${2:-64} iters=${3:-10} warmup=${4:-2}
builds=$(bench_builds)
for b in $builds; do
  bench_setup "$b" bench_models
  bench_need_peer "$b" torch numpy
done
results=()
for r in $(seq "$rounds"); do
  for b in $builds; do
    line=$(bench_line "$b") py=$(bench_python "$b")
    for m in shiftvit_mnist shiftvit_cifar10 vit_scratch_cifar10; do
      results+=("$("$b/bench_models" "$m" "$batch" "$iters" "$warmup" | sed "s/^{/{\"line\": \"$line\", /")")
      results+=("$("$py" "$root/scripts/bench/models_pytorch.py" "$m" "$batch" "$iters" "$warmup" | sed "s/^{/{\"line\": \"$line\", /")")
    done
  done
  echo "round $r done" >&2
done
printf '%s\n' "${results[@]}" > "${DET_BENCH_RAW:-/dev/null}"
printf '%s\n' "${results[@]}" | python3 -c '
import json, statistics, sys
rows = [json.loads(l) for l in sys.stdin if l.strip()]
med, threads = {}, {}
for r in rows:
    threads[(r["line"], r["impl"])] = r.get("threads")
    for k in ("train_images_per_second", "infer_images_per_second"):
        med.setdefault((r["line"], r["model"], r["impl"], k), []).append(r[k])
print("| LibTorch | model | det train img/s | PyTorch train img/s | ratio | det inference img/s | PyTorch inference img/s | ratio | threads det/PyTorch |")
print("|---|---|---|---|---|---|---|---|---|")
for line, m in dict.fromkeys((r["line"], r["model"]) for r in rows):
    t = [statistics.median(med[(line, m, i, "train_images_per_second")]) for i in ("det", "pytorch")]
    v = [statistics.median(med[(line, m, i, "infer_images_per_second")]) for i in ("det", "pytorch")]
    th = "%s/%s" % (threads[(line, "det")], threads[(line, "pytorch")])
    print(f"| {line} | {m} | {t[0]:.1f} | {t[1]:.1f} | {t[0]/t[1]:.2f} | {v[0]:.1f} | {v[1]:.1f} | {v[0]/v[1]:.2f} | {th} |")
'
