#!/bin/bash
# Fourth session's queue: PGD-20 robust accuracy of a standard-trained model (the reference the
# adversarial cell's 36.8 % needs), OPS seed 2, the clean adversarial cell (does N-FGSM give this
# network robustness at all?), random noise seed 0, then Table 6 (k = 2, 3, 4, and k = 1 with the
# paper's objective), all seed 0, bf16, 2 threads, on the 40,000 / 10,000 split.
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
C=out/checkpoints/results_audit-fast94_cells_clean__airbench94__standard__s2-897416200546_checkpoint
for sp in train test; do
  run robust-clean-standard-s2-$sp node dist/bench/robust-checkpoint.js $C out/split40 --split $sp --n 1000
done
run audit-s2-ops node dist/src/cli/main.js audit $base $m5 --shard 5/18
run audit-at-s0-clean node dist/src/cli/main.js audit $base $m5 --shard 6/18
run audit-s0-noise node dist/src/cli/main.js audit $base $m5 --shard 15/18
for s in 1 2 3 0; do
  run t6-shard$s node dist/src/cli/main.js audit $base $m6 --shard $s/6
done
