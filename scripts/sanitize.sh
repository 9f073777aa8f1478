#!/usr/bin/env bash
# Builds the project with AddressSanitizer and UndefinedBehaviorSanitizer in build-sanitize/ and
# runs the tests labelled `unit` under them: scripts/sanitize.sh [ctest arguments]
#   scripts/sanitize.sh                       every unit test (det_base_tests, det_tests, fuzz.*, e2e)
#   scripts/sanitize.sh -R 'Mnist|Safetensors' only some of them (-L/-LE replace `-L unit`)
# Any sanitizer report fails the test that triggered it (UBSan is not recoverable here).
# CXX_SANITIZE picks the compiler (g++ by default, clang++ works too); DET_SANITIZE_BUILD_DIR the
# build directory; DET_BUILD_JOBS the build parallelism. LibTorch itself is not instrumented:
# reports point into det's code or into what det hands LibTorch.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${DET_SANITIZE_BUILD_DIR:-$root/build-sanitize}
cxx=${CXX_SANITIZE:-g++}
flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

mkdir -p "$build"
echo '*' > "$build/.gitignore"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" -DDET_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "${DET_BUILD_JOBS:-$(nproc)}"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
if [ -f "$root/tests/sanitize/lsan.supp" ]; then
  export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0}
fi
if [ -z "${DET_DATA_DIR:-}" ] && [ -d "$root/../shared/data/mnist" ]; then
  export DET_DATA_DIR=$(cd "$root/../shared/data" && pwd)
fi
cd "$build"
case " $* " in *" -L "*|*" -LE "*) ;; *) set -- -L unit "$@" ;; esac
ctest --output-on-failure -j "$(nproc)" "$@"
