#!/usr/bin/env bash
# Scheduling overhead of a search: a shortened configs/mnist/adaptive.yaml (MAX_TRIALS trials,
# up to MAX_LENGTH batches, one trial at a time) under the local scheduler and under Slurm (a
# one-machine cluster started here by tests/cluster/slurm_cluster.sh; needs root and slurm-wlm),
# ROUNDS rounds interleaved. For each run:
#   wall      the experiment's wall time (det.log, first line to last)
#   work      the sum over every worker launch of its process's life (trial.log: "launch K on
#             HOST (... started S s ago)" back to the exec, to "launch K ends"), i.e. the trials'
#             own work: start-up, data, training, validation, checkpoints
#   overhead  wall / work - 1: what scheduling adds (decisions, sbatch, queueing, squeue polling,
#             the worker channel)
#   promote   for every launch that resumes a paused trial: from the runner's launch line
#             (det.log "... started: train to L from checkpoint") to that worker's first batch
#             (trial.log "batch B: the first of this process"), median
# Both schedulers give the worker 2 CPUs (Slurm: --cpus-per-task=2).
#   scripts/bench/scheduler.sh [ROUNDS=2] [MAX_TRIALS=6] [MAX_LENGTH=256]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rounds=${1:-2}
trials=${2:-6}
length=${3:-256}
"$root/scripts/setup.sh" det-run >&2
build=${DET_BUILD_DIR:-$root/build}
export DET_DATA_DIR=${DET_DATA_DIR:-$root/../shared/data}
tmp=$(mktemp -d)
cluster_dir=$tmp/slurm-cluster
trap 'bash "$root/tests/cluster/slurm_cluster.sh" stop "$cluster_dir" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
bash "$root/tests/cluster/slurm_cluster.sh" start "$cluster_dir" >&2
set -a; . "$cluster_dir/env"; set +a
cluster() { nsenter --net="/run/netns/$DET_SLURM_NETNS" -- "$@"; }

run() {  # run SCHEDULER ROUND
  local out=$tmp/$1-$2
  cluster "$build/det-run" "$root/configs/mnist/adaptive.yaml" --no-progress --scheduler "$1" \
    --config searcher.max_trials="$trials" --config searcher.max_length.batches="$length" \
    --config searcher.max_concurrent_trials=1 --config reproducibility.experiment_seed=3 \
    --config 'slurm.sbatch_args=[--cpus-per-task=2]' \
    --config checkpoint_storage.host_path="$out" >"$out.log" 2>&1
  /usr/bin/python3 - "$1" "$(ls -d "$out"/*/ | head -1)" <<'PY'
import glob, os, re, statistics, sys
from datetime import datetime
name, run = sys.argv[1], sys.argv[2]
def t(line):
    return datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S.%f").timestamp()
log = [l for l in open(os.path.join(run, "det.log")) if l.startswith("[")]
wall = t(log[-1]) - t(log[0])
work, first_batch, launches = 0.0, {}, 0
for path in glob.glob(os.path.join(run, "trial-*", "trial.log")):
    trial = int(path.split("trial-")[-1].split("/")[0])
    start = {}
    for l in open(path):
        if not l.startswith("["): continue
        m = re.search(r"trial \d+: launch (\d+) on .*started ([0-9.]+) s ago", l)
        if m: start[int(m.group(1))] = t(l) - float(m.group(2)); launches += 1
        m = re.search(r"trial \d+: launch (\d+) ends", l)
        if m and int(m.group(1)) in start: work += t(l) - start[int(m.group(1))]
        m = re.search(r"\[train\] batch \d+: the first of this process", l)
        if m and start: first_batch[(trial, max(start))] = t(l)
promote = []
launch_of = {}
for l in log:
    m = re.search(r"trial (\d+): (?:worker|Slurm job) \d+ started: train to \d+ batches from checkpoint", l)
    if m:
        trial = int(m.group(1))
        launch_of[trial] = launch_of.get(trial, 1) + 1
        fb = first_batch.get((trial, launch_of[trial]))
        if fb: promote.append(fb - t(l))
    elif re.search(r"trial (\d+): (?:worker|Slurm job) \d+ started", l):
        trial = int(re.search(r"trial (\d+)", l).group(1))
        launch_of.setdefault(trial, 1)
med = statistics.median(promote) if promote else float("nan")
print(f"{name:6s} launches {launches:3d}  wall {wall:7.1f} s  work {work:7.1f} s  "
      f"overhead {100 * (wall / work - 1):5.1f}%  promotion->first batch {med:5.2f} s (median of {len(promote)})")
PY
}
for r in $(seq "$rounds"); do
  run local "$r"
  run slurm "$r"
done
