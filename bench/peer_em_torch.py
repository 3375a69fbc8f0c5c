#!/usr/bin/env python3
"""PyTorch peer for EM generation time: sample-wise error-minimizing noise (Huang et al., ICLR
2021), the same loop and settings as `onepixel protect --method em` (src/noise/em.ts):

  noise <- uniform(-eps, eps), clipped so that x + noise is in [0, 1]
  repeat:
    train the surrogate for --train-steps batches (shuffled, SGD lr/momentum 0.9/wd 5e-4) on the
      perturbed images (training mode)
    for every image: --steps PGD steps of --step-size that *descend* the cross-entropy on the true
      label, projected to the eps-ball and [0, 1] (eval mode), in batches of --noise-batch
    accuracy of the surrogate on the whole perturbed set (eval mode); stop at >= --stop or
      after --rounds

    python3 bench/peer_em_torch.py --data-dir ../shared/data/cifar-10-batches-bin --images 5000 \
        --rounds 1 --threads 2
    python3 bench/peer_em_torch.py --synthetic 50000 --model resnet18 --device cuda --rounds 2

--synthetic N times the same work on N random uint8 images (for a machine without the data;
timings do not depend on the pixel values). Prints one JSON line per round and a summary line.
"""

import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_train_torch import build  # noqa: E402
from peer_quick_torch import read_batches, TRAIN_FILES  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data-dir")
    p.add_argument("--synthetic", type=int, default=0)
    p.add_argument("--images", type=int, default=50000)
    p.add_argument("--model", default="lenet5")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--train-steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--step-size", type=float, default=0.8 / 255)
    p.add_argument("--eps", type=float, default=8 / 255)
    p.add_argument("--noise-batch", type=int, default=500)
    p.add_argument("--stop", type=float, default=0.99)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dev = torch.device(a.device)
    if a.synthetic:
        g = torch.Generator().manual_seed(a.seed)
        images = torch.randint(0, 256, (a.synthetic, 3, 32, 32), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, 10, (a.synthetic,), generator=g)
    else:
        images, labels = read_batches(a.data_dir, TRAIN_FILES)
        images, labels = images[: a.images], labels[: a.images]
    n = len(labels)
    x = images.to(dev).float() / 255
    y = labels.to(dev)
    noise = ((torch.rand(x.shape, device=dev) * 2 - 1) * a.eps)
    noise = (x + noise).clamp(0, 1) - x
    model = build(a.model, 10).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=a.lr, momentum=0.9, weight_decay=5e-4)
    sync = (lambda: torch.cuda.synchronize()) if dev.type == "cuda" else (lambda: None)
    order, cursor = torch.randperm(n), 0
    total = 0.0
    for r in range(1, a.rounds + 1):
        sync()
        t0 = time.perf_counter()
        model.train()
        losses = []
        for _ in range(a.train_steps):
            if cursor + a.batch > n:
                order, cursor = torch.randperm(n), 0
            idx = order[cursor : cursor + a.batch].to(dev)
            cursor += a.batch
            loss = F.cross_entropy(model((x[idx] + noise[idx]).clamp(0, 1)), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        sync()
        t1 = time.perf_counter()
        model.eval()
        for s in range(0, n, a.noise_batch):
            xb, yb = x[s : s + a.noise_batch], y[s : s + a.noise_batch]
            lo, hi = (xb - a.eps).clamp(min=0), (xb + a.eps).clamp(max=1)
            adv = (xb + noise[s : s + a.noise_batch]).clamp(0, 1)
            for _ in range(a.steps):
                adv.requires_grad_(True)
                (g,) = torch.autograd.grad(F.cross_entropy(model(adv), yb), adv)
                adv = torch.min(torch.max(adv.detach() - a.step_size * g.sign(), lo), hi)
            noise[s : s + a.noise_batch] = adv - xb
        sync()
        t2 = time.perf_counter()
        correct = 0
        with torch.no_grad():
            for s in range(0, n, 1000):
                pred = model((x[s : s + 1000] + noise[s : s + 1000]).clamp(0, 1)).argmax(1)
                correct += (pred == y[s : s + 1000]).sum().item()
        sync()
        t3 = time.perf_counter()
        acc = correct / n
        total += t3 - t0
        print(json.dumps({
            "round": r, "trainLoss": sum(losses) / len(losses), "accuracy": acc,
            "seconds": t3 - t0, "trainSeconds": t1 - t0, "noiseSeconds": t2 - t1,
            "evalSeconds": t3 - t2, "imgStepsPerSecond": n * a.steps / (t2 - t1),
        }), flush=True)
        if acc >= a.stop:
            break
    print(json.dumps({
        "peer": "torch", "torch": torch.__version__, "device": str(dev),
        "gpu": torch.cuda.get_device_name(0) if dev.type == "cuda" else None,
        "model": a.model, "images": n, "rounds": r, "seconds": total,
        "threads": a.threads, "loadavg": os.getloadavg(), "synthetic": bool(a.synthetic),
    }), flush=True)


if __name__ == "__main__":
    main()
