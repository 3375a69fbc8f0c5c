#!/bin/bash
# The session's queue of fast94 runs, one at a time (see run.sh). Waits for a running peer first.
set -u
R=bench/results/fast94-quiet
while pgrep -f peer_airbench_torch.py > /dev/null; do sleep 20; done
if [ ! -d out/split40-ops ]; then
  { date -u; uptime; } > $R/protect-ops.env
  /usr/bin/time -v node dist/src/cli/main.js protect --dataset cifar10 --data-dir out/split40 --out out/split40-ops > $R/protect-ops.log 2> $R/protect-ops.time.txt
fi
P=out/split40-ops
A=bench/results/audit-fast94
base="--clean out/split40 --protected $P --models airbench94 --preset fast94 --backend native --precision bf16"
# clean seed 0 alone (its wall time is the onepixel side of the speed comparison)
sh=$(node dist/src/cli/main.js audit $base --seeds 0 --out $A --list-cells --shard 0/2 | grep -c '  clean__')
[ "$sh" = 1 ] && clean=0/2 || clean=1/2
for step in "0 --shard $clean" "0" "peer 1" "1" "peer 2" "2"; do
  set -- $step
  if [ "$1" = peer ]; then bash $R/run.sh peer $2; continue; fi
  seeds=$1; shift
  tag=audit-s$seeds${1:+-shard}
  { date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git rev-parse HEAD; } > $R/$tag.env
  echo "node dist/src/cli/main.js audit $base --seeds $seeds --out $A $*" > $R/$tag.cmd.txt
  /usr/bin/time -v node dist/src/cli/main.js audit $base --seeds $seeds --out $A "$@" > $R/$tag.log 2> $R/$tag.time.txt
  { date -u; uptime; } >> $R/$tag.env
done
