#!/bin/bash
# The session's second queue (chain.sh's rest, reordered): after the running OPS seed-0 cell, the
# PyTorch peer on the same OPS copy (seed 0: does the peer agree with onepixel's OPS cell?), then
# onepixel's clean seed 1 alone (timed, quiet), then its OPS seed 1.
set -u
R=bench/results/fast94-quiet
A=bench/results/audit-fast94
while pgrep -f "main.js audit" > /dev/null; do sleep 20; done
out=$R/peer-bf16-ops-s0
if [ ! -f $out.json ]; then
  { date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git rev-parse HEAD; } > $out.env
  cmd="/usr/bin/python3 bench/peer_airbench_torch.py --data out/split40-ops --train data_batch_1.bin,data_batch_2.bin,data_batch_3.bin,data_batch_4.bin,data_batch_5.bin --test test_batch.bin --seed 0 --precision bf16 --threads 2 --out $out.json"
  echo "$cmd" > $out.cmd.txt
  /usr/bin/time -v $cmd > $out.log 2> $out.time.txt
  { date -u; uptime; } >> $out.env
fi
base="--clean out/split40 --protected out/split40-ops --models airbench94 --preset fast94 --backend native --precision bf16"
sh=$(node dist/src/cli/main.js audit $base --seeds 1 --out $A --list-cells --shard 0/2 | grep -c '  clean__')
[ "$sh" = 1 ] && clean=0/2 || clean=1/2
for step in "1 --shard $clean" "1"; do
  set -- $step
  seeds=$1; shift
  tag=audit-s$seeds${1:+-shard}
  { date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git rev-parse HEAD; } > $R/$tag.env
  echo "node dist/src/cli/main.js audit $base --seeds $seeds --out $A $*" > $R/$tag.cmd.txt
  /usr/bin/time -v node dist/src/cli/main.js audit $base --seeds $seeds --out $A "$@" > $R/$tag.log 2> $R/$tag.time.txt
  { date -u; uptime; } >> $R/$tag.env
done
