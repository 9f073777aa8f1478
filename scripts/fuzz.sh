#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) in build-fuzz/ and runs each for the given
# number of seconds (default 60): scripts/fuzz.sh [seconds-per-target] [target...]
# Targets: config idx cifar image safetensors (tests/fuzz/<target>_fuzz.cpp).
# Each run starts from the seeds in tests/fuzz/corpus/<target>/ and keeps the new interesting
# inputs it finds in build-fuzz/corpus/<target>/ (local, not committed). A crash, leak, timeout or
# out-of-memory input is written to tests/fuzz/crashes/<target>/; once the bug is fixed, move the
# input into tests/fuzz/corpus/<target>/ so the `fuzz.<target>` ctest keeps it fixed.
# Needs clang and libFuzzer (Debian: apt-get install -y clang libclang-rt-14-dev).
# DET_FUZZ_BUILD_DIR overrides the build directory, DET_BUILD_JOBS the build parallelism; extra
# libFuzzer flags go in DET_FUZZ_FLAGS.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(config idx cifar image safetensors checkpoint_metadata worker_protocol
                                  torch_archive)
build=${DET_FUZZ_BUILD_DIR:-$root/build-fuzz}
cxx=${CXX_FUZZ:-clang++}

if ! command -v "$cxx" >/dev/null; then
  echo "fuzz.sh: $cxx not found; install clang and libclang-rt-14-dev" >&2
  exit 2
fi
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
printf '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n' > "$probe/p.cpp"
if ! "$cxx" -fsanitize=fuzzer,address,undefined "$probe/p.cpp" -o "$probe/p" 2>"$probe/err"; then
  echo "fuzz.sh: $cxx cannot build a libFuzzer binary (install libclang-rt-14-dev):" >&2
  cat "$probe/err" >&2
  exit 2
fi

mkdir -p "$build"
echo '*' > "$build/.gitignore"   # the build and the local corpus stay out of git
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  -DDET_BUILD_FUZZERS=ON -DDET_USE_PCH=OFF -DDET_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "${DET_BUILD_JOBS:-$(nproc)}" --target "${targets[@]/%/_fuzz}"

summary=()
for t in "${targets[@]}"; do
  corpus="$build/corpus/$t"
  crashes="$root/tests/fuzz/crashes/$t"
  mkdir -p "$corpus" "$crashes"
  log="$build/fuzz-$t.log"
  echo "== $t: ${seconds}s (log: $log)"
  set +e
  # -timeout: an input taking over 10 s is a finding; -rss_limit_mb: so is one needing 2 GB.
  # shellcheck disable=SC2086
  "$build/tests/fuzz/${t}_fuzz" "$corpus" "$root/tests/fuzz/corpus/$t" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$crashes/" ${DET_FUZZ_FLAGS:-} >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  found=$(find "$crashes" -type f | wc -l)
  size=$(find "$corpus" -type f | wc -l)
  summary+=("$(printf '%-12s %6ss %12s execs %6s local corpus files %3s crash inputs (exit %s)' \
    "$t" "$seconds" "${execs:-?}" "$size" "$found" "$rc")")
  [ "$rc" -ne 0 ] && tail -40 "$log"
done
echo
printf '%s\n' "${summary[@]}"
# Crash inputs not yet fixed and moved into the corpus fail the script.
! find "$root/tests/fuzz/crashes" -type f | grep -q .
