#!/usr/bin/env bash
# A search whose trials are Slurm jobs, on the local Slurm cluster in DET_SLURM_DIR
# (tests/cluster/slurm_cluster.sh). Runs det-run as a client of that cluster (in its network
# namespace, as a login node would be).
#   same:    a shortened configs/mnist/adaptive.yaml under the local scheduler and under Slurm
#            (6 trials, one at a time, so the order results reach the searcher is fixed; one
#            trial is paused and promoted: its job ends, a new one resumes it) must give
#            the same trials, hyperparameters, searcher decisions (each launch's target, in
#            order) and metrics, number for number; the store holds every launch's job id and
#            node.
#   preempt: a trial's job cancelled by scancel while it trains checkpoints and is submitted
#            again without counting as a failure; its next job's worker killed with kill -9 (no
#            last word) counts one restart and the trial resumes from its latest checkpoint;
#            then a runner killed with kill -9 while a job
#            trains is started again with --resume-experiment, re-attaches to that job (no
#            second job for it), and the trial's reports equal an uninterrupted local run's.
#   ranks:   a trial of 2 ranks (configs/mnist/distributed.yaml) is one job of 2 tasks, srun
#            starting its ranks, and reports what the local scheduler's 2 ranks report.
# Usage: slurm_search_test.sh MODE DET_RUN SOURCE_DIR WORK_DIR   (DET_DATA_DIR: MNIST)
set -uo pipefail
mode=$1 det_run=$2 src=$3 work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work"
[ -f "${DET_DATA_DIR:-}/mnist/train-images-idx3-ubyte.gz" ] || { echo "SKIP: no MNIST under DET_DATA_DIR"; exit 77; }
[ -f "${DET_SLURM_DIR:-}/env" ] || { echo "SKIP: no local Slurm cluster (DET_SLURM_DIR)"; exit 77; }
set -a; . "$DET_SLURM_DIR/env"; set +a
cluster() { nsenter --net="/run/netns/$DET_SLURM_NETNS" -- "$@"; }  # a client of the cluster
fails=0 passes=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
pass() { passes=$((passes + 1)); }
# Bit for bit across schedulers: one intra-op thread everywhere (a Slurm job's worker would use
# its allocation's CPUs, the local one its share of the machine's), MKL's reproducible paths.
export DET_INTRA_OP_THREADS=1
unset MKL_CBWR

# The trials of a run directory: hparams, state, and every report without times and rates.
trials_of() {
  python3 - "$1" <<'PY'
import glob, json, os, sys
run = sys.argv[1]
exp = json.load(open(os.path.join(run, "experiment.json")))
for t in sorted(exp["trials"], key=lambda t: t["id"]):
    print("trial", t["id"], t["state"], json.dumps(t["hparams"], sort_keys=True))
    path = os.path.join(run, "trial-%d" % t["id"], "metrics.jsonl")
    for line in open(path) if os.path.exists(path) else []:
        r = json.loads(line)
        print(" ", r["kind"], r["batches"], json.dumps(r["metrics"], sort_keys=True))
PY
}
# The searcher's decisions: each launch's trial and target, in order.
decisions_of() { grep -oE "trial [0-9]+: (worker|Slurm job) [0-9]+ started: train to [0-9]+" "$1/det.log" | sed -E 's/(worker|Slurm job) [0-9]+ //'; }
# The store's launches of an experiment: trial launch scheduler job_id node state.
jobs_of() {
  python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
for row in db.execute("SELECT t.number, j.launch, j.scheduler, j.job_id, j.node, j.state, t.restarts "
                      "FROM jobs j JOIN trials t ON t.id = j.trial_id ORDER BY t.number, j.launch"):
    print(*row)
PY
}

