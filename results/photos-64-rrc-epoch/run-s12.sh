#!/bin/bash
# The 64×64 stand-in trained through RandomResizedCrop(32) drawn anew every epoch (rrc:32:epoch),
# LeNet-5 quick, seeds 1–2 (seed 0 is kept): clean, the plain 1-pixel copy and the --pipeline resize:32 copy.
# Beside an airbench94 audit cell and a Stryker run on the same two cores (accuracy only).
set -u
R=results/photos-64-rrc-epoch
{ date -u; uptime; lscpu | grep -E 'Model name|CPU family|^Model:'; git rev-parse HEAD; } > $R/run-s12.env
cmd="node dist/src/cli/main.js audit --clean out/photos/standin-64 --protected out/photos/ops-64,out/photos/ops-resize32-64 --countermeasures rrc:32:epoch --seeds 0,1,2 --backend native --out $R"
echo "$cmd" > $R/run-s12.cmd.txt
/usr/bin/time -v $cmd > $R/audit-s12.log 2> $R/run-s12.time.txt
{ date -u; uptime; } >> $R/run-s12.env
