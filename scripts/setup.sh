#!/usr/bin/env bash
# Installs what det needs on Debian 12 (if missing), configures and builds incrementally.
# Usage: scripts/setup.sh [cmake targets...]      (default: everything)
# Environment:
#   DET_TORCH        which LibTorch (docs/gpu.md): auto (the default: pypi when the CUDA
#                    toolkit's nvcc is there, else debian), debian (libtorch-dev 1.13, CPU), pypi
#                    (PyPI's torch wheel with CUDA and NCCL, in .venv/), or the path of a LibTorch
#                    of your own (its prefix or the directory holding TorchConfig.cmake)
#   DET_TORCH_PIP    the pip requirement for pypi (default: torch==2.11.0, the GPU host's line)
#   DET_BUILD_DIR    build directory (default: build)
#   DET_BUILD_TYPE   CMake build type (default: Release)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DET_BUILD_DIR:-$root/build}

torch=${DET_TORCH:-auto}
if [ "$torch" = auto ]; then
  if command -v nvcc >/dev/null 2>&1 || [ -x /usr/local/cuda/bin/nvcc ]; then torch=pypi; else torch=debian; fi
fi

packages=(build-essential cmake ninja-build ccache pkg-config
          libtorch-dev libgloo-dev libyaml-cpp-dev libcli11-dev libspdlog-dev nlohmann-json3-dev libgtest-dev
          zlib1g-dev libsqlite3-dev libjpeg62-turbo-dev libpng-dev libopenblas0-pthread
          python3-plotly doxygen clang-format python3-venv)
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

# The LibTorch to build against: a CMake prefix (empty: Debian's, found by default).
prefix=""
case "$torch" in
  debian) ;;
  pypi)
    venv="$root/.venv"
    spec=${DET_TORCH_PIP:-torch==2.11.0}
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    want=${spec#torch==}
    have=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null || true)
    if [ "${have%%+*}" != "$want" ]; then
      echo "det setup: installing $spec (LibTorch with CUDA and NCCL) into $venv (several GB)" >&2
      "$venv/bin/pip" install -q --disable-pip-version-check "$spec"
    fi
    prefix=$(echo "$venv"/lib/python3*/site-packages/torch/share/cmake)
    ;;
  *)
    [ -e "$torch" ] || { echo "det setup: DET_TORCH=$torch: no such LibTorch (debian, pypi, or a path)" >&2; exit 2; }
    prefix=$(cd "$torch" && pwd)
    ;;
esac
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE="${DET_BUILD_TYPE:-Release}")
if [ -n "$prefix" ]; then
  cmake_args+=(-DCMAKE_PREFIX_PATH="$prefix")
  [ -d /usr/local/cuda ] && cmake_args+=(-DCUDAToolkit_ROOT=/usr/local/cuda)
fi
# A build directory belongs to one LibTorch: switching lines starts its cache afresh.
stamp="$build/det-torch.txt"
if [ -f "$build/CMakeCache.txt" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" != "$torch $prefix" ]; then
  echo "det setup: $build was configured for another LibTorch; reconfiguring for $torch" >&2
  rm -f "$build/CMakeCache.txt"
fi
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root" -B "$build" "${cmake_args[@]}" >/dev/null
fi
[ -f "$stamp" ] || echo "$torch $prefix" >"$stamp"  # a build configured before the stamp: adopted
jobs=$(nproc)
# LibTorch translation units need ~1.5 GB each: keep parallel jobs within memory.
mem_gb=$(awk '/MemTotal/ {print int($2/1024/1024)}' /proc/meminfo)
(( jobs > mem_gb / 2 )) && jobs=$(( mem_gb / 2 > 0 ? mem_gb / 2 : 1 ))
cmake --build "$build" -j "$jobs" ${1:+--target "$@"}
