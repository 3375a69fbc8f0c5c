#!/usr/bin/env python3
"""PyTorch CPU peer of onepixel's fast94 recipe (src/train/fast94.ts, model src/nn/models/airbench94.ts).

The recipe is K. Jordan's airbench94 (arXiv 2404.00498; KellerJordan/cifar10-airbench,
legacy/airbench94.py), written again here for the CPU from the paper and that file's description:

    /usr/bin/python3 bench/peer_airbench_torch.py --data ../shared/data/cifar-10-batches-bin \
        --train data_batch_1.bin,data_batch_2.bin,data_batch_3.bin,data_batch_4.bin \
        --test data_batch_5.bin --seed 0 --precision fp32 --threads 2 --out peer.json

- network: 2x2 whitening conv (3 -> 24, bias, weights frozen: the eigenvectors of the covariance of
  the 2x2 patches of the first 5,000 training images, scaled by 1/sqrt(eigenvalue + 5e-4), and
  their negatives), GELU, three groups [conv3x3 (no bias, Dirac-initialised on the first
  in_channels filters), maxpool 2, BatchNorm, GELU, conv3x3, BatchNorm, GELU] of widths 64, 256,
  256, maxpool 3, linear 256 -> 10 without bias, times 1/9. BatchNorm: eps 1e-12, PyTorch momentum
  0.4 (the recipe's 0.6 on the old value), scale frozen at 1, shift trained;
- loss: cross-entropy with label smoothing 0.2, summed over the batch;
- optimiser: Nesterov SGD, momentum 0.85, lr 11.5 and weight decay 0.0153 per 1024 examples in the
  recipe's decoupled form (lr / (1024 (1 + 1/(1 - momentum))), BatchNorm shifts at 64x that lr with
  the same absolute decay); lr factor 0.2 -> 1 over the first 23 % of the steps, then 1 -> 0.07;
- lookahead: every 5 steps the weights (and BatchNorm statistics) move to an average kept with
  decay 0.95^5 (step / total)^3, and are replaced by it; at the end, by the average alone;
- data: normalised by the CIFAR mean / std; each image flipped at random once, then the whole set
  flipped on odd epochs; random translation by up to 2 pixels with reflect padding, every epoch;
  batch 1024, the last partial batch dropped; 9.9 epochs (ceil(steps per epoch * 9.9) steps); the
  whitening bias trained only in the first 3 epochs;
- test: test-time augmentation level 2: the mean of the logits of the image and its mirror, and of
  the same pair translated by one pixel up-left and down-right (reflect padding), weighted 1/2,
  1/4, 1/4.

One deliberate difference from the published file: its lookahead average is taken from the
weights *before* the whitening layer is initialised, so a 1e-4 share of the random whitening
weights stays in the network; here (and in onepixel) the average starts after that
initialisation.

--precision bf16 runs forward and backward under torch.autocast('cpu', bfloat16) (weights, the
optimiser and BatchNorm statistics stay float32), channels_last in both precisions. Prints one line
per epoch on stderr and writes a JSON file (--out) with per-epoch records and the final accuracies;
train seconds exclude the per-epoch evaluation (as the published timing does), TTA seconds are
counted separately.

--attack nfgsm trains adversarially as onepixel's fast94 does (`--strategy at`): N-FGSM (de Jorge
et al. 2022, "Make some noise"), L-inf eps = --epsilon/255: each batch starts from the images plus
noise U(-2 eps, 2 eps), clipped to [0, 1], takes one step of eps along the sign of the input
gradient of the training loss (label-smoothed cross-entropy, summed; the network in eval mode),
clipped to [0, 1] but not projected onto the eps-ball, and the network trains on that batch only.
The whitening's eigenvalues then get the floor 12 (eps/0.2435)^2 instead of 5e-4 (--whiten-floor
sets it; 5e-4 is the protocol that failed, see docs/fast94.md).
Such a run ends with PGD-20 robust accuracy (eps, step 2/255, a uniform random start, eval mode,
cross-entropy on the true labels) on the first 1,000 test images, as onepixel's. The random starts
come from torch's generator, not onepixel's.
"""

