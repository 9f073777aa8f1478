#!/usr/bin/env bash
# End-to-end checks of the det-run command line: exit codes, one-line errors, run directories,
# list-trials, resume. Uses the example user executable (no dataset needed).
# Usage: cli_test.sh DET_RUN MY_TRAINER SOURCE_DIR WORK_DIR
set -uo pipefail
det_run=$1 my_trainer=$2 src=$3 work=$4
rm -rf "$work" && mkdir -p "$work" && cd "$work"
fails=0 passes=0
check() {  # check NAME EXPECTED_RC PATTERN -- command...
  local name=$1 want_rc=$2 pattern=$3; shift 4
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" != "$want_rc" ] || ! grep -qE -- "$pattern" <<<"$out"; then
    echo "FAIL $name: rc=$rc (want $want_rc), output:"; echo "$out" | tail -5; fails=$((fails+1))
  else
    passes=$((passes+1))
  fi
}
lines() { "$@" 2>&1 | wc -l; }

cfg=$src/configs/example/linear.yaml
store="--config checkpoint_storage.host_path=$work/runs"

check validate-ok 0 "valid \(searcher single, entrypoint linear_regression\)" -- "$my_trainer" validate-config "$cfg"
check validate-mnist 0 "valid" -- "$det_run" validate-config "$src/configs/mnist/const.yaml"
check no-args 2 "no config given" -- "$det_run"
check missing-file 2 "no such config file" -- "$det_run" nope.yaml
check bad-override 2 "--config searcher.max_length.epochs=x: searcher.max_length.epochs: expected an integer from 1 to 1000000000000, found 'x'" -- \
  "$my_trainer" "$cfg" --config searcher.max_length.epochs=x
printf 'name: x\nentrypoint: linear_regresion\nsearcher: {name: single, metric: validation_loss, max_length: 5}\n' > typo.yaml
check unknown-trial 2 "did you mean 'linear_regression'" -- "$my_trainer" typo.yaml
printf 'name: x\nsearcher:\n  name: single\n  metric: m\n  max_length: 5\nmin_validaton_period: {batches: 1}\n' > badkey.yaml
check bad-key 2 "badkey.yaml:6:1: min_validaton_period: unknown key 'min_validaton_period', did you mean 'min_validation_period'\?" -- "$det_run" badkey.yaml
[ "$(lines "$det_run" badkey.yaml)" = 1 ] || { echo "FAIL bad-key: error is not one line"; fails=$((fails+1)); }
check unknown-flag 2 "" -- "$det_run" "$cfg" --no-such-flag
# Hostile files are one-line config errors, not crashes (issue 10 section 7).
printf 'name: x\ndata:\n  loop: &a [1, *a]\nsearcher: {name: single, metric: m, max_length: 5}\n' > alias.yaml
check self-alias 2 "alias.yaml:3:9: data.loop\[1\]: a YAML alias refers to a list or mapping that contains it" -- \
  "$det_run" validate-config alias.yaml

# A full run writes the run directory, experiment.json and checkpoints.
check train 0 "validation_loss=" -- "$my_trainer" "$cfg" $store --no-progress
run=$(ls -d "$work"/runs/linear_regression-* | head -1)
for f in config.yaml experiment.json det.log trial-1/metrics.jsonl; do
  [ -f "$run/$f" ] || { echo "FAIL run-dir: $f missing"; fails=$((fails+1)); }
done
grep -q '"state": "COMPLETED"' "$run/experiment.json" || { echo "FAIL experiment.json state"; fails=$((fails+1)); }
check list-trials 0 "COMPLETED +160 " -- "$my_trainer" list-trials "$run"
# The resolved config.yaml is itself a valid config.
check resolved-config 0 "valid" -- "$my_trainer" validate-config "$run/config.yaml"

