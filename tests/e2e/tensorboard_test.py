#!/usr/bin/env python3
"""det's TensorBoard files, read by TensorBoard itself (PyPI's tensorboard package).

Runs the probe experiment of tests/experiment/runner_probe.yaml (asynchronous successive halving,
8 trials) with a trial that crashes once (it restarts from its checkpoint) and a runner that is
killed mid-search and resumed with --resume-experiment, then checks:
  - every record's framing byte for byte against TensorBoard's own RecordWriter, and every
    Event and HParams message against protobuf's own encoder;
  - each trial's run as TensorBoard's Python loader (plugin_event_accumulator, --load_fast
    false) shows it: every metric of the store at every batch count, once (the restarts replayed
    steps; TensorBoard must show them once), with the store's values; learning rates and
    throughput as metrics.jsonl has them;
  - a real `tensorboard` server on 127.0.0.1 with its default loader (the Rust data server): the
    same scalars from its scalars plugin, and from its HParams plugin one session per trial with
    the trial's hyperparameters, status and searcher metric.

usage: tensorboard_test.py PROBE_EXE SOURCE_DIR WORK_DIR
"""
import glob
import io
import json
import math
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request

try:
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.backend.event_processing import plugin_event_accumulator as event_accumulator
    from tensorboard.compat.proto import event_pb2
    from tensorboard.util import tensor_util
    from tensorboard.plugins.hparams import plugin_data_pb2
    from tensorboard.summary.writer.record_writer import RecordWriter
except ImportError as e:
    sys.exit(f"FAIL: PyPI's tensorboard is not importable ({e}); scripts/test.sh installs it into "
             f".venv/ (or: .venv/bin/pip install tensorboard)")

probe, src, work = (os.path.abspath(a) for a in sys.argv[1:4])
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(args, env_extra, expect_rc):
    env = dict(os.environ, **env_extra)
    p = subprocess.run(args, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=600)
    if p.returncode != expect_rc:
        print(p.stdout[-4000:])
        sys.exit(f"FAIL: {' '.join(args)} exited {p.returncode}, expected {expect_rc}")
    return p.stdout


cfg = os.path.join(src, "tests/experiment/runner_probe.yaml")
base = [probe, cfg, "--no-progress", "--config", "checkpoint_storage.host_path=" + work + "/runs"]
markers = os.path.join(work, "markers")
os.makedirs(markers)
# Trial 2 dies at batch 11 (restarts from its checkpoint); the runner dies at its 6th decision.
run(base, {"DET_PROBE_CRASH": "2:11", "DET_PROBE_MARKERS": markers,
           "DET_TEST_RUNNER_CRASH": "decision:6"}, -9)
run_dir = glob.glob(os.path.join(work, "runs", "probe-*"))[0]
run([probe, "--resume-experiment", run_dir, "--no-progress"],
    {"DET_PROBE_CRASH": "2:11", "DET_PROBE_MARKERS": markers}, 0)

# ---- the store ----
db = sqlite3.connect(os.path.join(work, "runs", "det.db"))
trials = {n: (tid, json.loads(hp), state) for tid, n, hp, state in
          db.execute("SELECT id, number, hparams, state FROM trials")}
valid = [n for n, (_, _, state) in trials.items() if state != "INVALID_HP"]
check(len(valid) == 8, f"8 trials that trained (and a replacement per rejected one), found {len(valid)}")
restarts = db.execute("SELECT SUM(restarts) FROM trials").fetchone()[0]
check(restarts >= 1, "trial 2 restarted once")

# ---- framing and encoding, byte for byte ----
files = sorted(glob.glob(os.path.join(run_dir, "**", "events.out.tfevents.*"), recursive=True))
check(len(files) >= len(trials) + 1, f"an event file per trial and the experiment's, found {len(files)}")
starts = 0
for path in files:
    data = open(path, "rb").read()
    records = [r for r in event_file_loader.RawEventFileLoader(path).Load()]
    buf = io.BytesIO()
    writer = RecordWriter(buf)
    for r in records:
        writer.write(r)
    check(buf.getvalue() == data, f"{path}: TensorBoard's RecordWriter frames the records as det does")
    for r in records:
        ev = event_pb2.Event.FromString(r)
        check(ev.SerializeToString(deterministic=True) == r,
              f"{path}: an event protobuf encodes differently: {ev}")
        if ev.HasField("session_log") and ev.session_log.status == event_pb2.SessionLog.START:
            starts += 1
        for v in ev.summary.value:
            if v.metadata.plugin_data.plugin_name == "hparams":
                c = v.metadata.plugin_data.content
                check(plugin_data_pb2.HParamsPluginData.FromString(c)
                      .SerializeToString(deterministic=True) == c,
                      f"{path}: HParams data {v.tag} encodes differently")
    check(event_pb2.Event.FromString(records[0]).file_version == "brain.Event:2",
          f"{path}: starts with its file version")
check(starts >= len(trials) + 2, f"a START per trial and per restart (found {starts})")

