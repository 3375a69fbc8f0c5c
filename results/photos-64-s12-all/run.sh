#!/usr/bin/env bash
# Seeds 1-2 of every resize:32 and rrc:32 cell on the 64x64 stand-in (clean, plain OPS, --pipeline
# resize:32), as two shards on one core each, then the assembled report. Resumable: the same
# command reuses finished cells. The stand-in and copies: see ../photos-64/README.md.
cd "$(dirname "$0")/../../.."
A="node dist/src/cli/main.js audit --clean out/photos/standin-64 --protected out/photos/ops-64,out/photos/ops-resize32-64 --countermeasures resize:32,rrc:32 --seeds 1,2 --backend native --out results/photos-64-s12-all"
date -u; uptime
for i in 0 1; do ONEPIXEL_NATIVE_THREADS=1 nice -n 19 $A --shard $i/2 >> results/photos-64-s12-all/shard-$i.log 2>&1 & done
wait
nice -n 19 node dist/src/cli/main.js audit --out results/photos-64-s12-all --report >> results/photos-64-s12-all/report.log 2>&1
date -u; uptime
