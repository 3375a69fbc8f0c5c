#!/usr/bin/env bash
# bf16 vs fp32 training runs (issue 22), resumable: each step is an audit that reuses finished cells.
# Data: out/c10-ops from `onepixel protect --method ops --dataset cifar10 --data-dir
# ../shared/data/cifar-10-batches-bin --out out/c10-ops`; out/c10-sub5k and out/c10-ops-sub5k hold the
# first 1,000 records of each data_batch_i.bin (`head -c $((1000*3073))`) of the clean and the OPS
# folder, test_batch.bin = test_batch_exact_first1000.bin, and batches.meta.txt.
cd /work/wt-bf16
A="node dist/src/cli/main.js audit --backend native"
lenet() { # seeds precision
  $A --clean ../shared/data/cifar-10-batches-bin --protected out/c10-ops --models lenet5 \
    --strategies standard --preset quick --seeds $1 --precision $2 --out results/bf16-lenet/$2
}
resnet() { # precision
  $A --clean out/c10-sub5k --protected out/c10-ops-sub5k --models resnet18 --strategies standard \
    --preset quick --epochs 4 --seeds 0 --precision $1 --out results/bf16-resnet18/$1
}
set -x
date -u; uptime
lenet 0 bf16; lenet 0 fp32
lenet 0,1 bf16; lenet 0,1 fp32
lenet 0,1,2 bf16; lenet 0,1,2 fp32
resnet bf16; resnet fp32
date -u; uptime