if [ "$mode" = same ]; then
  args=(--no-progress --config searcher.max_trials=6 --config searcher.max_length.batches=48
        --config searcher.max_concurrent_trials=1 --config reproducibility.experiment_seed=3
        --config scheduling_unit=8)
  cfg=$src/configs/mnist/adaptive.yaml
  start=$(date +%s.%N)
  "$det_run" "$cfg" "${args[@]}" --scheduler local --config checkpoint_storage.host_path="$work/local" \
    >local.log 2>&1 || { fail "local: exited non-zero"; tail -5 local.log; }
  mid=$(date +%s.%N)
  cluster "$det_run" "$cfg" "${args[@]}" --scheduler slurm --config checkpoint_storage.host_path="$work/slurm" \
    >slurm.log 2>&1 || { fail "slurm: exited non-zero"; tail -8 slurm.log; }
  end=$(date +%s.%N)
  echo "wall: local $(echo "$mid - $start" | bc) s, slurm $(echo "$end - $mid" | bc) s"
  l=$(ls -d "$work"/local/*/ | head -1) s=$(ls -d "$work"/slurm/*/ | head -1)
  trials_of "$l" >local.trials; trials_of "$s" >slurm.trials
  decisions_of "$l" >local.decisions; decisions_of "$s" >slurm.decisions
  [ "$(grep -c "^trial" local.trials)" -ge 6 ] || fail "local: fewer than 6 trials"
  [ "$(wc -l <local.decisions)" -gt 4 ] || fail "local: no promotion (only $(wc -l <local.decisions) launches)"
  if cmp -s local.trials slurm.trials; then pass; else fail "trials differ:"; diff local.trials slurm.trials | head -8; fi
  if cmp -s local.decisions slurm.decisions; then pass; else fail "decisions differ:"; diff local.decisions slurm.decisions | head -8; fi
  jobs_of "$work/slurm/det.db" >slurm.jobs
  # Every launch is one Slurm job with a numeric id, ran on the cluster's node, and ended.
  if [ "$(wc -l <slurm.jobs)" = "$(wc -l <slurm.decisions)" ] &&
     ! awk '$3 != "slurm" || $4 !~ /^[0-9]+$/ || $5 != "node0" || $6 != "COMPLETED"' slurm.jobs | grep -q .; then
    pass
  else
    fail "the store's Slurm jobs:"; cat slurm.jobs
  fi
  grep -q "^1 1 local [0-9]* $(hostname) exited with status 0" <(jobs_of "$work/local/det.db") && pass ||
    { fail "the store's local launches:"; jobs_of "$work/local/det.db" | head -3; }
  echo "$passes passed, $fails failed"
  [ "$fails" = 0 ]; exit
fi

