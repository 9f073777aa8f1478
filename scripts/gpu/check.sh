#!/usr/bin/env bash
# The GPU check (docs/gpu.md): everything det can only show on a CUDA GPU, in one call, within a
# time budget, results as JSON plus a readable summary under $OUT.
#
#   scripts/gpu/check.sh          on the GPU host: build, gpu tests, MNIST and ShiftViT training,
#                                 ViT-B/16 bf16 throughput (det, PyTorch eager, torch.compile)
#   scripts/gpu/check.sh --dry    anywhere (CI): every step that needs no GPU: the packed Debian
#                                 dependencies unpack and configure, the gpu tests skip with their
#                                 reason, the training and benchmark steps run tiny on the CPU
#
# The GPU host (shared/gpu/README.md) has PyTorch's CUDA wheel but no package registry: the
# Debian packages the build needs travel with the working tree in .debs/ (scripts/gpu/pack_debs.sh
# makes it; git ignores it). Environment:
#   OUT                   results directory (default: ./gpu-check)
#   DET_GPU_BUDGET        seconds for the whole check (default 400; a step that would start
#                         after the budget is skipped and says so)
#   DET_GPU_BUILD_DIR     build directory (default: /tmp/det-gpu-build-<checkout>; --dry: $DET_BUILD_DIR or build)
#   DET_PYTHON            the Python with PyTorch (default: python3; --dry: .venv/bin/python if any)
#   DET_DATA_DIR          MNIST and CIFAR-10 (default: ../shared/data or ./data if present)
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
dry=0
[ "${1:-}" = "--dry" ] && dry=1
OUT=${OUT:-$root/gpu-check}
mkdir -p "$OUT"
budget=${DET_GPU_BUDGET:-400}
start=$(date +%s)
python=${DET_PYTHON:-python3}
if [ $dry = 1 ] && [ -z "${DET_PYTHON:-}" ] && [ -x "$root/.venv/bin/python" ]; then python=$root/.venv/bin/python; fi
if [ -z "${DET_DATA_DIR:-}" ]; then
  for d in "$root/../shared/data" "$root/data"; do [ -d "$d/mnist" ] && export DET_DATA_DIR=$(cd "$d" && pwd) && break; done
fi
steps_file="$OUT/steps.jsonl"
: >"$steps_file"
summary="$OUT/summary.md"
{
  echo "# det GPU check"
  echo
  echo "- mode: $([ $dry = 1 ] && echo 'dry (no GPU needed)' || echo 'GPU')"
  echo "- started: $(date -u +%Y-%m-%dT%H:%M:%SZ), budget ${budget}s, commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
} >"$summary"

elapsed() { echo $(($(date +%s) - start)); }
# step NAME SECONDS_NEEDED CMD...: runs CMD with its output in $OUT/NAME.log, bounded by what is
# left of the budget; records status and time.
step() {
  local name=$1 need=$2
  shift 2
  local left=$((budget - $(elapsed)))
  if ((left < need)); then
    echo "{\"step\": \"$name\", \"status\": \"skipped\", \"reason\": \"${left}s of the budget left, needs ${need}s\"}" >>"$steps_file"
    echo "- $name: skipped (budget: ${left}s left, needs ${need}s)" >>"$summary"
    return 1
  fi
  local t0=$(date +%s)
  if declare -F "$1" >/dev/null; then  # a function of this script: timeout needs a program
    timeout --kill-after=10 "$left" bash -c "$(declare -f "$1"); \"\$@\"" _ "$@" >"$OUT/$name.log" 2>&1
  else
    timeout --kill-after=10 "$left" "$@" >"$OUT/$name.log" 2>&1
  fi
  local rc=$? secs=$(($(date +%s) - t0))
  local status=ok
  ((rc == 0)) || status=failed
  ((rc == 124 || rc == 137)) && status=timeout
  echo "{\"step\": \"$name\", \"status\": \"$status\", \"rc\": $rc, \"seconds\": $secs}" >>"$steps_file"
  echo "- $name: $status in ${secs}s$([ $rc = 0 ] || echo " (exit $rc; see $name.log)")" >>"$summary"
  echo "gpu check: $name: $status (${secs}s)" >&2
  if ((rc != 0)); then  # the reason, where whoever reads only the summary or stderr sees it
    tail -n 5 "$OUT/$name.log" | sed 's/^/    /' | tee -a "$summary" >&2
  fi
  return $rc
}

