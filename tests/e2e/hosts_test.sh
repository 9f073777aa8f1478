#!/usr/bin/env bash
# Data-parallel MNIST across launchers and hosts, each run against the same training on one host
# under det-launch (same seed, same world size 2): the training and validation metrics of every
# report must be equal, number for number.
#   one-host:  mpirun -np 2 det-run ... (Open MPI; ranks, rendezvous from Open MPI's environment)
#   two-hosts: two network namespaces joined by a veth pair (10.231.N.1 and .2, the interface is
#              detnet0 in both) stand for two machines sharing a file system: det-launch
#              --nnodes 2 (one per host), then mpirun across both (its daemon on the second host
#              started through `ip netns exec`, where a cluster would use ssh), then a node whose
#              master address does not answer fails within the rendezvous timeout, naming it.
#   slurm:     on the local Slurm cluster in DET_SLURM_DIR (tests/cluster/slurm_cluster.sh):
#              srun -n 2 det-run ..., and scripts/slurm/train.sbatch through sbatch --wait.
#   slurm-busy, one-host-busy: the same while a busy loop runs on every CPU (issue 23: srun's
#              ranks kept LibTorch's default thread count, 2 each on 2 CPUs; under load they ran
#              16x slower than det-launch's and differed from batch 20 on in the ninth digit).
#              Beside the bit-for-bit comparison, every launcher's ranks must log the reference's
#              intra-op thread count and train at no less than a third of its speed.
# Needs Open MPI (openmpi-bin); two-hosts needs root and `ip netns`, slurm the running cluster
# (exit 77, skipped, otherwise).
# Usage: hosts_test.sh MODE DET_RUN DET_LAUNCH SOURCE_DIR WORK_DIR   (DET_DATA_DIR: MNIST)
set -uo pipefail
mode=$1 det_run=$2 det_launch=$3 src=$4 work=$5
busy=0
case "$mode" in *-busy) busy=1; mode=${mode%-busy} ;; esac
rm -rf "$work" && mkdir -p "$work" && cd "$work"
[ "$mode" = slurm ] || command -v mpirun >/dev/null || { echo "SKIP: no mpirun (apt-get install openmpi-bin)"; exit 77; }
[ -f "${DET_DATA_DIR:-}/mnist/train-images-idx3-ubyte.gz" ] || { echo "SKIP: no MNIST under DET_DATA_DIR"; exit 77; }
fails=0 passes=0
fail() { echo "FAIL $*"; fails=$((fails + 1)); }
cfg=$src/configs/mnist/distributed.yaml
args=(--no-progress --config searcher.max_length.batches=30 --config min_validation_period.batches=30
      --config scheduling_unit=10 --config reproducibility.experiment_seed=7)
# Bit for bit: det sets MKL_CBWR=AUTO in its processes (docs/distributed.md, Bit-exact runs);
# without it MKL (PyPI's LibTorch) picks code paths by the alignment of its operands, and the
# same run started another way differs in the last bits (about 1e-9 after 20 batches).
unset MKL_CBWR
mpi=(mpirun --allow-run-as-root --oversubscribe --bind-to none -x DET_DATA_DIR)

# The stress form: a busy loop on every CPU for the whole test.
busy_pids=()
if [ "$busy" = 1 ]; then
  for _ in $(seq "$(nproc)"); do ( while :; do :; done ) & busy_pids+=($!); done
  trap 'kill "${busy_pids[@]}" 2>/dev/null' EXIT
fi

