#!/usr/bin/env python3
"""PyTorch reference of onepixel's `train --preset quick`: LeNet-5 on CIFAR-10, 15 epochs.

    /usr/bin/python3 bench/peer_quick_torch.py ../shared/data/cifar-10-batches-bin --seed 0
    /usr/bin/python3 bench/peer_quick_torch.py out/c10-ops --seed 0

The folder holds CIFAR-10 in the official binary layout (records of 1 label byte + 1,024 R +
1,024 G + 1,024 B bytes): data_batch_1.bin .. data_batch_5.bin for training, test_batch.bin for
testing. It may be the clean data or the protected copy that `onepixel protect` writes (same file
names, same test_batch.bin). The files are read here with numpy; torchvision is not used.

The protocol (src/train/presets.ts `quick`, src/train/loop.ts, src/train/augment.ts,
src/nn/models/lenet.ts, src/nn/schedule.ts):

- LeNet-5 (kuangliu/pytorch-cifar): conv 3->6 5x5, relu, maxpool 2, conv 6->16 5x5, relu,
  maxpool 2, fc 400->120->84->10; PyTorch's default initialisation, seeded by --seed;
- 15 epochs of batch 128, reshuffled every epoch, the last incomplete batch dropped (390 steps);
- standard augmentation: images scaled to [0, 1] (no normalisation), random crop 32 with 4-pixel
  zero padding, horizontal flip with p = 0.5 (done per batch with tensor indexing);
- SGD(momentum 0.9, weight_decay 5e-4 on every parameter, no Nesterov, no dampening);
- OneCycleLR(max_lr 0.05, total_steps 15 x 390, pct_start 0.3, div_factor 25,
  final_div_factor 1e4, anneal 'cos', cycle_momentum False), stepped after every batch;
- mean softmax cross-entropy;
- after each epoch, clean accuracy on all of test_batch.bin in eval mode.

stdout: one JSON line per epoch (`epoch`, `lr` = the lr of the epoch's last step, `trainLoss`,
`trainAccuracy` of the augmented batches, `testAccuracy`, `seconds` of training without the
evaluation, `imagesPerSecond`), then one summary line (`kind: "summary"`, `testAccuracy` list,
`finalTestAccuracy`, `seconds` (training, all epochs), `wallSeconds` (everything, evaluation and
reading included), `imagesPerSecond`, load averages at start and end, versions).
"""

import argparse
import json
import os
import platform
import sys
import time

# libgomp's default (active) wait policy makes PyTorch's 2 OpenMP threads spin at every barrier;
# when another process holds one of the 2 cores, a LeNet-5 step then takes 10x longer (measured
# here at load 3: 450 img/s active, 4,600 img/s passive). Passive waiting changes no numbers. It
# must be set before torch loads libgomp; an OMP_WAIT_POLICY already in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

RECORD = 1 + 3 * 32 * 32
TRAIN_FILES = [f"data_batch_{i}.bin" for i in range(1, 6)]
TEST_FILE = "test_batch.bin"


def read_batches(folder, names):
    """uint8 images N x 3 x 32 x 32 (the record's planes are already C, H, W) and int64 labels."""
    raw = []
    for name in names:
        path = os.path.join(folder, name)
        data = np.fromfile(path, dtype=np.uint8)
        if data.size % RECORD != 0:
            sys.exit(f"{path}: {data.size} bytes is not a whole number of {RECORD}-byte records")
        raw.append(data.reshape(-1, RECORD))
    raw = np.concatenate(raw)
    labels = raw[:, 0].astype(np.int64)
    if labels.max() > 9:
        sys.exit(f"{folder}: label {labels.max()} out of range 0..9")
    images = np.ascontiguousarray(raw[:, 1:]).reshape(-1, 3, 32, 32)
    return torch.from_numpy(images), torch.from_numpy(labels)


# The same LeNet-5 as the training-speed peer (this script's folder is on sys.path when run).
from peer_train_torch import LeNet  # noqa: E402


