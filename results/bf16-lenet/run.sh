#!/usr/bin/env bash
# LeNet-5 quick, clean and OPS, seeds 0-2, bf16 and fp32 as two queues (one core each), resumable:
# the same command reuses finished cells. Needs out/c10-ops:
#   node dist/src/cli/main.js protect --method ops --dataset cifar10 --data-dir ../shared/data/cifar-10-batches-bin --out out/c10-ops
cd "$(dirname "$0")/../../.."
run() { # precision
  ONEPIXEL_NATIVE_THREADS=1 nice -n 19 node dist/src/cli/main.js audit --backend native \
    --clean ../shared/data/cifar-10-batches-bin --protected out/c10-ops --models lenet5 \
    --strategies standard --preset quick --seeds 0,1,2 --precision "$1" \
    --out results/bf16-lenet/"$1" >> results/bf16-lenet/"$1".log 2>&1
}
date -u; uptime
run bf16 & run fp32 & wait
date -u; uptime
