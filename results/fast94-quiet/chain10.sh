#!/bin/bash
# Sixth session's queue: the OPS copy of the split (seconds), EM on the 40,000 training images
# with the LeNet-5 surrogate (fp32, 300 surrogate steps per round, as the 50,000-image run in
# results/em-full-manifest.json), CIFAR-10-S from that noise, then the adversarial (N-FGSM) cells
# of EM and CIFAR-10-S, seed 0, bf16, 2 threads, on the 40,000 / 10,000 split.
cd /work/main
set -u
R=results/fast94-quiet
A=results/audit-fast94-at
env_before() { { date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git rev-parse HEAD; } > $1.env; }
env_after() { { echo "--- after"; date -u; uptime; } >> $1.env; }
run() { # tag, command...
  local tag=$1; shift
  env_before $R/$tag; echo "$*" > $R/$tag.cmd.txt
  /usr/bin/time -v -o $R/$tag.time.txt "$@" > $R/$tag.log 2>&1
  env_after $R/$tag
}
[ -d out/split40-ops ] || node dist/src/cli/main.js protect --dataset cifar10 --data-dir out/split40 --out out/split40-ops > /dev/null
[ -d out/split40-em ] || run protect-em-split40 node dist/src/cli/main.js protect --dataset cifar10 --data-dir out/split40 --out out/split40-em --method em --backend native --em-train-steps 300 --seed 0 $([ -d out/split40-em.em-checkpoint ] && echo --resume)
[ -d out/split40-c10s ] || run protect-c10s-split40 node dist/src/cli/main.js protect --dataset cifar10 --data-dir out/split40 --out out/split40-c10s --method cifar10s --noise out/split40-em/noise.npy
base="--clean out/split40 --protected out/split40-ops,out/split40-em,out/split40-c10s --models airbench94 --preset fast94 --backend native --precision bf16 --strategies at --seeds 0 --out $A"
[ -d out/split40-c10s ] || exit 1
for ds in EM CIFAR-10-S; do
  n=$(node dist/src/cli/main.js audit $base --list-cells | wc -l); sh=""
  for ((i = 0; i < n; i++)); do
    node dist/src/cli/main.js audit $base --list-cells --shard $i/$n | grep -q "  ${ds}__" && sh=$i/$n
  done
  [ -n "$sh" ] || { echo "no cell for $ds"; exit 1; }
  run audit-at2-s0-$ds node dist/src/cli/main.js audit $base --shard $sh
done