def augment(images, gen, padding=4, flip_prob=0.5):
    """Random crop (zero padding) + horizontal flip of a uint8 N x C x H x W batch -> float [0, 1].

    Output pixel (y, x) of image n is padded[n, :, dy + y, dx + x'] with dy, dx uniform in
    0..2*padding and x' = W-1-x when flipped: the same as torchvision's RandomCrop(32, padding=4)
    followed by RandomHorizontalFlip, and as onepixel's cropFlip.
    """
    n, c, h, w = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))  # zeros
    span = 2 * padding + 1
    dy = torch.randint(0, span, (n,), generator=gen)
    dx = torch.randint(0, span, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < flip_prob
    rows = dy[:, None] + torch.arange(h)[None, :]  # n x h
    cols = dx[:, None] + torch.arange(w)[None, :]  # n x w
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    out = padded[
        torch.arange(n)[:, None, None, None],
        torch.arange(c)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    return out.float().div_(255)


def pgd(model, x, y, gen, eps=8 / 255, step=2 / 255, steps=10):
    """L-inf PGD with a uniform random start, attacked in eval mode (Madry et al.; onepixel's
    src/train/adversarial.ts): x + U(-eps, eps) clipped to [0, 1], then `steps` signed-gradient
    ascents of the cross-entropy, each projected onto [x - eps, x + eps] and [0, 1]."""
    model.eval()
    lower = (x - eps).clamp(min=0)
    upper = (x + eps).clamp(max=1)
    noise = (torch.rand(x.shape, generator=gen) * 2 - 1) * eps
    adv = (x + noise).clamp(0, 1)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        (g,) = torch.autograd.grad(loss, adv)
        adv = torch.max(torch.min(adv.detach() + step * g.sign(), upper), lower)
    model.train()
    return adv.detach()


def evaluate(model, images, labels, batch=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(labels), batch):
            x = images[s : s + batch].float().div_(255)
            correct += (model(x).argmax(1) == labels[s : s + batch]).sum().item()
    model.train()
    return correct / len(labels)


def loadavg():
    try:
        return list(os.getloadavg())
    except OSError:
        return None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", help="folder with data_batch_1..5.bin and test_batch.bin")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.05, help="OneCycleLR max_lr")
    p.add_argument("--pct-start", type=float, default=0.3, help="OneCycleLR pct_start")
    p.add_argument("--at", action="store_true", help="adversarial training: PGD-10, eps 8/255")
    p.add_argument(
        "--attack-warmup", type=float, default=0, help="epochs over which eps (and step) grow from 0"
    )
    p.add_argument("--limit", type=int, default=0, help="train on the first N images only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--check-augment", action="store_true", help="test augment() against a loop, exit")
    args = p.parse_args()

    torch.set_num_threads(args.threads)
    wall0 = time.perf_counter()
    load_start = loadavg()

    if args.check_augment:
        check_augment()
        return

    train_x, train_y = read_batches(args.data, TRAIN_FILES)
    test_x, test_y = read_batches(args.data, [TEST_FILE])
    if args.limit:
        train_x, train_y = train_x[: args.limit], train_y[: args.limit]

    torch.manual_seed(args.seed)  # the initialisation
    model = LeNet(10)
    gen = torch.Generator().manual_seed(args.seed + 1)  # shuffling and augmentation
    steps_per_epoch = len(train_y) // args.batch  # drop_last
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=args.lr,
        total_steps=args.epochs * steps_per_epoch,
        pct_start=args.pct_start,
        anneal_strategy="cos",
        div_factor=25.0,
        final_div_factor=1e4,
        cycle_momentum=False,
    )
    params = sum(q.numel() for q in model.parameters())
    print(
        json.dumps(
            {
                "kind": "start",
                "data": args.data,
                "seed": args.seed,
                "at": args.at,
                "lr": args.lr,
                "pctStart": args.pct_start,
                "attackWarmup": args.attack_warmup,
                "train": len(train_y),
                "test": len(test_y),
                "stepsPerEpoch": steps_per_epoch,
                "params": params,
                "threads": torch.get_num_threads(),
                "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY"),
                "loadavg": load_start,
            }
        ),
        flush=True,
    )

    model.train()
    history = []
    train_seconds = 0.0
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        order = torch.randperm(len(train_y), generator=gen)
        loss_sum = 0.0
        correct = 0
        seen = 0
        lr = None
        for step in range(steps_per_epoch):
            idx = order[step * args.batch : (step + 1) * args.batch]
            x = augment(train_x[idx], gen)
            y = train_y[idx]
            if args.at:
                warm = args.attack_warmup * steps_per_epoch
                f = min(1.0, (epoch * steps_per_epoch + step + 1) / warm) if warm > 0 else 1.0
                x = pgd(model, x, y, gen, eps=f * 8 / 255, step=f * 2 / 255)
            lr = opt.param_groups[0]["lr"]
            opt.zero_grad(set_to_none=True)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        rec = {
            "epoch": epoch + 1,
            "lr": lr,
            "trainLoss": loss_sum / seen,
            "trainAccuracy": correct / seen,
            "testAccuracy": evaluate(model, test_x, test_y),
            "seconds": seconds,
            "imagesPerSecond": seen / seconds,
            "loadavg": loadavg(),
        }
        history.append(rec)
        print(json.dumps(rec), flush=True)

    print(
        json.dumps(
            {
                "kind": "summary",
                "data": args.data,
                "seed": args.seed,
                "epochs": args.epochs,
                "testAccuracy": [r["testAccuracy"] for r in history],
                "trainAccuracy": [r["trainAccuracy"] for r in history],
                "finalTestAccuracy": history[-1]["testAccuracy"] if history else None,
                "seconds": train_seconds,
                "wallSeconds": time.perf_counter() - wall0,
                "imagesPerSecond": (steps_per_epoch * args.batch * args.epochs) / train_seconds
                if train_seconds
                else None,
                "threads": torch.get_num_threads(),
                "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY"),
                "loadavgStart": load_start,
                "loadavgEnd": loadavg(),
                "torch": torch.__version__,
                "python": platform.python_version(),
            }
        ),
        flush=True,
    )


def check_augment():
    """augment() equals a per-image crop-then-flip loop on random data."""
    g = torch.Generator().manual_seed(1)
    imgs = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=g)
    gen_a = torch.Generator().manual_seed(7)
    out = augment(imgs, gen_a)
    gen_b = torch.Generator().manual_seed(7)
    n = imgs.shape[0]
    dy = torch.randint(0, 9, (n,), generator=gen_b)
    dx = torch.randint(0, 9, (n,), generator=gen_b)
    flip = torch.rand(n, generator=gen_b) < 0.5
    padded = F.pad(imgs, (4, 4, 4, 4))
    for i in range(n):
        ref = padded[i, :, dy[i] : dy[i] + 32, dx[i] : dx[i] + 32]
        if flip[i]:
            ref = ref.flip(-1)
        assert torch.equal(out[i], ref.float() / 255), i
    print(json.dumps({"checkAugment": "ok", "images": n, "flipped": int(flip.sum())}))


if __name__ == "__main__":
    main()
