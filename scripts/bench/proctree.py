#!/usr/bin/env python3
"""Runs a command and measures it as a whole process tree: wall seconds, user and system seconds
(of the command and every descendant it waited for), and peak memory: the largest sum over the
tree at one moment of the resident set sizes (sampled every 10 ms from /proc; pages shared by
two processes, such as a library both load, count twice) and of the proportional set sizes
(every 100 ms; a shared page counts once, split between its processes), beside the largest
single process's peak (ru_maxrss). Prints one JSON object on stdout; the command's own
output goes to the file named by --log (default: discarded).

    proctree.py [--label NAME] [--log FILE] -- COMMAND [ARGS...]
"""
import argparse, json, os, subprocess, sys, threading, time


def children(pid):
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return out


def rss_bytes(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def pss_bytes(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def tree_sum(root, measure):
    total, stack, seen = 0, [root], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        total += measure(p)
        stack += children(p)
    return total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="")
    ap.add_argument("--log", default=os.devnull)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not cmd:
        ap.error("no command")
    peak = [0]
    peak_pss = [0]
    done = threading.Event()
    with open(a.log, "w") as log:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)

        def sample():
            n = 0
            while not done.is_set():
                peak[0] = max(peak[0], tree_sum(p.pid, rss_bytes))
                if n % 10 == 0:
                    peak_pss[0] = max(peak_pss[0], tree_sum(p.pid, pss_bytes))
                n += 1
                done.wait(0.01)

        th = threading.Thread(target=sample, daemon=True)
        th.start()
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        th.join()
    rc = os.waitstatus_to_exitcode(status)
    print(json.dumps({"label": a.label, "rc": rc, "wall_s": round(wall, 3), "user_s": round(ru.ru_utime, 3),
                      "sys_s": round(ru.ru_stime, 3), "peak_tree_rss_mb": round(peak[0] / 2**20, 1),
                      "peak_tree_pss_mb": round(peak_pss[0] / 2**20, 1),
                      "max_process_rss_mb": round(ru.ru_maxrss / 1024, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
