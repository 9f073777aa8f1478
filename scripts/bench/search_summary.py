#!/usr/bin/env python3
"""The table of scripts/bench/search.sh, from its runs.jsonl (one line a run: tool, seed, kind
det|peer, result: det-run's working directory or the peer's JSON, proctree: proctree.py's
measurement). Per tool and seed:
  best acc    the largest validation accuracy of any trial at any rung
  best loss   the smallest validation_loss (the searched metric) of any trial at any rung
  batches     batches trained, summed over trials (each trial's largest batch count)
  wall        the tool's whole run (proctree: process start to exit, start-up included)
  to 98%      from the tool's start to its first validation with accuracy >= 0.98; det: that
              validation's "time" in metrics.jsonl (whole seconds) minus det.log's first line;
              the peers: seconds since their process started
  CPU         user + system seconds of the process tree (wait4: only descendants reaped all the way
              up; Ray's trial workers are not, so ray's is far too low)
  peak PSS    the largest proportional set size of the process tree at one moment, MB
  work        what the trials the tool drew cost, in multiply-accumulates (TMAC): the CNN's MACs
              per image from each trial's n_filters1/n_filters2, times 3 (forward + backward)
              for every image trained, once for each image validated (10000 a validation).
              The space has 8 to 64 and 8 to 72 filters: one batch costs 1 to ~100x another
              one, so wall time alone mixes what a tool drew with how fast it runs it
  s/TMAC      wall / work: time per unit of work, comparable across tools whatever they drew
Then the median per tool, and each tool's median wall time and s/TMAC over det adaptive_asha's.

    search_summary.py RUNS.jsonl
"""
import glob, json, math, os, statistics, sys
from datetime import datetime, timezone

REFERENCE = "det-adaptive_asha"
BATCH, VALIDATION_IMAGES = 64, 10000


def macs_per_image(hp):
    """Forward multiply-accumulates of trials/mnist's CNN for one 28x28 image: conv 3x3 1->n1 (26x26
    out), conv 3x3 n1->n2 (24x24 out), max pool to 12x12, fc 144*n2->128, fc 128->10."""
    n1, n2 = int(hp["n_filters1"]), int(hp["n_filters2"])
    return 26 * 26 * 9 * n1 + 24 * 24 * 9 * n1 * n2 + 144 * n2 * 128 + 128 * 10


def work_tmac(trials):
    """trials: (hparams, batches trained, validations run) for each trial."""
    return sum(macs_per_image(hp) * (3 * BATCH * b + VALIDATION_IMAGES * v) for hp, b, v in trials) / 1e12


