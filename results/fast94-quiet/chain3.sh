#!/bin/bash
# The third session's queue: onepixel's clean seed 2 (the third seed of the bar), the peer's clean
# seeds 1 and 2, then the adversarial row's OPS and clean cells (N-FGSM, seed 0), then OPS seed 2.
# One run at a time, 2 threads each.
set -u
R=results/fast94-quiet
A=results/audit-fast94
base="--clean out/split40 --protected out/split40-ops --models airbench94 --preset fast94 --backend native --precision bf16"
env_before() { { date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git rev-parse HEAD; } > $1.env; }
env_after() { { date -u; uptime; } >> $1.env; }
# cell STRATEGY SEED DATASET TAG: one audit cell, chosen by shard
cell() {
  local st=$1 seed=$2 ds=$3 tag=$4 sh
  local n=$(node dist/src/cli/main.js audit $base --strategies $st --seeds $seed --out $A --list-cells | wc -l)
  # with N = number of cells, shard i/N is exactly one cell
  sh=$(node dist/src/cli/main.js audit $base --strategies $st --seeds $seed --out $A --list-cells --shard 0/$n | grep -q "  ${ds}__" && echo 0/$n || echo 1/$n)
  env_before $R/$tag
  echo "node dist/src/cli/main.js audit $base --strategies $st --seeds $seed --out $A --shard $sh" > $R/$tag.cmd.txt
  /usr/bin/time -v node dist/src/cli/main.js audit $base --strategies $st --seeds $seed --out $A --shard $sh > $R/$tag.log 2> $R/$tag.time.txt
  env_after $R/$tag
}
peer() {
  local seed=$1 out=$R/peer-bf16-s$1
  [ -f $out.json ] && return
  env_before $out
  cmd="/usr/bin/python3 bench/peer_airbench_torch.py --data ../shared/data/cifar-10-batches-bin --train data_batch_1.bin,data_batch_2.bin,data_batch_3.bin,data_batch_4.bin --test data_batch_5.bin --seed $seed --precision bf16 --threads 2 --out $out.json"
  echo "$cmd" > $out.cmd.txt
  /usr/bin/time -v $cmd > $out.log 2> $out.time.txt
  env_after $out
}
cell standard 2 clean audit-s2-clean
peer 1
peer 2
cell at 0 OPS audit-at-s0-ops
cell at 0 clean audit-at-s0-clean
cell standard 2 OPS audit-s2-ops
