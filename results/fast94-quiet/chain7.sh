#!/bin/bash
# Replaces chain6.sh after its clean adversarial cell (that run goes on; this waits for it): the
# PyTorch peer of the same clean N-FGSM cell (seed 0), then chain6's rest: random noise seed 0,
# Table 6 (k = 2, 3, 4, and k = 1 with the paper's objective), seed 0.
set -u
R=results/fast94-quiet
A=results/audit-fast94
T=results/audit-fast94-t6
base="--clean out/split40 --models airbench94 --preset fast94 --backend native --precision bf16"
m5="--protected out/split40-ops,out/split40-noise --strategies standard,at --seeds 0,1,2 --out $A"
m6="--protected out/split40-ops,out/split40-ops2,out/split40-ops3,out/split40-ops4,out/split40-ops-paper --strategies standard --seeds 0 --out $T"
env_before() { { date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git rev-parse HEAD; } > $1.env; }
env_after() { { date -u; uptime; } >> $1.env; }
run() { # tag, command...
  local tag=$1; shift
  env_before $R/$tag; echo "$*" > $R/$tag.cmd.txt
  /usr/bin/time -v "$@" > $R/$tag.log 2> $R/$tag.time.txt
  env_after $R/$tag
}
while pgrep -f "main.js audit .*--shard 6/18" > /dev/null; do sleep 15; done
env_after $R/audit-at-s0-clean
run peer-bf16-at-s0-clean /usr/bin/python3 bench/peer_airbench_torch.py --data ../shared/data/cifar-10-batches-bin --train data_batch_1.bin,data_batch_2.bin,data_batch_3.bin,data_batch_4.bin --test data_batch_5.bin --seed 0 --precision bf16 --threads 2 --attack nfgsm --out $R/peer-bf16-at-s0-clean.json
run audit-s0-noise node dist/src/cli/main.js audit $base $m5 --shard 15/18
for s in 1 2 3 0; do
  run t6-shard$s node dist/src/cli/main.js audit $base $m6 --shard $s/6
done
