#!/usr/bin/env bash
# Wall time of sharded OPS protect against one protect, on the same data (default: CIFAR-10, the
# binary version, 50,000 training images, --format cifar). Shards run as local processes (each
# step's shards at once, then the next step) and through a one-node Slurm (scripts/slurm-local.sh,
# needs root and Debian's slurmctld slurmd munge slurm-client): the same three steps, submitted by
# `onepixel slurm protect`'s submit.sh and waited for. Every sharded copy is checked byte for byte
# against the unsharded one.
#   [DATASET=kind] bash bench/slurm-protect.sh [DATA_DIR] [SCRATCH] [SHARD COUNTS…]
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data/cifar-10-batches-bin}
scratch=${2:-/tmp/onepixel-bench-slurm}
shift $(( $# > 2 ? 2 : $# )) || true
counts=("${@:-1 2 4}")
read -r -a counts <<<"${counts[*]}"
op=(node "$PWD/dist/src/cli/main.js")
kind=${DATASET:-cifar10}
export CI=1
rm -rf "$scratch" && mkdir -p "$scratch"
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
echo "# $(date -u +%FT%TZ) $(nproc) CPUs; uptime: $(uptime)"
echo "# data $data (--dataset $kind)"
for rep in 1 2; do
  t0=$(now)
  "${op[@]}" protect --dataset "$kind" --data-dir "$data" --out "$scratch/single" --force >/dev/null
  echo "unsharded rep $rep: $(secs "$t0" "$(now)") s"
done
for n in "${counts[@]}"; do
  w="$scratch/local-$n"
  mkdir -p "$w"
  t0=$(now)
  for ((i = 0; i < n; i++)); do
    "${op[@]}" protect --dataset "$kind" --data-dir "$data" --shard "$i/$n" --stats-only \
      --out "$w/stats-$i.json" >/dev/null &
  done
  wait
  t1=$(now)
  "${op[@]}" protect --merge-stats "$w"/stats-*.json --out "$w/plan.json" >/dev/null
  t2=$(now)
  for ((i = 0; i < n; i++)); do
    "${op[@]}" protect --dataset "$kind" --data-dir "$data" --plan "$w/plan.json" --shard "$i/$n" \
      --out "$w/out" >/dev/null &
  done
  wait
  t3=$(now)
  diff -r "$w/out" "$scratch/single" >/dev/null && same=identical || same=DIFFERENT
  echo "local $n shards: stats $(secs "$t0" "$t1") s, merge $(secs "$t1" "$t2") s, write $(secs "$t2" "$t3") s, total $(secs "$t0" "$t3") s ($same); uptime: $(uptime | sed 's/.*load/load/')"
done
if [ "$(id -u)" -eq 0 ] && command -v slurmctld >/dev/null; then
  cluster="$scratch/cluster"
  eval "$(bash scripts/slurm-local.sh start "$cluster")"
  trap 'bash scripts/slurm-local.sh stop "$cluster"' EXIT
  for n in "${counts[@]}"; do
    w="$scratch/slurm-$n"
    "${op[@]}" slurm protect --dataset "$kind" --data-dir "$data" --out "$w/out" --shards "$n" \
      --jobs "$w/jobs" >/dev/null
    t0=$(now)
    bash "$w/jobs/submit.sh" >/dev/null
    # Polled every 0.2 s (sbatch --wait backs off to long sleeps, which would be measured too).
    while [ -n "$(squeue -h -o %i)" ]; do sleep 0.2; done
    t1=$(now)
    diff -r "$w/out" "$scratch/single" >/dev/null && same=identical || same=DIFFERENT
    echo "slurm $n shards: submit to done $(secs "$t0" "$t1") s ($same); uptime: $(uptime | sed 's/.*load/load/')"
  done
fi