import argparse
import json
import math
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)

HYP = {
    "epochs": 9.9,
    "batch": 1024,
    "lr": 11.5,
    "momentum": 0.85,
    "weight_decay": 0.0153,
    "bias_scaler": 64.0,
    "label_smoothing": 0.2,
    "whiten_bias_epochs": 3,
    "translate": 2,
    "widths": (64, 256, 256),
    "bn_momentum": 0.6,
    "bn_eps": 1e-12,
    "scale": 1 / 9,
    "whiten_eps": 5e-4,
    "whiten_images": 5000,
}


def read_cifar(paths, limit=None):
    """CIFAR-10 binary records (label byte, then R, G, B planes) -> uint8 NCHW, int64 labels."""
    raw = b"".join(open(p, "rb").read() for p in paths)
    rec = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3073)
    if limit:
        rec = rec[:limit]
    return (
        torch.from_numpy(rec[:, 1:].reshape(-1, 3, 32, 32).copy()),
        torch.from_numpy(rec[:, 0].astype(np.int64)),
    )


def normalise(u8):
    x = u8.float() / 255
    m = torch.tensor(MEAN).view(1, 3, 1, 1)
    s = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - m) / s


class Norm(nn.BatchNorm2d):
    def __init__(self, ch):
        super().__init__(ch, eps=HYP["bn_eps"], momentum=1 - HYP["bn_momentum"])
        self.weight.requires_grad = False


def conv3(cin, cout):
    c = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    with torch.no_grad():
        torch.nn.init.dirac_(c.weight[:cin])
    return c


