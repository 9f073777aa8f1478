#!/usr/bin/env python3
"""The peers of scripts/bench/search.sh: the search space of configs/mnist/adaptive.yaml (det's
MNIST trial, Determined's mnist_pytorch: the same CNN, Adadelta, NLL loss, batch 64, the training
images in file order without shuffling, validation on the 10000 test images) searched by
  optuna  TPESampler(seed) + SuccessiveHalvingPruner(min_resource=first rung, reduction_factor=4),
          study.optimize(n_trials=MAX_TRIALS, n_jobs=2): two trials at a time, as threads
  ray     Ray Tune: ASHAScheduler(time_attr="batches", grace_period=first rung, max_t=MAX_LENGTH,
          reduction_factor=4), the default search algorithm (BasicVariantGenerator, random, seeded),
          num_samples=MAX_TRIALS, 1 CPU a trial on a 2-CPU local Ray (two trials at a time)
Each trial trains to det's adaptive ASHA rungs (58, 234, 937 batches for 16 trials of 937),
validates and reports at each, and stops when the tool says so; a trial stays in memory from one
rung to the next (no checkpoints). One torch thread a trial. Writes FILE.json: every validation
{trial, batches, accuracy, validation_loss, t: seconds since this process started}, each trial's
hyperparameters and batches trained, wall_s and total_batches.

    search_peers.py optuna|ray --seed S --data DIR --out FILE.json [--max-trials 16] [--max-length 937]
"""
import time

T0 = time.time()  # the tool's start: before its imports, as det's is det-run's first log line

import argparse, gzip, json, math, os, sys, threading, warnings

import numpy as np

DIVISOR = 4


def det_rungs(max_trials, max_length, divisor=DIVISOR, max_rungs=5):
    """The rungs of adaptive ASHA's bracket with the most rungs, computed as det does
    (src/search/adaptive_asha.cpp adaptive_max_rungs, src/search/asha.cpp make_rungs)."""
    n = min(max_rungs, int(math.log(max_length) / math.log(divisor)) + 1,
            int(math.log(max_trials) / math.log(divisor)) + 1)
    rungs = [max(int(max_length / divisor ** (n - i - 1)), 1) for i in range(n)]
    return sorted(set(rungs))


