#!/usr/bin/env bash
# The search's status line on a terminal (a pseudo-terminal from script(1)): drawn in place,
# the workers' own log lines kept off the terminal (in their trial.log), the search's end
# logged.   progress_test.sh PROBE_EXE SOURCE_DIR WORK_DIR
set -uo pipefail
probe=$1 src=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails+1)); }
cmd=$(printf '%q ' "$probe" "$src/tests/experiment/runner_probe.yaml" --config "checkpoint_storage.host_path=$work/runs")
out=$(DET_PROBE_SLEEP_MS=20 script -qefc "$cmd" /dev/null) || fail "the experiment failed: $(tail -5 <<<"$out")"
grep -q $'\r\e\\[Ksearch: [0-9]*/8 trials done, [0-9]* running' <<<"$out" || fail "no status line drawn in place"
grep -qE 'search: [0-9]+/8 trials done, 0 running, [0-9]+ paused, [0-9]+ failed \| best validation_loss [0-9.e-]+ \(trial [0-9]+\)' <<<"$out" ||
  fail "the search's end is not logged"
grep -q '\[train\] batch' <<<"$out" && fail "a worker's info lines reached the terminal"
run=$(ls -d "$work"/runs/probe-* | head -1)
grep -q '\[train\] batch' "$run"/trial-1/trial.log || fail "trial-1/trial.log lacks the worker's lines"
[ "$fails" = 0 ] && echo "progress: the status line on a terminal, workers' lines in their logs"
exit "$fails"