def det_result(cwd):
    runs = sorted(glob.glob(os.path.join(cwd, "runs", "*", "det.log")))
    if not runs:
        raise FileNotFoundError(f"no runs/*/det.log under {cwd}")
    run = os.path.dirname(runs[-1])
    with open(os.path.join(run, "det.log")) as f:
        first = f.readline()
    # det.log's timestamps are local time; metrics.jsonl's are UTC.
    t0 = datetime.strptime(first[1:24], "%Y-%m-%d %H:%M:%S.%f").timestamp()
    with open(os.path.join(run, "experiment.json")) as f:
        hparams = {t["id"]: t["hparams"] for t in json.load(f)["trials"]}
    validations, batches, work = [], 0, []
    for path in glob.glob(os.path.join(run, "trial-*", "metrics.jsonl")):
        most, count, trial = 0, 0, int(os.path.basename(os.path.dirname(path))[len("trial-"):])
        for line in open(path):
            if not line.strip():
                continue
            r = json.loads(line)
            most = max(most, r.get("batches", 0))
            if r.get("kind") == "validation" and "accuracy" in r.get("metrics", {}):
                count += 1
                t = datetime.strptime(r["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
                validations.append({"accuracy": r["metrics"]["accuracy"], "t": t.timestamp() - t0,
                                    "validation_loss": r["metrics"].get("validation_loss", math.nan)})
        batches += most
        work.append((hparams[trial], most, count))
    return validations, batches, len(glob.glob(os.path.join(run, "trial-*"))), work_tmac(work)


def peer_result(path):
    with open(path) as f:
        r = json.load(f)
    count = {}
    for v in r["validations"]:
        count[v["trial"]] = count.get(v["trial"], 0) + 1
    work = work_tmac((t["hparams"], t["batches"], count.get(t["trial"], 0)) for t in r["trials"])
    return r["validations"], r["total_batches"], len(r["trials"]), work


def row(entry):
    m = entry["proctree"]
    out = {"tool": entry["tool"], "seed": entry["seed"], "rc": m["rc"], "wall": m["wall_s"],
           "cpu": m["user_s"] + m["sys_s"], "pss": m["peak_tree_pss_mb"],
           "acc": math.nan, "loss": math.nan, "batches": math.nan, "to98": math.inf, "trials": 0, "work": math.nan,
           "spt": math.nan}
    try:
        vals, batches, trials, work = (det_result if entry["kind"] == "det" else peer_result)(entry["result"])
    except (OSError, ValueError, KeyError) as e:
        print(f"search: {entry['tool']} seed {entry['seed']}: no result ({e}); see {entry.get('log')}",
              file=sys.stderr)
        out["rc"] = out["rc"] or "no result"
        return out
    out.update(batches=batches, trials=trials, work=work, spt=m["wall_s"] / work)
    if vals:
        out["acc"] = max(v["accuracy"] for v in vals)
        out["loss"] = min(v["validation_loss"] for v in vals)
        out["to98"] = min((v["t"] for v in vals if v["accuracy"] >= 0.98), default=math.inf)
    return out


def fmt(x, spec):
    if isinstance(x, float) and math.isinf(x):
        return "never"
    if isinstance(x, float) and math.isnan(x):
        return "-"
    return format(x, spec)


def main():
    entries = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
    rows = [row(e) for e in entries]
    print("| tool | seed | trials | best val. accuracy | best val. loss | batches trained | work TMAC | wall s | s/TMAC | to 98% s "
          "| CPU s | peak PSS MB | exit |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        print(f"| {r['tool']} | {r['seed']} | {r['trials']} | {fmt(r['acc'], '.4f')} | {fmt(r['loss'], '.4f')} | "
              f"{fmt(r['batches'], 'd')} | "
              f"{fmt(r['work'], '.1f')} | {fmt(r['wall'], '.1f')} | {fmt(r['spt'], '.1f')} | {fmt(r['to98'], '.1f')} | "
              f"{fmt(r['cpu'], '.1f')} | {fmt(r['pss'], '.0f')} | {r['rc']} |")
    tools = list(dict.fromkeys(r["tool"] for r in rows))
    med = {}
    for t in tools:
        rs = [r for r in rows if r["tool"] == t and r["rc"] == 0]
        if rs:
            med[t] = {k: statistics.median(r[k] for r in rs) for k in ("acc", "loss", "batches", "work", "wall", "spt", "to98", "cpu", "pss")}
            med[t]["n"] = len(rs)
            med[t]["reached"] = sum(1 for r in rs if not math.isinf(r["to98"]))
    print()
    print(f"| tool | runs | median best accuracy | median best loss | median batches | median work TMAC | median wall s | median s/TMAC "
          f"| median to 98% s (reached) | median CPU s | median peak PSS MB | wall / {REFERENCE} | s/TMAC / {REFERENCE} |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ref = med.get(REFERENCE, {})
    for t, m in med.items():
        ratios = [f"{m[k] / ref[k]:.2f}" if ref.get(k) else "-" for k in ("wall", "spt")]
        print(f"| {t} | {m['n']} | {m['acc']:.4f} | {fmt(m['loss'], '.4f')} | {m['batches']:.0f} | {fmt(m['work'], '.1f')} | {m['wall']:.1f} | "
              f"{fmt(m['spt'], '.1f')} | {fmt(m['to98'], '.1f')} ({m['reached']}/{m['n']}) | {m['cpu']:.1f} | "
              f"{m['pss']:.0f} | {ratios[0]} | {ratios[1]} |")
    if any(t.startswith("ray") for t in tools):
        print("\nray's CPU s is far too low: proctree's CPU time counts a descendant only if every process "
              "between it and the command waited for it, and the time of Ray's trial workers does not get "
              "there: most of Ray's work is missing.")


if __name__ == "__main__":
    main()