# The runner's own resume: a finished experiment has nothing left; a wrong directory is one line.
check resume-exp-done 0 "already COMPLETED; nothing to do" -- "$my_trainer" --resume-experiment "$run"
check resume-exp-missing 2 "--resume-experiment .*nothing: not a run directory" -- "$my_trainer" --resume-experiment "$work/nothing"
check resume-exp-test 2 "cannot be combined" -- "$my_trainer" --resume-experiment "$run" --test

# Resume from the checkpoint and train further.
ckpt=$(ls -d "$run"/trial-1/checkpoints/*/ | head -1)
check resume 0 "resumed from .* at batch 160" -- "$my_trainer" "$cfg" $store --resume "$ckpt" --config searcher.max_length.epochs=7 --no-progress
grep -q '"batches_trained": 224' "$run/experiment.json" || { echo "FAIL resume: batches_trained not 224"; fails=$((fails+1)); }

# The experiment store records the run (and the resumed part).
check experiments 0 "linear_regression +COMPLETED +single" -- "$my_trainer" experiments --store "$work/runs"
check describe 0 "trial 1 \(id 1\): COMPLETED, 224 batches" -- "$my_trainer" describe 1 --store "$work/runs/det.db"
check metrics-csv 0 "^validation,224,7.000," -- "$my_trainer" metrics 1 --kind validation --format csv --store "$work/runs"
check metrics-unknown 1 "no trial 99" -- "$my_trainer" metrics 99 --store "$work/runs"
check store-missing 2 "no experiment store at" -- "$my_trainer" experiments --store "$work/nowhere"
# A trial's log, and following one that has ended returns with it.
check logs 0 "trial 1 \[train\] batch" -- "$my_trainer" logs 1 --store "$work/runs"
check logs-follow-ended 0 "\[validation\]|\[train\]" -- timeout 20 "$my_trainer" logs 1 --follow --store "$work/runs"
check logs-unknown 1 "no trial 99" -- "$my_trainer" logs 99 --store "$work/runs"
# The report: one HTML file in the run directory by default, or where -o says.
check report 0 "report.html" -- "$my_trainer" report "$run"
[ -s "$run/report.html" ] || { echo "FAIL report: $run/report.html missing"; fails=$((fails+1)); }
check report-by-id 0 "^$work/r.html$" -- "$my_trainer" report 1 -o "$work/r.html" --store "$work/runs"
check report-bad 2 "not a run directory .* and not an experiment id" -- "$my_trainer" report "$work/nothing"
check report-no-exp 1 "no experiment 7" -- "$my_trainer" report 7 --store "$work/runs"
# TensorBoard files beside the metrics.
ls "$run"/trial-1/events.out.tfevents.* >/dev/null 2>&1 || { echo "FAIL tensorboard: no event file in trial-1"; fails=$((fails+1)); }

# A corrupt checkpoint is refused with one line, and a missing one too.
ckpt=$(ls -d "$run"/trial-1/checkpoints/*/ | head -1)
cp -r "$ckpt" "$work/broken"
truncate -s 100 "$work/broken/state.pt"
check corrupt-ckpt 1 "state.pt: truncated or altered" -- "$my_trainer" "$cfg" $store --resume "$work/broken"
check missing-ckpt 1 "no such checkpoint directory" -- "$my_trainer" "$cfg" $store --resume "$work/nothing"

# preview-search: brackets and rungs, and a simulation against predefined trials.
check preview 0 "Bracket 1: 3 rungs, 12 trials" -- "$det_run" preview-search "$src/configs/mnist/adaptive.yaml"
printf '{"trials": [{"metric": 0.5}, {"metric": 0.3, "early_exit_at": 0}]}' > trials.json
check simulate 0 '"early_exit": true' -- "$det_run" preview-search "$src/configs/mnist/dist_random.yaml" --simulate trials.json
printf '{"trials": [{"metric": 0.5}]}' > short.json
check simulate-short 2 "short.json: the searcher creates more than the 1 trials defined" -- \
  "$det_run" preview-search "$src/configs/mnist/dist_random.yaml" --simulate short.json

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
