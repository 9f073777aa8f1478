#!/usr/bin/env bash
# A hyperparameter search end to end against two Python tools: the MNIST adaptive search space
# of configs/mnist/adaptive.yaml (MAX_TRIALS=16 trials of up to MAX_LENGTH=937 batches of 64;
# learning_rate, n_filters1, n_filters2, dropout1, dropout2; validation_loss, smaller is better),
# two trials at a time on the same data, run by
#   det     det-run --slots 2, once for each searcher in DET_SEARCHERS (default adaptive_asha;
#           another name X adds --config searcher.name=X, e.g. DET_SEARCHERS="adaptive_asha bohb")
#   optuna  TPESampler(seed) + SuccessiveHalvingPruner(reduction_factor 4), n_jobs=2
#   ray     Ray Tune: random search (BasicVariantGenerator, seeded) + ASHAScheduler(reduction
#           factor 4), 1 CPU a trial on a 2-CPU local Ray
# (scripts/bench/search_peers.py: the same CNN, Adadelta, unshuffled data order and validation
# as det's MNIST trial, in Python PyTorch on .venv's torch; trials validate and report at det's
# adaptive ASHA rungs: 58, 234 and 937 batches), for each seed in SEEDS, the tools interleaved.
# Each run is measured as a whole process tree by proctree.py. search_summary.py then prints a
# markdown table: per tool and seed the best validation accuracy and loss, batches trained, the
# work the drawn trials cost (multiply-accumulates from each trial's filter counts), wall time, seconds
# per unit of that work, wall time to the first validation accuracy >= 98%, CPU time and peak
# memory (PSS of the tree); then the medians per tool and each tool's median wall time and
# seconds per unit of work over det adaptive_asha's.
#   scripts/bench/search.sh [SEEDS="1 2 3"]
# Environment:
#   MAX_TRIALS, MAX_LENGTH  shrink the search (a smoke run: MAX_TRIALS=4 MAX_LENGTH=40); det gets
#                           --config searcher.max_trials/max_length.batches, the peers the same
#                           numbers and the rungs det's adaptive ASHA derives from them
#   DET_SEARCHERS           det searchers to run (default adaptive_asha)
#   DET_CONFIG              more det-run overrides, space-separated key=value (e.g.
#                           "searcher.max_concurrent_trials=2": the searcher then creates trials
#                           as slots free up, which is when bohb's model can propose them)
#   PEERS                   peers to run (default "optuna ray"; empty for det only)
#   DET_BUILD_DIR           det build (default build-2x if there, else build); SKIP_BUILD=1 runs
#                           its det-run as it is instead of building it first
#   DET_DATA_DIR            holds mnist/ (default ../shared/data from the repository)
#   PEER_PYTHON             the peers' Python (default .venv/bin/python; optuna and ray[tune]
#                           are installed into it when missing)
#   OUT_DIR                 where every run is kept (default a new temporary directory); the
#                           table can be printed again with search_summary.py OUT_DIR/runs.jsonl
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$root/scripts/bench/lib.sh"
seeds=${1:-${SEEDS:-1 2 3}}
trials=${MAX_TRIALS:-16}
length=${MAX_LENGTH:-937}
searchers=${DET_SEARCHERS:-adaptive_asha}
peers=${PEERS-optuna ray}
if [ -z "${DET_BUILD_DIR:-}" ]; then
  DET_BUILD_DIR=$root/build
  [ -d "$root/build-2x" ] && DET_BUILD_DIR=$root/build-2x
fi
build=$(DET_BENCH_BUILDS=$DET_BUILD_DIR bench_builds)
[ "${SKIP_BUILD:-0}" = 1 ] || bench_setup "$build" det-run
export DET_DATA_DIR=${DET_DATA_DIR:-$root/../shared/data}
py=${PEER_PYTHON:-$root/.venv/bin/python}
if [ -n "$peers" ] && ! "$py" -c 'import optuna, ray.tune' 2>/dev/null; then
  echo "search: installing optuna and ray[tune] into $py" >&2
  "$py" -m pip install -q --disable-pip-version-check optuna 'ray[tune]'
fi
if [ -n "${OUT_DIR:-}" ]; then
  out=$(mkdir -p "$OUT_DIR" && cd "$OUT_DIR" && pwd)
else
  out=$(mktemp -d /tmp/det-search.XXXXXX)
fi
# Ray's session files (logs, sockets) go with the runs where the socket paths stay short.
[ ${#out} -gt 40 ] || export RAY_TMPDIR=${RAY_TMPDIR:-$out/ray}
manifest=$out/runs.jsonl
: >"$manifest"
echo "search: every run is kept in $out" >&2

measure() {  # TOOL SEED KIND RESULT COMMAND...: run COMMAND as a measured process tree
  local tool=$1 seed=$2 kind=$3 result=$4 m
  shift 4
  m=$(python3 "$root/scripts/bench/proctree.py" --label "$tool seed $seed" \
    --log "$out/$tool-$seed.log" -- "$@")
  printf '{"tool": "%s", "seed": %s, "kind": "%s", "result": "%s", "log": "%s", "proctree": %s}\n' \
    "$tool" "$seed" "$kind" "$result" "$out/$tool-$seed.log" "$m" >>"$manifest"
  echo "search: $tool seed $seed: $m" >&2
}

for seed in $seeds; do
  for s in $searchers; do
    dir=$out/det-$s-$seed  # det-run's cwd: it writes ./runs/<name>-<stamp>/
    mkdir -p "$dir"
    extra=()
    [ "$s" = adaptive_asha ] || extra=(--config "searcher.name=$s")
    for kv in ${DET_CONFIG:-}; do extra+=(--config "$kv"); done
    (cd "$dir" && measure "det-$s" "$seed" det "$dir" "$build/det-run" \
      "$root/configs/mnist/adaptive.yaml" --slots 2 --no-progress \
      --config reproducibility.experiment_seed="$seed" --config searcher.max_trials="$trials" \
      --config searcher.max_length.batches="$length" "${extra[@]}")
  done
  for p in $peers; do
    measure "$p" "$seed" peer "$out/$p-$seed.json" "$py" "$root/scripts/bench/search_peers.py" "$p" \
      --seed "$seed" --data "$DET_DATA_DIR" --out "$out/$p-$seed.json" \
      --max-trials "$trials" --max-length "$length"
  done
done
python3 "$root/scripts/bench/search_summary.py" "$manifest"
echo "search: runs, logs and the raw measurements (runs.jsonl) are in $out" >&2
