#!/usr/bin/env bash
# A one-machine Slurm cluster from Debian's packages (munge, slurmctld, slurmd), for the tests
# labelled `cluster`: everything (config, key, sockets, state, logs) lives in DIR; the node has
# 2 CPUs. Slurm's daemons listen on every address they have, so they run in a network namespace
# of their own with only a loopback: the cluster is unreachable from anywhere else, and its
# clients (srun, sbatch, det-run placing trials on it) run in that namespace too.
# Needs root (slurmd starts jobs as their users; ip netns).
#   slurm_cluster.sh start DIR   # once the node is idle, writes DIR/env:
#                                #   SLURM_CONF=DIR/slurm.conf and DET_SLURM_NETNS=<namespace>
#   slurm_cluster.sh stop DIR    # stops the daemons started in DIR and removes the namespace
# Run a client: nsenter --net=/run/netns/$DET_SLURM_NETNS -- env SLURM_CONF=... srun ...
# Exit 77 (skipped) when Slurm, munge, root or network namespaces are not there.
set -euo pipefail
cmd=${1:?start|stop} dir=${2:?DIR}
pids="$dir/munged.pid $dir/slurmctld.pid $dir/slurmd.pid"
stop() {
  for p in $pids; do
    [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true
  done
  for _ in $(seq 100); do
    alive=0
    for p in $pids; do [ -f "$p" ] && kill -0 "$(cat "$p")" 2>/dev/null && alive=1; done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  for p in $pids; do [ -f "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null || true; rm -f "$p"; done
  [ -f "$dir/netns" ] && ip netns del "$(cat "$dir/netns")" 2>/dev/null || true
  rm -f "$dir/netns"
}
if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: slurm_cluster.sh start|stop DIR" >&2; exit 2; }
for b in munged mungekey slurmctld slurmd sinfo; do
  command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || { echo "SKIP: $b not installed (apt-get install slurm-wlm munge)"; exit 77; }
done
[ "$(id -u)" = 0 ] || { echo "SKIP: a local Slurm needs root"; exit 77; }
export PATH=$PATH:/usr/sbin
[ -d "$dir" ] && stop
rm -rf "$dir" && mkdir -p "$dir"/{state,spool,munge} && chmod 700 "$dir/munge"
dir=$(cd "$dir" && pwd)
ns=det-slurm-$$
ip netns add "$ns" 2>"$dir/netns.err" || { echo "SKIP: cannot make a network namespace: $(head -1 "$dir/netns.err")"; exit 77; }
echo "$ns" >"$dir/netns"
ip -n "$ns" link set lo up
# getaddrinfo(AI_ADDRCONFIG), which slurmctld binds with, finds nothing with a loopback alone:
# a veth pair with both ends inside gives the namespace an address that leads nowhere else.
ip -n "$ns" link add detslurm0 type veth peer name detslurm1
ip -n "$ns" addr add 10.232.0.1/30 dev detslurm0
ip -n "$ns" link set detslurm0 up
ip -n "$ns" link set detslurm1 up
# nsenter, not `ip netns exec`: that one also remounts /sys, hiding the cgroup tree slurmd reads.
in_ns() { nsenter --net="/run/netns/$ns" -- "$@"; }
ctld_port=6817 slurmd_port=6818  # Slurm's own: the namespace is the cluster's alone
mungekey --create --keyfile "$dir/munge/munge.key" >/dev/null 2>&1 ||
  dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
munged --force --socket "$dir/munge/munge.socket" --key-file "$dir/munge/munge.key" \
  --pid-file "$dir/munged.pid" --log-file "$dir/munged.log" --seed-file "$dir/munge/seed"
cat >"$dir/slurm.conf" <<CONF
ClusterName=dettest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=10
InactiveLimit=0
MinJobAge=300
NodeName=node0 NodeAddr=127.0.0.1 NodeHostname=$(hostname) CPUs=2 State=UNKNOWN
PartitionName=debug Nodes=node0 Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$dir/slurm.conf
in_ns slurmctld -i
in_ns slurmd -N node0
for _ in $(seq 150); do
  state=$(in_ns sinfo -h -n node0 -o %T 2>/dev/null || true)
  if [ "$state" = idle ]; then  # the clients' settings, written once the cluster works
    printf 'SLURM_CONF=%s\nDET_SLURM_NETNS=%s\n' "$SLURM_CONF" "$ns" >"$dir/env"
    cat "$dir/env"
    exit 0
  fi
  sleep 0.2
done
echo "slurm_cluster: node0 not idle after 30 s (state '${state:-?}'); logs in $dir" >&2
tail -5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
stop
exit 1