if [ "$mode" = preempt ]; then
  cfg=$src/configs/mnist/const.yaml
  args=(--no-progress --config searcher.max_length.batches=160 --config min_validation_period.batches=80
        --config min_checkpoint_period.batches=40 --config scheduling_unit=20
        --config reproducibility.experiment_seed=5)
  # The reference: one uninterrupted local run.
  "$det_run" "$cfg" "${args[@]}" --scheduler local --config checkpoint_storage.host_path="$work/ref" \
    >ref.log 2>&1 || { fail "reference: exited non-zero"; tail -5 ref.log; exit 1; }
  trials_of "$(ls -d "$work"/ref/*/ | head -1)" | sed 's/ COMPLETED / /' >ref.trials
  # reported N DIR: waits until trial 1 of DIR reported training at batch >= N (at most 120 s).
  reported() {
    for _ in $(seq 600); do
      local m
      m=$(ls "$2"/*/trial-1/metrics.jsonl 2>/dev/null | head -1)
      if [ -n "$m" ] && python3 -c "
import json,sys
b=[json.loads(l)['batches'] for l in open('$m') if '\"training\"' in l]
sys.exit(0 if b and max(b) >= $1 else 1)"; then return 0; fi
      sleep 0.2
    done
    return 1
  }
  # running_job DIR: the job of trial 1 that the store says runs (other tests share the cluster).
  running_job() {
    for _ in $(seq 100); do
      local j
      j=$(jobs_of "$1/det.db" 2>/dev/null | awk '$6 == "RUNNING" {print $4}' | tail -1)
      [ -n "$j" ] && { echo "$j"; return; }
      sleep 0.2
    done
  }

  # 1. scancel while it trains: the job checkpoints, is submitted again, the trial completes.
  cluster "$det_run" "$cfg" "${args[@]}" --scheduler slurm --config checkpoint_storage.host_path="$work/cancel" \
    >cancel.log 2>&1 &
  runner=$!
  if reported 60 "$work/cancel"; then
    job=$(running_job "$work/cancel")
    echo "cancelling job $job"
    cluster scancel "$job"
  else
    fail "cancel: the trial did not train"
  fi
  # Then the resubmitted job's worker dies without a word (kill -9): that one is a failure,
  # counted against max_restarts, and the trial resumes from its latest checkpoint.
  pid=
  for _ in $(seq 600); do
    pid=$(sed -n 's/.*trial 1: launch 2 on .* (pid \([0-9]*\)[,)].*/\1/p' "$work"/cancel/*/trial-1/trial.log 2>/dev/null | tail -1)
    [ -n "$pid" ] && grep -q "the first of this process" <(sed -n '/launch 2 on/,$p' "$work"/cancel/*/trial-1/trial.log) && break
    pid=; sleep 0.2
  done
  if [ -n "$pid" ]; then echo "killing worker $pid"; kill -9 "$pid"; else fail "cancel: launch 2 did not train"; fi
  wait $runner || { fail "cancel: det-run exited non-zero"; tail -8 cancel.log; }
  jobs_of "$work/cancel/det.db" >cancel.jobs
  cat cancel.jobs
  # Three launches: the first cancelled (its worker checkpointed: "stopped"), the second failed
  # (one restart counted), the third completed.
  if awk 'NR==1 && $2==1 && $6=="CANCELLED" {a=1} NR==2 && $2==2 && $6!="COMPLETED" {b=1}
          NR==3 && $2==3 && $6=="COMPLETED" && $7==1 {c=1} END {exit !(a && b && c && NR==3)}' cancel.jobs; then
    pass
  else
    fail "cancel: expected launches cancelled, failed, completed and 1 restart"
  fi
  grep -q "trial 1: the worker failed (its job ended as .*); restart 1 of 5 from .*checkpoints" \
    "$(ls -d "$work"/cancel/*/ | head -1)/det.log" && pass || fail "cancel: no restart from the checkpoint logged"
  grep -q "trial 1: job .* ended (stopped" "$(ls -d "$work"/cancel/*/ | head -1)/det.log" && pass ||
    fail "cancel: the cancelled worker did not checkpoint and stop"
  grep -q '"state": "COMPLETED"' "$(ls -d "$work"/cancel/*/ | head -1)/experiment.json" && pass ||
    fail "cancel: the experiment did not complete"

  # 2. kill -9 the runner while the job trains; resume re-attaches.
  # nsenter execs det-run: $! is the runner itself.
  nsenter --net="/run/netns/$DET_SLURM_NETNS" -- "$det_run" "$cfg" "${args[@]}" --scheduler slurm \
    --config checkpoint_storage.host_path="$work/kill" >kill.log 2>&1 &
  runner=$!
  if reported 40 "$work/kill"; then
    job=$(running_job "$work/kill")
    kill -9 $runner
    wait $runner 2>/dev/null
    [ -n "$job" ] && [ "$(cluster squeue --noheader --jobs="$job" --format=%T)" = RUNNING ] && pass ||
      fail "kill: the job ($job) died with its runner"
    sleep 2  # the job trains on, unobserved
    run_dir=$(ls -d "$work"/kill/*/ | head -1)
    cluster "$det_run" --resume-experiment "$run_dir" --no-progress >resume.log 2>&1 ||
      { fail "kill: the resumed runner exited non-zero"; tail -8 resume.log; }
    grep -q "trial 1: re-attached to its slurm job $job" "$run_dir/det.log" && pass ||
      fail "kill: the resumed runner did not re-attach to job $job"
    jobs_of "$work/kill/det.db" >kill.jobs
    cat kill.jobs
    [ "$(wc -l <kill.jobs)" = 1 ] && pass || fail "kill: the trial ran in more than one job"
    trials_of "$run_dir" | sed 's/ COMPLETED / /' >kill.trials
    if cmp -s ref.trials kill.trials; then pass; else fail "kill: reports differ from the uninterrupted run:"; diff ref.trials kill.trials | head -8; fi
  else
    fail "kill: the trial did not train"; kill $runner
  fi
  echo "$passes passed, $fails failed"
  [ "$fails" = 0 ]; exit
fi
if [ "$mode" = ranks ]; then
  # A trial of 2 ranks is one job of 2 tasks (srun inside it): the same reports as the local
  # scheduler's 2 ranks.
  cfg=$src/configs/mnist/distributed.yaml
  args=(--no-progress --config searcher.max_length.batches=30 --config min_validation_period.batches=30
        --config scheduling_unit=10 --config reproducibility.experiment_seed=7)
  "$det_run" "$cfg" "${args[@]}" --scheduler local --config checkpoint_storage.host_path="$work/local" \
    >local.log 2>&1 || { fail "local: exited non-zero"; tail -5 local.log; }
  cluster "$det_run" "$cfg" "${args[@]}" --scheduler slurm --config checkpoint_storage.host_path="$work/slurm" \
    >slurm.log 2>&1 || { fail "slurm: exited non-zero"; tail -8 slurm.log; }
  l=$(ls -d "$work"/local/*/ | head -1) s=$(ls -d "$work"/slurm/*/ | head -1)
  trials_of "$l" >local.trials; trials_of "$s" >slurm.trials
  grep -q "^  validation 30 " local.trials || fail "local: no validation at batch 30"
  if cmp -s local.trials slurm.trials; then pass; else fail "2 ranks: reports differ:"; diff local.trials slurm.trials | head -6; fi
  grep -q "2 rank(s)" "$s/trial-1/trial.log" && pass || fail "slurm: the worker did not run 2 ranks"
  jobs_of "$work/slurm/det.db" | grep -q "^1 1 slurm [0-9]* node0 COMPLETED" && pass ||
    { fail "slurm: the store's job:"; jobs_of "$work/slurm/det.db"; }
  echo "$passes passed, $fails failed"
  [ "$fails" = 0 ]; exit
fi
echo "unknown mode $mode"; exit 2
