#!/bin/bash
# pause.sh stop|cont — SIGSTOP/SIGCONT every audit/robust node process of the queue (for quiet measurements)
sig=$1
for p in $(pgrep -f 'wt-q/dist|dist/bench/robust-checkpoint'); do kill -$sig $p; done
