#!/bin/bash
# Second queue beside chain12.sh, one oneDNN thread (ONEPIXEL_NATIVE_THREADS=1): chain12's cells
# from the end, so the two meet in the middle (a cell another process holds is refused by its lock,
# a finished one is skipped). Same helpers as chain12.sh.
cd /work/main
set -u
export ONEPIXEL_NATIVE_THREADS=1
Q=/work/wt-q/dist/src/cli/main.js
R=results/fast94-quiet
env_before() { { date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git -C /work/wt-q rev-parse HEAD; echo "ONEPIXEL_NATIVE_THREADS=1"; } > $1.env; }
env_after() { { echo "--- after"; date -u; uptime; } >> $1.env; }
run() { # tag, command...
  local tag=$1; shift
  env_before $R/$tag; echo "ONEPIXEL_NATIVE_THREADS=1 $*" > $R/$tag.cmd.txt
  /usr/bin/time -v -o $R/$tag.time.txt "$@" > $R/$tag.log 2>&1
  env_after $R/$tag
}
CM="--clean out/split40 --protected out/split40-ops,out/split40-em,out/split40-c10s --models airbench94 --preset fast94 --backend native --precision bf16 --strategies standard --countermeasures jpeg:10,jpeg:50,median:3,grayscale,orthogonal-projection,ueraser --seeds 0 --out results/audit-fast94-cm"
ST="--clean out/split40 --protected out/split40-ops,out/split40-noise,out/split40-em,out/split40-c10s --models airbench94 --preset fast94 --backend native --precision bf16 --strategies standard --seeds 0,1,2 --out results/audit-fast94"
cell() { # base-args key
  local base=$1 key=$2 n sh=""
  [ -f "results/$(basename ${base##*--out })/cells/done-${key}" ] && return 0
  n=$(node $Q audit $base --list-cells | wc -l)
  for ((i = 0; i < n; i++)); do
    node $Q audit $base --list-cells --shard $i/$n | grep -q "  ${key}  " && sh=$i/$n
  done
  [ -n "$sh" ] || { echo "no cell $key"; return 1; }
  run audit-${key//:/_} node $Q audit $base --shard $sh
}
cell "$ST" CIFAR-10-S__airbench94__standard__s2
cell "$ST" EM__airbench94__standard__s2
cell "$CM" clean__airbench94__standard+jpeg_10__s0
cell "$CM" clean__airbench94__standard+median_3__s0
cell "$CM" OPS__airbench94__standard+orthogonal-projection__s0
cell "$CM" OPS__airbench94__standard+jpeg_50__s0
