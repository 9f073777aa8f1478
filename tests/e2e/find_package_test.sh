#!/usr/bin/env bash
# Installs det from BUILD_DIR into a prefix, builds a separate project against it with
# find_package(det), and runs the resulting trainer. Usage: find_package_test.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -euo pipefail
build=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work"
cmake --install "$build" --prefix "$work/prefix" >/dev/null
cmake -S "$src/tests/e2e/consumer" -B "$work/build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer-trainer" "$src/configs/example/linear.yaml" --no-progress \
  --config checkpoint_storage.host_path="$work/runs" 2>&1 | grep -E "validation_loss=" | tail -1
echo "1 passed, 0 failed"
