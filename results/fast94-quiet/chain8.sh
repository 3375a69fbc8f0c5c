#!/bin/bash
cd /work/main
R=results/fast94-quiet
run() { # name shard
  local name=$1 shard=$2
  local cmd="node dist/src/cli/main.js audit --clean out/split40 --protected out/split40-ops --models airbench94 --preset fast94 --backend native --precision bf16 --strategies at --seeds 0 --out results/audit-fast94-at --shard $shard"
  echo "$cmd" > $R/$name.cmd.txt
  { date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git log --oneline | head -1; } > $R/$name.env
  /usr/bin/time -v -o $R/$name.time.txt $cmd > $R/$name.log 2>&1
  { echo "--- after"; date -u; uptime; } >> $R/$name.env
}
run audit-at2-s0-clean 1/2
run audit-at2-s0-ops 0/2