# ---- environment ----
{
  echo "{"
  echo "\"nvidia_smi\": $("$python" -c 'import json,subprocess,sys
try: print(json.dumps(subprocess.run(["nvidia-smi","-L"],capture_output=True,text=True).stdout.strip()))
except Exception as e: print(json.dumps("none: %s" % e))'),"
  echo "\"torch\": $("$python" -c 'import json,torch; print(json.dumps({"version": torch.__version__, "cuda": torch.version.cuda, "gpus": torch.cuda.device_count(), "cmake_prefix": torch.utils.cmake_prefix_path}))' 2>/dev/null || echo null),"
  echo "\"nvcc\": $("$python" -c 'import json,subprocess
try: print(json.dumps(subprocess.run(["nvcc","--version"],capture_output=True,text=True).stdout.strip().splitlines()[-1]))
except Exception: print(json.dumps(None))'),"
  echo "\"cores\": $(nproc)"
  echo "}"
} >"$OUT/environment.json"
torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null || true)

# ---- dependencies: the Debian packages packed beside the tree, unpacked under a prefix ----
# Named after this checkout: directories another checkout left in /tmp (a CMake cache whose
# source is elsewhere) must not be picked up.
key=$(printf %s "$root" | md5sum | cut -c1-8)
deps=${TMPDIR:-/tmp}/det-gpu-deps-$key
export root deps python
if [ $dry = 1 ] && [ ! -d "$root/.debs" ]; then
  # Without a reachable Debian registry the dry run goes on with the installed packages.
  step pack_debs 120 "$root/scripts/gpu/pack_debs.sh" || {
    rm -rf "$root/.debs"
    sed -i 's/"step": "pack_debs", "status": "failed"/"step": "pack_debs", "status": "skipped"/' "$steps_file"
  }
