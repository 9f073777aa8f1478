#!/usr/bin/env bash
# End-to-end checks of data-parallel det-run: resources.slots_per_trial 2 re-runs itself as two
# ranks; det-launch starts ranks itself; a wrong rank count and a failing rank are one-line errors.
# Uses the example user executable (no dataset needed).
# Usage: dist_cli_test.sh DET_LAUNCH MY_TRAINER SOURCE_DIR WORK_DIR
set -uo pipefail
det_launch=$1 my_trainer=$2 src=$3 work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fails=0 passes=0
check() {  # check NAME EXPECTED_RC PATTERN -- command...
  local name=$1 want_rc=$2 pattern=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" != "$want_rc" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: rc=$rc (want $want_rc), output:"; echo "$out" | tail -8; fails=$((fails+1))
  else
    passes=$((passes+1))
  fi
}
cfg=$src/configs/example/linear.yaml
store="--config checkpoint_storage.host_path=$work/runs"
short="--config searcher.max_length.epochs=2"

# slots_per_trial 2 without a launcher: det-run launches its two ranks itself.
check relaunch 0 "data-parallel on 2 ranks \(gloo\)" -- "$my_trainer" "$cfg" --no-progress $store $short \
  --config resources.slots_per_trial=2
run=$(ls -d "$work"/runs/linear_regression-* | head -1)
n=$(grep -c '"kind":"validation"' "$run/trial-1/metrics.jsonl")
if [ "$n" = 2 ]; then passes=$((passes+1)); else echo "FAIL metrics: $n validation lines, want 2 (one writer)"; fails=$((fails+1)); fi
# Under det-launch explicitly.
check det-launch 0 "data-parallel on 2 ranks" -- "$det_launch" --nproc-per-node 2 -- "$my_trainer" "$cfg" --no-progress \
  $store $short --config resources.slots_per_trial=2
# A launcher's rank count must match the config.
check mismatch 2 "config error: .*slots_per_trial is 1 but the launcher \(torchrun\) started 2 ranks" -- \
  "$det_launch" --nproc-per-node 2 -- "$my_trainer" "$cfg" --no-progress $store $short
# Resume a two-rank run from the chief's checkpoint.
ckpt=$(ls -d "$run"/trial-1/checkpoints/*/ | head -1)
check resume 0 "already trained" -- "$my_trainer" "$cfg" --no-progress $store $short \
  --config resources.slots_per_trial=2 --resume "$ckpt"
# A command that fails on one rank: the launcher names it.
check failing-rank 3 "det-launch: rank 1 \(local rank 1, pid [0-9]+\) exited with status 3; stopping the other 1 rank" -- \
  "$det_launch" --nproc-per-node 2 --kill-grace 1 -- sh -c 'if [ "$RANK" = 1 ]; then exit 3; fi; exec sleep 60'
check no-command 2 "no command given" -- "$det_launch" --nproc-per-node 2
# A rendezvous secret others can read is refused, its mode in octal (issue 23 item 10: it said
# "mode 420 octal" for 0644); a FIFO in its place is refused without blocking. The secret guards
# a TCP rendezvous (det-launch on one node uses a private file instead), so two ranks of mpirun.
secret_check() {  # secret_check NAME PATTERN: mpirun's ranks exit non-zero with PATTERN
  local out rc
  out=$(timeout 120 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 \
        -x HOME="$work/home" -x DET_RENDEZVOUS_TIMEOUT=20 "$my_trainer" "$cfg" --no-progress $store \
        $short --config resources.slots_per_trial=2 2>&1); rc=$?
  if [ "$rc" != 0 ] && grep -qE -- "$2" <<<"$out"; then passes=$((passes+1)); else
    echo "FAIL $1: rc=$rc (want non-zero), output:"; echo "$out" | tail -8; fails=$((fails+1)); fi
}
if command -v mpirun >/dev/null; then
  mkdir -p "$work/home/.det" && printf 'secret\n' > "$work/home/.det/rendezvous-secret"
  chmod 644 "$work/home/.det/rendezvous-secret"
  ( unset DET_RENDEZVOUS_SECRET
    secret_check secret-mode "rendezvous-secret can be read by others \(mode 0644\): it guards the rendezvous; chmod 600 it"
    rm "$work/home/.det/rendezvous-secret" && mkfifo -m 600 "$work/home/.det/rendezvous-secret"
    secret_check secret-fifo "rendezvous-secret: not a regular file \(a FIFO\)"
    echo "$passes $fails" > "$work/secret.counts" )
  read -r passes fails < "$work/secret.counts"
else
  echo "SKIP secret-mode, secret-fifo: no mpirun (apt-get install openmpi-bin)"
fi
# Ctrl-C: the runner stops the trial's worker, whose launcher forwards it once to both ranks; they
# stop after the same batch, the chief checkpoints, and the exit status is 130 with the hint to
# resume the experiment.
log=$work/sigint.log
"$my_trainer" "$cfg" --no-progress --config checkpoint_storage.host_path="$work/sigint-runs" \
  --config searcher.max_length.epochs=1000000 --config resources.slots_per_trial=2 >"$log" 2>&1 &
pid=$!
for _ in $(seq 1200); do grep -q "data-parallel on 2 ranks" "$log" && break; sleep 0.05; done
kill -INT "$pid"; wait "$pid"; rc=$?
if [ "$rc" = 130 ] && grep -q "stopped; continue with: det-run --resume-experiment .*/sigint-runs/linear_regression-" "$log" &&
   [ "$(grep -c 'stopped at batch' "$log")" = 1 ]; then
  passes=$((passes+1))
else
  echo "FAIL sigint: rc=$rc (want 130), output:"; tail -8 "$log"; fails=$((fails+1))
fi

echo "dist cli: $passes passed, $fails failed"
[ "$fails" = 0 ]
