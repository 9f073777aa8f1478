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
ver=$(sed -n 's/^project(det VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")
check version 0 "^det $ver\$" -- "$det_run" --version
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

# validate-config refuses what a run would refuse (issue 23): the trial's own settings through
# its check_config, the harness's hyperparameters, max_slots.
mnist_cfg=$src/configs/mnist/const.yaml
check vc-num-workers-big 2 "data.num_workers: expected an integer from 0 to 256, found 2147483648" -- \
  "$det_run" validate-config "$mnist_cfg" --config data.num_workers=2147483648
check vc-num-workers-neg 2 "data.num_workers: expected an integer from 0 to 256, found -5" -- \
  "$det_run" validate-config "$mnist_cfg" --config data.num_workers=-5
check vc-max-slots-0 2 "resources.max_slots: expected an integer from 1 to 65536, found '0'" -- \
  "$det_run" validate-config "$mnist_cfg" --config resources.max_slots=0
check vc-max-slots-below 2 "max_slots 1 is below slots_per_trial 2" -- \
  "$det_run" validate-config "$mnist_cfg" --config resources.max_slots=1 --config resources.slots_per_trial=2
for v in true '{a: 1}' 1e130 '!!binary aGVsbG8=' 0; do
  check "vc-gbs-$v" 2 "hyperparameters.global_batch_size.*expected a positive integer" -- \
    "$my_trainer" validate-config "$cfg" --config "hyperparameters.global_batch_size=$v"
done
check vc-nan 2 "hyperparameters.learning_rate: expected a finite number" -- \
  "$my_trainer" validate-config "$cfg" --config hyperparameters.learning_rate=.nan
check vc-nan-run 2 "hyperparameters.learning_rate: expected a finite number" -- \
  "$my_trainer" "$cfg" $store --config hyperparameters.learning_rate=.inf

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
# A hyperparameter the checkpoint does not have is refused, not silently overruled.
check resume-other-hp 2 "--resume .*: hyperparameters.learning_rate is 0.5 in the config but 0.1 in the checkpoint" -- "$my_trainer" "$cfg" $store --resume "$ckpt" --config hyperparameters.learning_rate=0.5 --no-progress
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
# Warm start (searcher.source_trial_id / source_checkpoint_uuid): a new trial from trial 1's
# latest checkpoint (batch 224), with its own learning rate and counters from 0.
check warm-start 0 "warm start from .* \(trial 1 at batch 224\)" -- "$my_trainer" "$cfg" $store --no-progress \
  --config searcher.source_trial_id=1 --config hyperparameters.learning_rate=0.05
uuid1=$(basename "$(ls -d "$run"/trial-1/checkpoints/*/ | tail -1)")
check warm-start-uuid 0 "warm start from .*$uuid1" -- "$my_trainer" "$cfg" $store --no-progress --test \
  --config searcher.source_checkpoint_uuid="$uuid1"
check warm-unknown-trial 2 "searcher.source_trial_id: no trial 999 in the experiment store" -- \
  "$my_trainer" "$cfg" $store --config searcher.source_trial_id=999
check warm-unknown-uuid 2 "searcher.source_checkpoint_uuid: no checkpoint 'nope'" -- \
  "$my_trainer" "$cfg" $store --config searcher.source_checkpoint_uuid=nope
check warm-both 2 "both set; give one" -- "$my_trainer" "$cfg" $store \
  --config searcher.source_checkpoint_uuid="$uuid1" --config searcher.source_trial_id=1
# fork: a new experiment from experiment 1's resolved config, with a change on top.
check fork 0 "forking experiment 1 \(linear_regression\) from .*config.yaml with --config changes" -- \
  "$my_trainer" fork 1 --store "$work/runs" --no-progress --config hyperparameters.learning_rate=0.05
forked=$(ls -d "$work"/runs/linear_regression-* | tail -1)
grep -A2 "learning_rate:" "$forked/config.yaml" | grep -q "val: 0.05" || { echo "FAIL fork: $forked/config.yaml lacks the change"; fails=$((fails+1)); }
check fork-unknown 1 "no experiment 99" -- "$my_trainer" fork 99 --store "$work/runs"
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
uuid=$(basename "$ckpt")
mkdir -p "$work/broken" && cp -r "$ckpt" "$work/broken/$uuid"
truncate -s 100 "$work/broken/$uuid/state.pt"
check corrupt-ckpt 1 "state.pt: truncated or altered" -- "$my_trainer" "$cfg" $store --resume "$work/broken/$uuid"
check missing-ckpt 1 "no such checkpoint directory" -- "$my_trainer" "$cfg" $store --resume "$work/nothing"

# Hostile checkpoints whose files pass det's size and CRC check (issue 23): each is one line and
# exit 1, never a crash (SIGSEGV is 139) or a run on garbage. tests/e2e/craft_checkpoint.py
# makes them from the good one.
# craft NAME MODE [ARGS...]: a copy of the checkpoint in a run directory of its own
# ($work/NAME/trial-1/checkpoints/<uuid>: what a resume writes stays there), edited.
copy_of() { echo "$work/$1/trial-1/checkpoints/$uuid"; }
craft() {
  local name=$1; shift
  rm -rf "${work:?}/$name" && mkdir -p "$(dirname "$(copy_of "$name")")" && cp -r "$ckpt" "$(copy_of "$name")"
  python3 "$src/tests/e2e/craft_checkpoint.py" "$1" "$(copy_of "$name")" "${@:2}"
}
resume_from() {  # a run long enough for the checkpoint (224 batches)
  timeout 120 "$my_trainer" "$cfg" $store --resume "$(copy_of "$1")" --no-progress --config searcher.max_length.epochs=8
}
craft cut cut-record
check ckpt-cut-record 1 "state.pt: record '[^']*/data/[0-9]+' holds [0-9]+ bytes but its storage \(torch.[A-Za-z]+Storage, [0-9]+ elements\) needs [0-9]+; the checkpoint is corrupt or was edited: resume from another one" -- resume_from cut
craft huge huge-string
check ckpt-huge-string 1 "state.pt: pickle '[^']*data.pkl' has a BINUNICODE that claims 2147483648 bytes but only [0-9]+ remain" -- resume_from huge
craft uuid meta uuid='"0badc0de-0000-4000-8000-000000000000"'
check ckpt-uuid 1 "field 'uuid' is '0badc0de-0000-4000-8000-000000000000' but the directory is named '$uuid'" -- resume_from uuid
craft nolr meta hparams.learning_rate=DELETE
check ckpt-missing-hparam 2 "--resume .*: hyperparameters.learning_rate is in the config but not in the checkpoint; --resume continues a trial with its own hyperparameters" -- resume_from nolr
craft cb meta 'callbacks={"ghost": {"n": 1}}'
check ckpt-unknown-callback 1 "holds the state of callback 'ghost', which trial 'linear_regression' does not have \(its callbacks: none\)" -- resume_from cb
craft params meta models.0.parameters=3
check ckpt-param-count 1 "model 0 \('.*'\) was saved with 3 parameter elements, the trial's has 2" -- resume_from params
craft far meta trial_state.batches_trained=1000000000000000 trial_state.last_checkpoint=1000000000000000 data.batches_trained=1000000000000000
check ckpt-batches-past-length 1 "the checkpoint has trained 1000000000000000 batches, past this run's 256 \(searcher.max_length\)" -- resume_from far
craft edited meta trial_state.batches_trained=230
check ckpt-batches-edited 1 "trial_state.batches_trained is 230 but the checkpoint was written at batch 224" -- resume_from edited
craft fifo meta format_version=3
rm "$(copy_of fifo)/metadata.json" && mkfifo "$(copy_of fifo)/metadata.json"
check ckpt-fifo-metadata 1 "metadata.json: not a regular file \(a FIFO\)" -- resume_from fifo

# Messages escape what they quote (issue 23 item 10): a config whose name holds a newline and an
# ESC is named whole on one line, the control characters written out.
nl_cfg="$work/bad
name"$'\e'"[31m.yaml"
printf 'name: x\nentrypoint: linear_regression\nsearcher: {name: single, metric: m, max_length: 0}\n' > "$nl_cfg"
check escaped-name 2 'bad\\nname\\x1b\[31m\.yaml:3:.*max_length' -- "$my_trainer" validate-config "$nl_cfg"
[ "$(lines "$my_trainer" validate-config "$nl_cfg")" = 1 ] || { echo "FAIL escaped-name: not one line"; fails=$((fails+1)); }
"$my_trainer" validate-config "$nl_cfg" 2>&1 | grep -q $'\e' && { echo "FAIL escaped-name: a raw ESC reached the terminal"; fails=$((fails+1)); }

# preview-search: brackets and rungs, and a simulation against predefined trials.
check preview 0 "Bracket 1: 3 rungs, 12 trials" -- "$det_run" preview-search "$src/configs/mnist/adaptive.yaml"
printf '{"trials": [{"metric": 0.5}, {"metric": 0.3, "early_exit_at": 0}]}' > trials.json
check simulate 0 '"early_exit": true' -- "$det_run" preview-search "$src/configs/mnist/dist_random.yaml" --simulate trials.json
printf '{"trials": [{"metric": 0.5}]}' > short.json
check simulate-short 2 "short.json: the searcher creates more than the 1 trials defined" -- \
  "$det_run" preview-search "$src/configs/mnist/dist_random.yaml" --simulate short.json

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