fi
unpack_debs() {
  [ -d "$root/.debs" ] || { echo "no .debs/: run scripts/gpu/pack_debs.sh on the development machine" >&2; return 1; }
  rm -rf "$deps" && mkdir -p "$deps"
  for f in "$root"/.debs/*.deb; do dpkg -x "$f" "$deps" || return 1; done
  for h in yaml-cpp/yaml.h spdlog/spdlog.h CLI/CLI.hpp nlohmann/json.hpp gtest/gtest.h sqlite3.h turbojpeg.h png.h gloo/algorithm.h; do
    [ -e "$deps/usr/include/$h" ] || { echo "missing from .debs: $h" >&2; return 1; }
  done
  echo "unpacked $(ls "$root"/.debs/*.deb | wc -l) packages into $deps"
}
if [ $dry = 1 ] && [ ! -d "$root/.debs" ]; then
  echo "- deps: skipped (no .debs: the Debian registry was not reachable)" >>"$summary"
else
  step deps 5 unpack_debs
fi
export LD_LIBRARY_PATH="$deps/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

# ---- build ----
if [ $dry = 1 ]; then
  build=${DET_GPU_BUILD_DIR:-${DET_BUILD_DIR:-$root/build}}
  # The configure the host runs, against the unpacked packages only (no build: CI builds det).
  configure_dir=${TMPDIR:-/tmp}/det-gpu-configure-$key
  rm -rf "$configure_dir"
  step configure 60 cmake -S "$root" -B "$configure_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="${torch_prefix:+$torch_prefix;}$deps/usr"
  step build 30 cmake --build "$build" --target det-run det_gpu_tests bench_models
else
  build=${DET_GPU_BUILD_DIR:-/tmp/det-gpu-build-$key}
  step configure 60 cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDET_WITH_NCCL=ON \
    -DDET_USE_CCACHE=OFF -DCMAKE_PREFIX_PATH="$torch_prefix;$deps/usr" &&
    step build 240 cmake --build "$build" -j "$(nproc)" --target det-run det_gpu_tests bench_models
fi
export DET_PYTHON="$python" build

# ---- gpu tests (skip with their reason without a GPU) ----
step gpu_tests 60 "$build/tests/det_gpu_tests" --gtest_output="json:$OUT/gpu_tests.json"
if [ -f "$OUT/gpu_tests.json" ]; then
  "$python" - "$OUT/gpu_tests.json" >>"$summary" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for s in r.get("testsuites", []):
    for t in s.get("testsuite", []):
        status = "failed" if t.get("failures") else ("skipped" if t.get("result") == "SKIPPED" else "passed")
        print(f"  - {s['name']}.{t['name']}: {status} ({t.get('time', '?')})")
EOF
fi

# ---- training on the GPU (tiny on the CPU in dry mode) ----
runs="$OUT/runs"
export runs
train() {  # NAME CONFIG [--config k=v ...]
  local name=$1 cfg=$2
  shift 2
  "$build/det-run" "$cfg" --no-progress --config "checkpoint_storage.host_path=$runs/$name" "$@"
}
if [ -n "${DET_DATA_DIR:-}" ]; then
  if [ $dry = 1 ]; then
    step mnist 60 train mnist configs/mnist/const.yaml --test
  else
    step mnist 90 train mnist configs/mnist/const.yaml
    step shiftvit_mnist 60 train shiftvit_mnist configs/shiftvit/const_mnist.yaml \
      --config searcher.max_length.batches=400 --config min_validation_period.batches=400
    step shiftvit_cifar10 60 train shiftvit_cifar10 configs/shiftvit/const_cifar10.yaml \
      --config searcher.max_length.batches=400 --config min_validation_period.batches=400
  fi
else
  echo "- training: skipped (no DET_DATA_DIR with MNIST and CIFAR-10)" >>"$summary"
fi

# ---- ViT-B/16 training throughput, bf16: det, PyTorch eager, torch.compile ----
bench="$OUT/vit_b16.jsonl"
: >"$bench"
export bench
vit_bench() {  # BATCH ITERS WARMUP DEVICE PRECISION
  "$build/bench_models" vit_b16 "$1" "$2" "$3" "$4" "$5" >>"$bench" || return 1
  if "$python" -c 'import torch' 2>/dev/null; then
    "$python" scripts/bench/models_pytorch.py vit_b16 "$1" "$2" "$3" "$4" "$5" eager >>"$bench"
  else
    echo "no PyTorch in $python: the PyTorch side is left out (set DET_PYTHON)"
  fi
}
vit_compile() {
  "$python" scripts/bench/models_pytorch.py vit_b16 "$1" "$2" "$3" "$4" bf16 compile >>"$bench"
}
if [ $dry = 1 ]; then
  # One FP32 step at batch 2: bf16 on a CPU without bf16 instructions is emulated and slow.
  step vit_b16_bs2 60 vit_bench 2 1 0 cpu fp32
else
  for b in 64 128 256; do step "vit_b16_bs$b" 25 vit_bench "$b" 20 5 cuda bf16; done
  for b in 64 128 256; do step "vit_b16_compile_bs$b" 70 vit_compile "$b" 20 5 cuda; done
fi
if [ -s "$bench" ]; then
  "$python" - "$bench" >>"$summary" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n| ViT-B/16 | device | precision | batch | train img/s | inference img/s |")
print("|---|---|---|---|---|---|")
for r in rows:
    print(f"| {r['impl']} | {r['device']} | {r['precision']} | {r['batch']} | {r['train_images_per_second']:.1f} | {r['infer_images_per_second']:.1f} |")
EOF
fi

# ---- the record ----
"$python" - "$OUT" <<'EOF'
import json, os, sys
out = sys.argv[1]
steps = [json.loads(l) for l in open(os.path.join(out, "steps.jsonl")) if l.strip()]
bench = [json.loads(l) for l in open(os.path.join(out, "vit_b16.jsonl")) if l.strip()] if os.path.exists(os.path.join(out, "vit_b16.jsonl")) else []
runs = {}
for root, _, files in os.walk(os.path.join(out, "runs")):
    if "metrics.jsonl" in files:
        lines = [json.loads(l) for l in open(os.path.join(root, "metrics.jsonl")) if l.strip()]
        val = [l for l in lines if l.get("kind") == "validation"]
        train = [l for l in lines if l.get("kind") == "training"]
        runs[os.path.relpath(root, out)] = {"validations": val[-3:], "last_training": train[-1] if train else None}
env = json.load(open(os.path.join(out, "environment.json")))
json.dump({"environment": env, "steps": steps, "vit_b16": bench, "runs": runs},
          open(os.path.join(out, "check.json"), "w"), indent=1)
EOF
failed=$(grep -c '"status": "\(failed\|timeout\)"' "$steps_file")
echo "- finished in $(elapsed)s: $failed step(s) failed" >>"$summary"
cat "$summary"
((failed == 0))