# ---- each trial's run, as TensorBoard shows it ----
replayed = 0
wants = {}
for number, (tid, hparams, state) in sorted(trials.items()):
    tdir = os.path.join(run_dir, f"trial-{number}")
    acc = event_accumulator.EventAccumulator(tdir, size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    want = {}
    for kind, batches, metrics in db.execute(
            "SELECT kind, batches, metrics FROM metrics WHERE trial_id = ?", (tid,)):
        for name, value in json.loads(metrics).items():
            if isinstance(value, (int, float)):
                want.setdefault(f"{kind}/{name}", []).append((batches, value))
    jsonl = os.path.join(tdir, "metrics.jsonl")
    for line in (open(jsonl) if os.path.exists(jsonl) else []):
        row = json.loads(line)
        for name, value in row.get("learning_rates", {}).items():  # "lr", "lr/0.1"
            want.setdefault("learning_rate" + name[2:], []).append((row["batches"], value))
        for name, value in row.get("throughput", {}).items():
            want.setdefault("throughput/" + name, []).append((row["batches"], value))
    # The loader TensorBoard's server uses without --load_fast: scalars are tensors there.
    wants[number] = want
    tags = set(acc.Tags()["tensors"]) - {"_hparams_/session_start_info", "_hparams_/session_end_info"}
    check(tags == set(want), f"trial {number}: tags {sorted(tags)} != {sorted(want)}")
    for tag, points in want.items():
        if tag not in tags:
            continue
        got = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]
        points.sort()
        check([s for s, _ in got] == [s for s, _ in points],
              f"trial {number} {tag}: steps {[s for s, _ in got]} != {[s for s, _ in points]}")
        for (s, g), (_, w) in zip(got, points):
            check(math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-30),
                  f"trial {number} {tag} step {s}: {g} != {w}")
    # What the files hold before TensorBoard forgets the replayed part.
    raw_steps = [ev.step for f in sorted(glob.glob(os.path.join(tdir, "events.out.tfevents.*")))
                 for ev in event_file_loader.EventFileLoader(f).Load()
                 for v in ev.summary.value if v.tag == "training/loss"]
    replayed += len(raw_steps) - len(set(raw_steps))
check(replayed > 0, "the restarts replayed some steps (else this test shows nothing)")

# ---- the HParams plugin, from a real TensorBoard server ----
tb_exe = os.path.join(os.path.dirname(sys.executable), "tensorboard")
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
# TensorBoard's default loader (--load_fast auto: its Rust data server where installed, as pip's
# tensorboard has it), which drops replayed steps by itself.
server = subprocess.Popen([tb_exe, "--logdir", run_dir, "--host", "127.0.0.1", "--port", str(port),
                           "--reload_interval", "1"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    url = f"http://127.0.0.1:{port}/data/plugin/hparams/session_groups"
    body = json.dumps({"experimentName": "", "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS",
                       "STATUS_FAILURE", "STATUS_RUNNING"], "colParams": [], "startIndex": 0,
                       "sliceSize": 100}).encode()
    groups = None
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    for _ in range(120):
        try:
            req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json", "X-XSRF-Protected": "1",
                                                                   "X-TensorBoard-Feature-Flags": "{}"})
            groups = json.load(opener.open(req, timeout=5)).get("sessionGroups", [])
            if len(groups) == len(trials):
                break
        except OSError:
            pass
        time.sleep(0.5)
    check(groups is not None and len(groups) == len(trials),
          f"TensorBoard's HParams plugin lists {len(groups or [])} sessions, {len(trials)} trials")
    by_run = {g["sessions"][0]["name"]: g for g in groups or []}
    for number, (tid, hparams, state) in trials.items():
        g = by_run.get(f"trial-{number}")
        if not g:
            check(False, f"no HParams session for trial-{number}")
            continue
        check(math.isclose(g["hparams"]["x"], hparams["x"], rel_tol=1e-12),
              f"trial {number}: x {g['hparams']['x']} != {hparams['x']}")
        status = g["sessions"][0].get("status")
        want_status = "STATUS_SUCCESS" if state == "COMPLETED" else "STATUS_FAILURE"
        check(status == want_status, f"trial {number}: status {status} for {state}")
        values = {m["name"]["tag"]: m["value"] for m in g.get("metricValues", [])}
        last = db.execute("SELECT metrics FROM metrics WHERE trial_id = ? AND kind = 'validation' "
                          "ORDER BY batches DESC LIMIT 1", (tid,)).fetchone()
        if last:
            check(math.isclose(values.get("validation/validation_loss", float("nan")),
                               json.loads(last[0])["validation_loss"], rel_tol=1e-6),
                  f"trial {number}: HParams shows {values} for the last validation {last[0]}")
    # Every scalar, as the server's scalars plugin serves it.
    for number, want in wants.items():
        for tag, points in want.items():
            q = urllib.parse.urlencode({"run": f"trial-{number}", "tag": tag})
            got = json.load(opener.open(f"http://127.0.0.1:{port}/data/plugin/scalars/scalars?{q}", timeout=10))
            check([s for _, s, _ in got] == [s for s, _ in sorted(points)],
                  f"server, trial {number} {tag}: steps {[s for _, s, _ in got]} != {[s for s, _ in sorted(points)]}")
            for (_, s, g), (_, w) in zip(got, sorted(points)):
                check(math.isclose(g, w, rel_tol=1e-6, abs_tol=1e-30), f"server, trial {number} {tag} step {s}")
finally:
    server.terminate()
    server.wait(timeout=30)

if failures:
    sys.exit(f"{len(failures)} check(s) failed")
print(f"tensorboard: {len(files)} event files, {len(trials)} trials, {starts} SessionLog START(s), "
      f"{replayed} replayed step(s) shown once; all equal to the store")