class Group(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv1 = conv3(cin, cout)
        self.norm1 = Norm(cout)
        self.conv2 = conv3(cout, cout)
        self.norm2 = Norm(cout)

    def forward(self, x):
        x = F.gelu(self.norm1(F.max_pool2d(self.conv1(x), 2)))
        return F.gelu(self.norm2(self.conv2(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        w1, w2, w3 = HYP["widths"]
        self.whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
        with torch.no_grad():
            self.whiten.bias.zero_()
        self.whiten.weight.requires_grad = False
        self.group1 = Group(24, w1)
        self.group2 = Group(w1, w2)
        self.group3 = Group(w2, w3)
        self.linear = nn.Linear(w3, 10, bias=False)

    def forward(self, x):
        x = F.gelu(self.whiten(x))
        x = self.group3(self.group2(self.group1(x)))
        x = F.max_pool2d(x, 3).flatten(1)
        return self.linear(x) * HYP["scale"]


def robust_whiten_floor(eps):
    """The whitening's eigenvalue floor under adversarial training (onepixel's robustWhitenFloor):
    12 (eps / 0.2435)^2, so that no whitened direction sees the eps-ball larger than about one
    standard deviation of the signal."""
    return 12 * (eps / 0.2435) ** 2


def whitening_weights(images, floor=None):
    """The frozen 2x2 filters from normalised NCHW images: [24, 3, 2, 2]; `floor` is added to the
    eigenvalues (default the recipe's 5e-4)."""
    p = images.unfold(2, 2, 1).unfold(3, 2, 1)  # N, C, H', W', 2, 2
    p = p.permute(0, 2, 3, 1, 4, 5).reshape(-1, 12).double()
    cov = p.T @ p / p.shape[0]
    vals, vecs = torch.linalg.eigh(cov)
    vals, vecs = vals.flip(0), vecs.T.flip(0)  # largest first, one eigenvector a row
    # LAPACK fixes no sign: make each eigenvector's largest-magnitude element positive (as onepixel)
    big = vecs.gather(1, vecs.abs().argmax(1, keepdim=True))
    vecs = vecs * torch.sign(big)
    floor = HYP["whiten_eps"] if floor is None else floor
    w = (vecs / torch.sqrt(vals + floor).view(-1, 1)).reshape(12, 3, 2, 2)
    return torch.cat([w, -w]).float()


def lr_factor(step, total):
    warm = int(total * 0.23)
    if step < warm:
        f = step / warm
        return 0.2 * (1 - f) + f
    f = (step - warm) / (total - warm)
    return (1 - f) + 0.07 * f


def tta_logits(net, x):
    def mirror(v):
        cl = torch.channels_last
        v = v.contiguous(memory_format=cl)
        return 0.5 * net(v) + 0.5 * net(v.flip(-1).contiguous(memory_format=cl))

    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    shifted = 0.5 * (mirror(padded[:, :, 0:32, 0:32]) + mirror(padded[:, :, 2:34, 2:34]))
    return 0.5 * mirror(x) + 0.5 * shifted


def make_optimiser(net, batch):
    """Nesterov SGD in the recipe's decoupled form: (optimizer, the groups' base lrs)."""
    m = HYP["momentum"]
    kilostep = 1024 * (1 + 1 / (1 - m))
    lr = HYP["lr"] / kilostep
    wd = HYP["weight_decay"] * batch / kilostep
    lr_bias = lr * HYP["bias_scaler"]
    names = dict(net.named_parameters())
    shifts = [p for k, p in names.items() if "norm" in k and p.requires_grad]
    others = [p for k, p in names.items() if "norm" not in k and p.requires_grad]
    opt = torch.optim.SGD(
        [
            dict(params=shifts, lr=lr_bias, weight_decay=wd / lr_bias),
            dict(params=others, lr=lr, weight_decay=wd / lr),
        ],
        momentum=m,
        nesterov=True,
    )
    return opt, [g["lr"] for g in opt.param_groups]


class Lookahead:
    """The average of every float entry of the state dict (BatchNorm statistics included)."""

    def __init__(self, net):
        self.ema = {k: v.detach().clone() for k, v in net.state_dict().items()}

    def update(self, net, decay):
        with torch.no_grad():
            for k, v in net.state_dict().items():
                if v.dtype.is_floating_point:
                    self.ema[k].lerp_(v, 1 - decay)
                    v.copy_(self.ema[k])


def epoch_view(xpad, shifts, epoch, pad):
    """The epoch's training images: crops of the padded (pre-mirrored) set at the shifts (dy, dx),
    all mirrored on odd epochs."""
    xe = torch.empty(xpad.shape[0], xpad.shape[1], 32, 32, dtype=xpad.dtype)
    for dy in range(-pad, pad + 1):
        for dx in range(-pad, pad + 1):
            sel = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
            xe[sel] = xpad[sel, :, pad + dy : pad + dy + 32, pad + dx : pad + dx + 32]
    return xe.flip(-1) if epoch % 2 == 1 else xe


MEAN_T = torch.tensor(MEAN).view(1, 3, 1, 1)
STD_T = torch.tensor(STD).view(1, 3, 1, 1)


def nfgsm(net, xb, yb, eps, ctx, delta=None):
    """N-FGSM of a normalised batch: the attacked batch, normalised. `delta` (in [0, 1] units, NCHW)
    is the random start; drawn from U(-2 eps, 2 eps) when None."""
    m, s = MEAN_T.to(xb.dtype), STD_T.to(xb.dtype)
    x01 = xb * s + m
    if delta is None:
        delta = torch.empty_like(x01).uniform_(-2 * eps, 2 * eps)
    adv = (x01 + delta.to(xb.dtype)).clamp(0, 1).requires_grad_()
    was_training = net.training
    net.eval()
    with ctx():
        out = net(((adv - m) / s).contiguous(memory_format=torch.channels_last))
    loss = F.cross_entropy(
        out.float() if out.dtype == torch.bfloat16 else out,
        yb,
        label_smoothing=HYP["label_smoothing"],
        reduction="sum",
    )
    (g,) = torch.autograd.grad(loss, adv)
    net.train(was_training)
    adv = (adv.detach() + eps * torch.sign(g)).clamp(0, 1)
    return (adv - m) / s


def robust_accuracy(net, x_u8, y, ctx, eps=8 / 255, step=2 / 255, steps=20, batch=250):
    """PGD-20 on uint8 NCHW test images: the fraction still classified correctly."""
    net.eval()
    correct = 0
    m, s = MEAN_T, STD_T
    for b in range(0, len(x_u8), batch):
        x = x_u8[b : b + batch].float() / 255
        yb = y[b : b + batch]
        lo, hi = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
        adv = torch.max(torch.min(x + torch.empty_like(x).uniform_(-eps, eps), hi), lo)
        for _ in range(steps):
            adv.requires_grad_()
            with ctx():
                out = net(((adv - m) / s).contiguous(memory_format=torch.channels_last))
            (g,) = torch.autograd.grad(F.cross_entropy(out.float(), yb), adv)
            adv = torch.max(torch.min(adv.detach() + step * torch.sign(g), hi), lo)
        with torch.no_grad(), ctx():
            out = net(((adv - m) / s).contiguous(memory_format=torch.channels_last))
        correct += (out.float().argmax(1) == yb).sum().item()
    return correct / len(x_u8)


def evaluate(net, x, y, tta, ctx, batch=1000):
    net.eval()
    correct = 0
    with torch.no_grad(), ctx():
        for s in range(0, len(x), batch):
            xb = x[s : s + batch].contiguous(memory_format=torch.channels_last)
            logits = tta_logits(net, xb) if tta else net(xb)
            correct += (logits.float().argmax(1) == y[s : s + batch]).sum().item()
    return correct / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--train", default=",".join(f"data_batch_{i}.bin" for i in range(1, 6)))
    ap.add_argument("--test", default="test_batch.bin")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=float, default=HYP["epochs"])
    ap.add_argument("--batch", type=int, default=HYP["batch"])
    ap.add_argument("--limit-train", type=int, default=0)
    ap.add_argument("--limit-test", type=int, default=0)
    ap.add_argument("--attack", choices=["none", "nfgsm"], default="none")
    ap.add_argument("--epsilon", type=float, default=8, help="attack radius, in 1/255")
    ap.add_argument(
        "--whiten-floor",
        type=float,
        default=None,
        help="added to the whitening's eigenvalues; default 5e-4, with --attack nfgsm 12 (eps/0.2435)^2",
    )
    ap.add_argument("--robust-images", type=int, default=1000)
    ap.add_argument("--no-epoch-eval", action="store_true", help="skip the per-epoch test")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if a.precision == "bf16" else _Null
    xtr_u8, ytr = read_cifar([os.path.join(a.data, f) for f in a.train.split(",")], a.limit_train)
    xte_u8, yte = read_cifar([os.path.join(a.data, a.test)], a.limit_test)
    xtr, xte = normalise(xtr_u8), normalise(xte_u8)

    whiten_floor = a.whiten_floor
    if whiten_floor is None:
        whiten_floor = robust_whiten_floor(a.epsilon / 255) if a.attack == "nfgsm" else HYP["whiten_eps"]
    hyp = dict(HYP, epochs=a.epochs, batch=a.batch, whiten_eps=whiten_floor)
    net = Net()
    t_start = time.perf_counter()
    with torch.no_grad():
        net.whiten.weight.copy_(whitening_weights(xtr[: HYP["whiten_images"]], whiten_floor))
    net = net.to(memory_format=torch.channels_last)

    steps_per_epoch = len(xtr) // a.batch
    total = math.ceil(steps_per_epoch * a.epochs)
    opt, base = make_optimiser(net, a.batch)
    la = Lookahead(net)

    # Data order: one flip per image (fixed), then per epoch a translation and a permutation.
    flip = torch.rand(len(xtr)) < 0.5
    xflip = torch.where(flip.view(-1, 1, 1, 1), xtr.flip(-1), xtr)
    pad = HYP["translate"]
    xpad = F.pad(xflip, (pad,) * 4, mode="reflect")

    history = []
    step = 0
    train_seconds = time.perf_counter() - t_start
    for epoch in range(math.ceil(a.epochs)):
        t0 = time.perf_counter()
        net.whiten.bias.requires_grad = epoch < HYP["whiten_bias_epochs"]
        xe = epoch_view(xpad, torch.randint(-pad, pad + 1, size=(len(xtr), 2)), epoch, pad)
        order = torch.randperm(len(xtr))
        net.train()
        seen = loss_sum = correct = 0
        for i in range(steps_per_epoch):
            idx = order[i * a.batch : (i + 1) * a.batch]
            xb = xe[idx].contiguous(memory_format=torch.channels_last)
            yb = ytr[idx]
            if a.attack == "nfgsm":
                xb = nfgsm(net, xb, yb, a.epsilon / 255, ctx).contiguous(
                    memory_format=torch.channels_last
                )
            for g, b in zip(opt.param_groups, base):
                g["lr"] = b * lr_factor(step, total)
            with ctx():
                out = net(xb)
            loss = F.cross_entropy(
                out.float(), yb, label_smoothing=HYP["label_smoothing"], reduction="none"
            ).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            seen += len(idx)
            loss_sum += loss.item()
            correct += (out.detach().float().argmax(1) == yb).sum().item()
            if step % 5 == 0:
                la.update(net, 0.95**5 * (step / total) ** 3)
            if step >= total:
                la.update(net, 1.0)
                break
        sec = time.perf_counter() - t0
        train_seconds += sec
        rec = {
            "epoch": epoch + 1,
            "steps": step,
            "trainLoss": loss_sum / max(seen, 1),
            "trainAccuracy": correct / max(seen, 1),
            "seconds": sec,
            "imagesPerSecond": seen / sec,
        }
        if not a.no_epoch_eval:
            rec["testAccuracy"] = evaluate(net, xte, yte, False, ctx)
        history.append(rec)
        print(json.dumps(rec), file=sys.stderr, flush=True)
        if step >= total:
            break
    t0 = time.perf_counter()
    tta = evaluate(net, xte, yte, True, ctx)
    tta_seconds = time.perf_counter() - t0
    plain = evaluate(net, xte, yte, False, ctx)
    robust = {}
    if a.attack != "none":
        t0 = time.perf_counter()
        k = min(a.robust_images, len(xte_u8))
        robust = {
            "robustAccuracy": robust_accuracy(net, xte_u8[:k], yte[:k], ctx),
            "robustImages": k,
            "robustSeconds": time.perf_counter() - t0,
        }
    out = {
        "peer": "bench/peer_airbench_torch.py",
        "torch": torch.__version__,
        "cpu": cpu_name(),
        "loadavg_end": os.getloadavg(),
        "threads": a.threads,
        "precision": a.precision,
        "seed": a.seed,
        "data": a.data,
        "train": a.train.split(","),
        "test": a.test,
        "trainImages": len(xtr),
        "testImages": len(xte),
        "hyp": hyp,
        "attack": {"name": a.attack, "epsilon": a.epsilon / 255} if a.attack != "none" else None,
        "steps": step,
        "history": history,
        "testAccuracy": plain,
        "ttaAccuracy": tta,
        "trainSeconds": train_seconds,
        "ttaSeconds": tta_seconds,
        "totalSeconds": train_seconds + tta_seconds,
        **robust,
    }
    tmp = a.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f, indent=1)
    os.replace(tmp, a.out)
    keys = ("ttaAccuracy", "testAccuracy", "robustAccuracy", "totalSeconds")
    print(json.dumps({k: out[k] for k in keys if k in out}))


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
