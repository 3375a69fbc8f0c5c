#!/usr/bin/env bash
# The native-resolution row on the 64x64 stand-in: LeNet-5 quick trained on the 64x64 images as they
# are (no resize), clean, plain OPS and the --pipeline resize:32 copy, seed 0, two shards on one
# core each. Resumable: the same command reuses finished cells.
cd "$(dirname "$0")/../../.."
A="node dist/src/cli/main.js audit --clean out/photos/standin-64 --protected out/photos/ops-64,out/photos/ops-resize32-64 --seeds 0 --backend native --out results/photos-64-native"
date -u; uptime
for i in 0 1; do ONEPIXEL_NATIVE_THREADS=1 nice -n 5 $A --shard $i/2 >> results/photos-64-native/shard-$i.log 2>&1 & done
wait
date -u; uptime
