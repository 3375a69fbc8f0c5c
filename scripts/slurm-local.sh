#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for tests and trials: munged, slurmctld and slurmd run
# as root in the foreground of background shells (no systemd), with every file they need or write
# under one folder. Debian's packages: slurmctld slurmd munge slurm-client.
#
#   scripts/slurm-local.sh start DIR   configure and start; waits until the node is idle
#   scripts/slurm-local.sh stop DIR    stop exactly the three daemons started into DIR
#   scripts/slurm-local.sh env DIR     print the variables a client needs (SLURM_CONF)
#
# Clients (sbatch, squeue, sinfo) find the cluster through SLURM_CONF=DIR/slurm.conf; the munge
# socket is named in slurm.conf (AuthInfo), so nothing under /etc or /run is touched. Ports are
# chosen free at start (override with SLURM_LOCAL_PORT, which uses it and the next one).
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|env DIR" >&2
  exit 2
}
[ $# -eq 2 ] || usage
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

free_port() {
  # Two consecutive free TCP ports on 127.0.0.1 (controller, node).
  local p
  for _ in $(seq 1 50); do
    p=$((20000 + RANDOM % 20000))
    if ! (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null &&
      ! (exec 3<>/dev/tcp/127.0.0.1/$((p + 1))) 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "no free port found" >&2
  exit 1
}

start_daemon() {
  # name, then the command; the daemon runs in the foreground of a background job whose pid is
  # recorded, so stop can signal exactly it.
  local name=$1
  shift
  "$@" >"$dir/log/$name.out" 2>&1 &
  echo $! >"$dir/run/$name.pid"
}

stop_daemon() {
  local name=$1 pidfile="$dir/run/$1.pid" pid
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

case "$cmd" in
start)
  for bin in munged slurmctld slurmd sbatch sinfo; do
    command -v "$bin" >/dev/null || {
      echo "slurm-local: $bin not found (apt-get install slurmctld slurmd munge slurm-client)" >&2
      exit 3
    }
  done
  [ "$(id -u)" -eq 0 ] || {
    echo "slurm-local: must run as root (slurmd starts jobs as their user)" >&2
    exit 3
  }
  if [ -f "$dir/run/slurmctld.pid" ] && kill -0 "$(cat "$dir/run/slurmctld.pid")" 2>/dev/null; then
    echo "slurm-local: already running in $dir" >&2
    exit 1
  fi
  mkdir -p "$dir/munge" "$dir/log" "$dir/run" "$dir/state" "$dir/spool"
  chmod 700 "$dir/munge"
  if [ ! -f "$dir/munge/munge.key" ]; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
  fi
  port=${SLURM_LOCAL_PORT:-$(free_port)}
  # The node as slurmd sees it (CPUs, sockets, cores, memory), named localhost.
  node=$(slurmd -C | head -1 | sed -E 's/^NodeName=[^ ]+ //')
  mem=$(echo "$node" | sed -E 's/.*RealMemory=([0-9]+).*/\1/')
  # Leave the system some memory so the node is not refused for "low RealMemory".
  node=$(echo "$node" | sed -E "s/RealMemory=[0-9]+/RealMemory=$((mem * 9 / 10))/")
  cat >"$dir/slurm.conf" <<EOF
# Written by scripts/slurm-local.sh: a one-node cluster for tests.
ClusterName=onepixel-local
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.daemon.pid
SlurmdPidFile=$dir/run/slurmd.daemon.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 $node State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$dir/cgroup.conf" <<EOF
# No cgroups: processes are tracked by proctrack/linuxproc.
CgroupPlugin=autodetect
IgnoreSystemd=yes
EOF
  start_daemon munged munged --foreground --force \
    --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/run/munged.daemon.pid" --seed-file="$dir/munge/munged.seed" \
    --log-file="$dir/log/munged.log"
  for _ in $(seq 1 100); do
    [ -S "$dir/munge/munge.socket" ] && break
    sleep 0.1
  done
  [ -S "$dir/munge/munge.socket" ] || {
    echo "slurm-local: munged did not start (see $dir/log/munged.out)" >&2
    exit 1
  }
  export SLURM_CONF="$dir/slurm.conf"
  start_daemon slurmctld slurmctld -D -i -f "$dir/slurm.conf"
  start_daemon slurmd slurmd -D -N localhost -f "$dir/slurm.conf"
  for _ in $(seq 1 300); do
    state=$(sinfo -h -N -n localhost -o '%t' 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 0.2
  done
  if [ "${state:-}" != idle ]; then
    echo "slurm-local: node not idle after 60 s (state '${state:-none}'); logs in $dir/log" >&2
    exit 1
  fi
  echo "export SLURM_CONF=$dir/slurm.conf"
  ;;
stop)
  # Node first, then controller, then munge: each one only if this folder started it.
  stop_daemon slurmd
  stop_daemon slurmctld
  stop_daemon munged
  ;;
env)
  echo "export SLURM_CONF=$dir/slurm.conf"
  ;;
*)
  usage
  ;;
esac
