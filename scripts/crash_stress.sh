#!/usr/bin/env bash
# Kills the experiment runner (kill -9) at random moments of a search and resumes it, N times,
# checking each time that the experiment ends as an uninterrupted run does and that
# experiment.json, the store, metrics.jsonl and the checkpoints on disk agree. Prints
# "crash stress: N round(s), K kill(s) of the runner, M of N identical to the straight run".
#   scripts/crash_stress.sh [N=20]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/setup.sh" det_runner_tests >&2
build=${DET_BUILD_DIR:-$root/build}
DET_STRESS_ROUNDS=${1:-20} "$build/tests/det_runner_tests" --gtest_filter=Runner.RandomKillStress
