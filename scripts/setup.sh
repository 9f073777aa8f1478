#!/usr/bin/env bash
# Installs what det needs on Debian 12 (if missing), configures and builds incrementally.
# Usage: scripts/setup.sh [cmake targets...]      (default: everything)
# Environment: DET_BUILD_DIR (default: build), DET_BUILD_TYPE (default: Release).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DET_BUILD_DIR:-$root/build}

packages=(build-essential cmake ninja-build ccache pkg-config
          libtorch-dev libgloo-dev libyaml-cpp-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev
          zlib1g-dev libsqlite3-dev libjpeg62-turbo-dev libpng-dev libopenblas0-pthread
          doxygen clang-format)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "det setup: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's LibTorch calls the system BLAS: make sure it is OpenBLAS, not the reference BLAS
# (about 28x slower on a 1024 sgemm).
openblas=/usr/lib/x86_64-linux-gnu/openblas-pthread
if [ -e "$openblas/libblas.so.3" ]; then
  current=$(update-alternatives --query libblas.so.3-x86_64-linux-gnu 2>/dev/null | sed -n 's/^Value: //p')
  if [ "$current" != "$openblas/libblas.so.3" ] && [ "$(id -u)" -eq 0 ]; then
    update-alternatives --set libblas.so.3-x86_64-linux-gnu "$openblas/libblas.so.3" >/dev/null
    update-alternatives --set liblapack.so.3-x86_64-linux-gnu "$openblas/liblapack.so.3" >/dev/null 2>&1 || true
  fi
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE="${DET_BUILD_TYPE:-Release}" >/dev/null
fi
jobs=$(nproc)
# LibTorch translation units need ~1.5 GB each: keep parallel jobs within memory.
mem_gb=$(awk '/MemTotal/ {print int($2/1024/1024)}' /proc/meminfo)
(( jobs > mem_gb / 2 )) && jobs=$(( mem_gb / 2 > 0 ? mem_gb / 2 : 1 ))
cmake --build "$build" -j "$jobs" ${1:+--target "$@"}