def load_mnist(data_dir):
    """Training images as uint8 (N,1,28,28) with labels, test images normalized float32."""
    def idx(name, offset):
        with gzip.open(os.path.join(data_dir, "mnist", name)) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)
    train_x = idx("train-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    train_y = idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64)
    test_x = idx("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    test_y = idx("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
    test_x = ((test_x.astype(np.float32) / np.float32(255)) - np.float32(0.1307)) / np.float32(0.3081)
    return {"train_x": train_x, "train_y": train_y, "test_x": test_x, "test_y": test_y}


class MnistTrial:
    """det's trials/mnist/mnist_trial.cpp in Python: build, train to a batch count, validate."""

    def __init__(self, hp, data, seed, lock=None):
        import contextlib
        import torch
        from torch import nn
        self.torch = torch
        torch.set_num_threads(1)
        n1, n2 = int(hp["n_filters1"]), int(hp["n_filters2"])
        with lock or contextlib.nullcontext():  # Optuna's threads share torch's global generator
            torch.manual_seed(seed)
            self.model = nn.Sequential(
                nn.Conv2d(1, n1, 3, 1), nn.ReLU(), nn.Conv2d(n1, n2, 3), nn.ReLU(), nn.MaxPool2d(2),
                nn.Dropout2d(hp["dropout1"]), nn.Flatten(), nn.Linear(144 * n2, 128), nn.ReLU(),
                nn.Dropout(hp["dropout2"]), nn.Linear(128, 10), nn.LogSoftmax(dim=1))
        self.opt = torch.optim.Adadelta(self.model.parameters(), lr=hp["learning_rate"])
        # The training images stay uint8 (shared; Ray's are read-only views of its object store),
        # made float a batch at a time as det does; the test set is the trial's own copy.
        self.train_x, self.train_y = data["train_x"], data["train_y"]
        self.test_x = torch.from_numpy(np.array(data["test_x"]))
        self.test_y = torch.from_numpy(np.array(data["test_y"]))
        self.per_epoch = len(self.train_x) // 64  # 937: batch b is images 64b..64b+63 (in order)
        self.batches = 0

    def train_to(self, batches):
        torch = self.torch
        self.model.train()
        while self.batches < batches:
            first = (self.batches % self.per_epoch) * 64
            x = torch.tensor(self.train_x[first:first + 64], dtype=torch.float32)
            x = x.div_(255.0).sub_(0.1307).div_(0.3081)
            y = torch.tensor(self.train_y[first:first + 64])
            loss = torch.nn.functional.nll_loss(self.model(x), y)
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            self.batches += 1

    def validate(self):
        """det's reduction: the mean over batches of 64 of each batch's mean loss and accuracy."""
        torch = self.torch
        self.model.eval()
        losses, accs = [], []
        with torch.no_grad():
            for first in range(0, len(self.test_x), 64):
                out = self.model(self.test_x[first:first + 64])
                y = self.test_y[first:first + 64]
                losses.append(torch.nn.functional.nll_loss(out, y).item())
                accs.append(out.argmax(1).eq(y).double().mean().item())
        return sum(losses) / len(losses), sum(accs) / len(accs)


def run_optuna(a, rungs, validations, trial_info):
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lock = threading.Lock()
    data = load_mnist(a.data)  # once: the two trial threads share it
    sampler = optuna.samplers.TPESampler(seed=a.seed)
    pruner = optuna.pruners.SuccessiveHalvingPruner(min_resource=rungs[0], reduction_factor=DIVISOR,
                                                    min_early_stopping_rate=0)
    study = optuna.create_study(direction="minimize", sampler=sampler, pruner=pruner)

    def objective(trial):
        hp = {"learning_rate": trial.suggest_float("learning_rate", 1e-4, 1.0),
              "n_filters1": trial.suggest_int("n_filters1", 8, 64),
              "n_filters2": trial.suggest_int("n_filters2", 8, 72),
              "dropout1": trial.suggest_float("dropout1", 0.2, 0.8),
              "dropout2": trial.suggest_float("dropout2", 0.2, 0.8)}
        tid = trial.number + 1
        t = MnistTrial(hp, data, a.seed * 1000 + tid, lock)
        with lock:
            trial_info[tid] = {"trial": tid, "hparams": hp, "batches": 0}
        for r in rungs:
            t.train_to(r)
            loss, acc = t.validate()
            with lock:
                trial_info[tid]["batches"] = t.batches
                validations.append({"trial": tid, "batches": r, "accuracy": acc,
                                    "validation_loss": loss, "t": time.time() - T0})
            trial.report(loss, step=r)
            # At the last rung the trial is done: pruning it then would only relabel it.
            if r < rungs[-1] and trial.should_prune():
                raise optuna.TrialPruned()
        return loss

    study.optimize(objective, n_trials=a.max_trials, n_jobs=2)
    return optuna.__version__


def run_ray(a, rungs, validations, trial_info):
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # A single-node Ray: without this, Linux Ray swaps the 127.0.0.1 below for the machine's
    # address and its gRPC servers listen on every interface; with it, all listen on loopback.
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray
    from ray import tune
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             dashboard_host="127.0.0.1", log_to_driver=True)

    def trainable(config, data=None):
        hp = {k: v for k, v in config.items() if not k.startswith("__")}
        t = MnistTrial(hp, data, config["__seed"])
        for r in rungs:
            t.train_to(r)
            loss, acc = t.validate()
            tune.report({"batches": r, "validation_loss": loss, "accuracy": acc, "t_abs": time.time()})

    order = {}

    class Collect(tune.Callback):
        def on_trial_start(self, iteration, trials, trial, **info):
            order.setdefault(trial.trial_id, len(order) + 1)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            tid = order.setdefault(trial.trial_id, len(order) + 1)
            trial_info.setdefault(tid, {"trial": tid, "hparams": {
                k: v for k, v in trial.config.items() if not k.startswith("__")}})
            trial_info[tid]["batches"] = result["batches"]
            validations.append({"trial": tid, "batches": result["batches"], "accuracy": result["accuracy"],
                                "validation_loss": result["validation_loss"], "t": result["t_abs"] - T0})

    space = {"learning_rate": tune.uniform(1e-4, 1.0),
             "n_filters1": tune.randint(8, 65),  # upper bound exclusive: det's int range is inclusive
             "n_filters2": tune.randint(8, 73),
             "dropout1": tune.uniform(0.2, 0.8),
             "dropout2": tune.uniform(0.2, 0.8),
             # not a hyperparameter: the trial's torch seed, drawn with them from the seeded generator
             "__seed": tune.randint(0, 1 << 31)}
    scheduler = tune.schedulers.ASHAScheduler(time_attr="batches", max_t=rungs[-1], grace_period=rungs[0],
                                              reduction_factor=DIVISOR)
    search = tune.search.BasicVariantGenerator(random_state=a.seed)
    tuner = tune.Tuner(
        tune.with_resources(tune.with_parameters(trainable, data=load_mnist(a.data)), {"cpu": 1}),
        param_space=space,
        tune_config=tune.TuneConfig(metric="validation_loss", mode="min", scheduler=scheduler,
                                    search_alg=search, num_samples=a.max_trials),
        run_config=tune.RunConfig(name="search", storage_path=os.path.splitext(os.path.abspath(a.out))[0] + ".ray",
                                  callbacks=[Collect()], verbose=1))
    tuner.fit()
    ray.shutdown()
    return ray.__version__


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tool", choices=["optuna", "ray"])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--data", required=True, help="the directory holding mnist/")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-trials", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=937, help="batches")
    a = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    rungs = det_rungs(a.max_trials, a.max_length)
    validations, trials = [], {}  # trials: number -> {trial, hparams, batches trained}
    version = (run_optuna if a.tool == "optuna" else run_ray)(a, rungs, validations, trials)
    wall = time.time() - T0
    validations.sort(key=lambda v: v["t"])
    out = {"tool": a.tool, "version": version, "seed": a.seed, "max_trials": a.max_trials,
           "max_length": a.max_length, "rungs": rungs, "wall_s": round(wall, 3),
           "total_batches": sum(t["batches"] for t in trials.values()),
           "trials": [trials[k] for k in sorted(trials)], "validations": validations}
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    print(f"{a.tool} {version}: {len(trials)} trials, {out['total_batches']} batches, {wall:.1f} s -> {a.out}")


if __name__ == "__main__":
    sys.exit(main())
