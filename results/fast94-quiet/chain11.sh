#!/bin/bash
# After q1.sh: PGD-20 robust accuracy of the EM and CIFAR-10-S adversarial cells (1,000 clean test
# images, and 1,000 of their own training images), their checkpoints moved out of the results,
# then the standard row's new cells (EM, CIFAR-10-S, random noise), seed 0 first.
cd /work/main
set -u
while pgrep -f queue/q1.sh > /dev/null; do sleep 20; done
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
for pair in EM:out/split40-em CIFAR-10-S:out/split40-c10s; do
  ds=${pair%%:*}; data=${pair#*:}
  cell=$(ls -d $A/cells/${ds}__airbench94__at__s0-* | head -1)
  [ -f $cell/cell.json ] && grep -q '"finished"\|"final' $cell/cell.json || true
  o=$A/robust-$ds-at-s0
  env_before $o; : > $o.cmd.txt; : > $o.jsonl
  for sp in test train; do
    echo "node dist/bench/robust-checkpoint.js $cell/checkpoint $data --split $sp --n 1000" >> $o.cmd.txt
    node dist/bench/robust-checkpoint.js $cell/checkpoint $data --split $sp --n 1000 >> $o.jsonl 2>> $o.stderr.txt
  done
  env_after $o
  mkdir -p out/checkpoints/audit-fast94-at && mv $cell/checkpoint out/checkpoints/audit-fast94-at/$(basename $cell)
done
base="--clean out/split40 --protected out/split40-ops,out/split40-noise,out/split40-em,out/split40-c10s --models airbench94 --preset fast94 --backend native --precision bf16 --strategies standard --seeds 0,1,2 --out results/audit-fast94"
n=$(node dist/src/cli/main.js audit $base --list-cells | wc -l)
for key in EM__airbench94__standard__s0 CIFAR-10-S__airbench94__standard__s0 random_noise__airbench94__standard__s0 \
  EM__airbench94__standard__s1 CIFAR-10-S__airbench94__standard__s1 random_noise__airbench94__standard__s1; do
  sh=""
  for ((i = 0; i < n; i++)); do
    node dist/src/cli/main.js audit $base --list-cells --shard $i/$n | grep -q "  ${key}  " && sh=$i/$n
  done
  [ -n "$sh" ] || { echo "no cell $key"; exit 1; }
  run audit-$key node dist/src/cli/main.js audit $base --shard $sh
done
