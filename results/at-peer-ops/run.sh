#!/usr/bin/env bash
# PyTorch peer of the quick preset's adversarial training on OPS vs clean (first 10,000 training images), seed 0.
cd /work/main
P=/usr/bin/python3
O=/work/runs/peer-at
$P bench/peer_quick_torch.py /work/out/c10-ops --seed 0 --limit 10000 --threads 1 > $O/peer-standard-ops-10k.jsonl 2> $O/peer-standard-ops-10k.log
$P bench/peer_quick_torch.py /work/out/c10-ops --seed 0 --limit 10000 --threads 1 --at --attack-warmup 5 > $O/peer-at-ops-10k.jsonl 2> $O/peer-at-ops-10k.log
$P bench/peer_quick_torch.py ../shared/data/cifar-10-batches-bin --seed 0 --limit 10000 --threads 1 --at --attack-warmup 5 > $O/peer-at-clean-10k.jsonl 2> $O/peer-at-clean-10k.log