# The reports of a run without what differs between runs (times, rates).
reports() {
  python3 - "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print(r["kind"], r["batches"], json.dumps(r["metrics"], sort_keys=True))
EOF
}
# run NAME COMMAND...: one training into runs-NAME; its reports into NAME.reports.
run() {
  local name=$1; shift
  local log=$work/$name.log
  if ! "$@" "${args[@]}" --config checkpoint_storage.host_path="$work/runs-$name" >"$log" 2>&1; then
    fail "$name: exited non-zero:"; tail -8 "$log"; return 1
  fi
  local m
  m=$(ls "$work"/runs-"$name"/*/trial-1/metrics.jsonl 2>/dev/null | head -1)
  [ -n "$m" ] || { fail "$name: no metrics.jsonl"; tail -5 "$log"; return 1; }
  reports "$m" >"$work/$name.reports"
}
# The intra-op threads a run's ranks used (its "data-parallel on 2 ranks" line).
threads_of() { grep -o '[0-9]* intra-op thread(s) a rank' "$1" | head -1 | cut -d' ' -f1; }
# The median training samples per second of a run's reports.
speed_of() {
  python3 -c 'import json, statistics, sys
rates = [json.loads(l).get("throughput", {}).get("samples_per_second") for l in open(sys.argv[1])]
rates = [r for r in rates if r]
print(statistics.median(rates) if rates else 0)' "$(ls "$work"/runs-"$1"/*/trial-1/metrics.jsonl | head -1)"
}
same() {  # same NAME [LOG]: NAME's reports equal the det-launch reference's, number for number
  if [ -s "$work/$1.reports" ] && cmp -s "$work/reference.reports" "$work/$1.reports"; then
    passes=$((passes + 1))
  else
    fail "$1: reports differ from one host under det-launch:"
    diff "$work/reference.reports" "$work/$1.reports" | head -6
  fi
  local log=${2:-$work/$1.log} want got
  want=$(threads_of "$work/reference.log") got=$(threads_of "$log")
  if [ -n "$want" ] && [ "$got" = "$want" ]; then
    passes=$((passes + 1))
  else
    fail "$1: its ranks ran ${got:-?} intra-op thread(s), the reference's ${want:-?}"
  fi
  if [ "$busy" = 1 ] && [ -d "$work/runs-$1" ]; then
    local ref this
    ref=$(speed_of reference) this=$(speed_of "$1")
    echo "$1: $this samples/s, reference $ref (busy machine)"
    if python3 -c "import sys; sys.exit(0 if float('$this') * 3 >= float('$ref') else 1)"; then
      passes=$((passes + 1))
    else
      fail "$1: $this samples/s, under a third of the reference's $ref"
    fi
  fi
}

run reference "$det_launch" --nproc-per-node 2 -- "$det_run" "$cfg" || exit 1
grep -q "^validation 30 " "$work/reference.reports" || { fail "reference: no validation at batch 30"; exit 1; }

if [ "$mode" = one-host ]; then
  # Nothing but mpirun's own options: the rendezvous is 127.0.0.1 and a port from the job id.
  run mpirun "${mpi[@]}" -np 2 "$det_run" "$cfg" && same mpirun
  grep -q "data-parallel on 2 ranks (gloo)" "$work/mpirun.log" || fail "mpirun: no 2-rank line"
  # The same run twice at once on the machine: different jobs, different ports.
  run mpirun-a "${mpi[@]}" -np 2 "$det_run" "$cfg" &
  a=$!
  run mpirun-b "${mpi[@]}" -np 2 "$det_run" "$cfg"
  wait $a
  same mpirun-a; same mpirun-b
  echo "$passes passed, $fails failed"
  [ "$fails" = 0 ]; exit
fi

if [ "$mode" = slurm ]; then
  [ -f "${DET_SLURM_DIR:-}/env" ] || { echo "SKIP: no local Slurm cluster (DET_SLURM_DIR)"; exit 77; }
  set -a; . "$DET_SLURM_DIR/env"; set +a
  cluster() { nsenter --net="/run/netns/$DET_SLURM_NETNS" -- "$@"; }  # a client of the cluster
  # Nothing but srun's own options: rank 0 serves the rendezvous on the loopback (one node) at a
  # port from the job and step ids.
  run srun cluster srun -n 2 --kill-on-bad-exit=1 "$det_run" "$cfg" && same srun
  grep -q "data-parallel on 2 ranks (gloo)" "$work/srun.log" || fail "srun: no 2-rank line"
  # The documented batch script, as a user submits it.
  run sbatch cluster env DET_RUN="$det_run" sbatch --wait --output="$work/sbatch.out" \
    "$src/scripts/slurm/train.sbatch" "$cfg" && same sbatch "$work/sbatch.out"
  grep -q "data-parallel on 2 ranks (gloo)" "$work/sbatch.out" || { fail "sbatch: no 2-rank line"; tail -5 "$work/sbatch.out"; }
  echo "$passes passed, $fails failed"
  [ "$fails" = 0 ]; exit
fi

# ---- two hosts ----
[ "$(id -u)" = 0 ] || { echo "SKIP: two hosts need root for ip netns"; exit 77; }
n=$(( $$ % 200 + 20 ))
h0=det-h0-$$ h1=det-h1-$$ a0=10.231.$n.1 a1=10.231.$n.2
cleanup() { ip netns del "$h0" 2>/dev/null; ip netns del "$h1" 2>/dev/null; }
trap cleanup EXIT
if ! { ip netns add "$h0" && ip netns add "$h1" &&
       ip link add "dv0-$n" type veth peer name "dv1-$n" &&
       ip link set "dv0-$n" netns "$h0" && ip link set "dv1-$n" netns "$h1" &&
       ip -n "$h0" link set "dv0-$n" name detnet0 && ip -n "$h1" link set "dv1-$n" name detnet0 &&
       ip -n "$h0" addr add "$a0/24" dev detnet0 && ip -n "$h1" addr add "$a1/24" dev detnet0 &&
       ip -n "$h0" link set detnet0 up && ip -n "$h1" link set detnet0 up &&
       ip -n "$h0" link set lo up && ip -n "$h1" link set lo up; } 2>"$work/netns.err"; then
  echo "SKIP: cannot make network namespaces here: $(head -1 "$work/netns.err")"; exit 77
fi
on() { local h=$1; shift; ip netns exec "$h" "$@"; }  # run a command on host h0 or h1

# The two "hosts" share this machine's CPUs, so each rank (the only one on its host) would take
# them all, where the reference's two ranks take one each: another thread count, other sums in
# the last bits. One thread each, as on the reference (a real cluster's hosts have CPUs of their
# own).
export DET_INTRA_OP_THREADS=1
mpi+=(-x DET_INTRA_OP_THREADS)

# det-launch, one per host; Gloo binds the address that reaches the master (no GLOO_SOCKET_IFNAME).
port=29611
launch() {  # launch NODE_RANK HOST MASTER
  on "$2" "$det_launch" --nproc-per-node 1 --nnodes 2 --node-rank "$1" --master-addr "$3" \
    --master-port $port -- "$det_run" "$cfg" --config resources.slots_per_trial=2 "${args[@]}" \
    --config checkpoint_storage.host_path="$work/runs-two-launchers"
}
launch 1 "$h1" "$a0" >"$work/node1.log" 2>&1 &
node1=$!
if launch 0 "$h0" "$a0" >"$work/two-launchers.log" 2>&1 && wait $node1; then
  reports "$(ls "$work"/runs-two-launchers/*/trial-1/metrics.jsonl)" >"$work/two-launchers.reports"
  same two-launchers
else
  wait $node1
  fail "det-launch on two hosts:"; tail -5 "$work/two-launchers.log" "$work/node1.log"
fi

# mpirun across both hosts: its daemon on h1 is started by an agent in h1's namespace, as ssh
# would (the words of the command joined and run by a shell there, as sshd does).
agent=$work/netns-agent.sh
cat >"$agent" <<EOF
#!/bin/sh
# Open MPI's rsh agent for the test's hosts: AGENT HOST COMMAND...
host=\$1; shift
case "\$host" in $a0) ns=$h0 ;; $a1) ns=$h1 ;; *) echo "netns-agent: unknown host \$host" >&2; exit 255 ;; esac
exec ip netns exec "\$ns" sh -c "\$*"
EOF
chmod +x "$agent"
run two-hosts-mpirun on "$h0" "${mpi[@]}" -np 2 -H "$a0,$a1" --mca plm_rsh_agent "$agent" \
  --mca oob_tcp_if_include detnet0 --mca btl_tcp_if_include detnet0 \
  -x MASTER_ADDR="$a0" -x GLOO_SOCKET_IFNAME=detnet0 "$det_run" "$cfg" && same two-hosts-mpirun
grep -q "data-parallel on 2 ranks (gloo)" "$work/two-hosts-mpirun.log" || fail "mpirun on two hosts: no 2-rank line"

# A node whose master does not answer (no host at .3): one line naming the address and port, within
# the rendezvous timeout (3 s here), not the default 300.
start=$(date +%s)
DET_RENDEZVOUS_TIMEOUT=3 launch 1 "$h1" "10.231.$n.3" >"$work/unreachable.log" 2>&1
rc=$? took=$(( $(date +%s) - start ))
if [ "$rc" != 0 ] && grep -q "rendezvous with the 2 ranks at 10.231.$n.3:$port failed within 3 s" "$work/unreachable.log" &&
   [ "$took" -lt 30 ]; then
  passes=$((passes + 1))
else
  fail "unreachable master: rc=$rc after $took s:"; tail -4 "$work/unreachable.log"
fi
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
