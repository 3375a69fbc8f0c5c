#!/usr/bin/env python3
"""PyTorch peer for bench/train.ts: training-step and PGD input-gradient speed on the CPU.

    python3 bench/peer_train_torch.py --model resnet18 --mode train --batch 32 \
        --warmup 1 --steps 2 --threads 2

The models mirror onepixel's (src/nn/models/):

- lenet5: kuangliu/pytorch-cifar LeNet: conv 3->6 5x5, relu, maxpool 2, conv 6->16 5x5, relu,
  maxpool 2, fc 400->120->84->classes (62,006 parameters for 10 classes);
- smallcnn: [conv3x3 64, BN, relu] x2, maxpool 2 (ceil mode), [conv 128 ...] x2, maxpool,
  [conv 256 ...] x2, maxpool, global average pool, linear 256->classes; bias-free convs
  (1,148,874 parameters);
- resnet18: kuangliu/pytorch-cifar ResNet-18 (BasicBlock [2, 2, 2, 2], option-B shortcuts,
  11,173,962 parameters).

What is timed, per step (the same as bench/train.ts):

- train: forward in training mode, mean cross-entropy on soft (one-hot) targets, backward,
  SGD (momentum 0.9, weight decay 5e-4) step, and reading the loss back;
- inputgrad: one PGD inner step with the model in eval mode: the gradient of the loss with
  respect to the input, then x + step * sign(g) projected onto [x - eps, x + eps] and [0, 1].

Input: uniform random images in [0, 1] (NCHW), random labels. Prints one JSON object on stdout.

PyTorch at its best on the CPU: --channels-last puts the model and the batch in channels_last
(NHWC, PyTorch's recommended CPU layout, oneDNN's fast path); --autocast bf16 runs the forward
pass under torch.autocast("cpu", dtype=torch.bfloat16) (the loss in fp32, as onepixel's). The
report names the BLAS library the process mapped (Debian's PyTorch calls whatever libblas.so.3
is installed for fp32 matrix products: the reference BLAS is 30x slower than OpenBLAS).

--mode matmul measures the machine's limit instead: a 2048x2048 matrix product in fp32 and in
bf16, GFLOP/s.
"""

import argparse
import importlib.util
import json
import platform
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class LeNet(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        out = F.max_pool2d(F.relu(self.conv1(x)), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        out = out.reshape(out.size(0), -1)  # (reshape: a channels_last batch is not viewable)
        out = F.relu(self.fc1(out))
        out = F.relu(self.fc2(out))
        return self.fc3(out)


SMALLCNN_CFG = [64, 64, "M", 128, 128, "M", 256, 256, "M"]


class SmallCNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        layers = []
        cin = 3
        for v in SMALLCNN_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                layers += [
                    nn.Conv2d(cin, v, 3, padding=1, bias=False),
                    nn.BatchNorm2d(v),
                    nn.ReLU(inplace=True),
                ]
                cin = v
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(cin, classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion * planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion * planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion * planes),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)


class ResNet(nn.Module):
    def __init__(self, block, num_blocks, classes=10):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(3, 64, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.linear = nn.Linear(512 * block.expansion, classes)

    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for s in [stride] + [1] * (num_blocks - 1):
            layers.append(block(self.in_planes, planes, s))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.avg_pool2d(out, 4)
        return self.linear(out.reshape(out.size(0), -1))


def build(name, classes):
    if name == "lenet5":
        return LeNet(classes)
    if name == "smallcnn":
        return SmallCNN(classes)
    if name == "resnet18":
        return ResNet(BasicBlock, [2, 2, 2, 2], classes)
    if name == "airbench94":
        # The fast94 recipe's network, from its own peer (whitening weights frozen, BatchNorm scales
        # frozen; random whitening filters here: a step's cost does not depend on them).
        here = os.path.dirname(os.path.abspath(__file__))
        spec = importlib.util.spec_from_file_location(
            "peer_airbench_torch", os.path.join(here, "peer_airbench_torch.py")
        )
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        assert classes == 10, "airbench94's peer has 10 classes"
        return mod.Net()
    raise SystemExit(f"unknown model {name!r}")


def cross_entropy(logits, targets):
    """Mean cross-entropy on soft targets, as onepixel's training loop computes it."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def blas_libraries():
    """The BLAS/LAPACK shared objects this process has mapped (after a matrix product)."""
    a = torch.randn(64, 64)
    _ = a @ a
    found = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                if "blas" in path or "lapack" in path or "mkl" in path:
                    found.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(found)


def matmul_limit(threads, n=2048, reps=10):
    """GFLOP/s of an n x n matrix product in fp32 and in bf16 (median of reps)."""
    out = {}
    for name, dt in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        a = torch.randn(n, n).to(dt)
        b = torch.randn(n, n).to(dt)
        for _ in range(3):
            a @ b
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
        times.sort()
        out[name] = 2 * n**3 / times[len(times) // 2] / 1e9
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mode", choices=["train", "inputgrad", "matmul"], default="train")
    ap.add_argument("--channels-last", action="store_true", help="model and batch channels_last")
    ap.add_argument("--autocast", choices=["none", "bf16"], default="none")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--size", type=int, default=32)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for the GPU peer (fp32, TF32 off)")
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.mode == "matmul":
        print(
            json.dumps(
                {
                    "mode": "matmul",
                    "n": 2048,
                    "threads": torch.get_num_threads(),
                    "gflops": matmul_limit(args.threads),
                    "blas": blas_libraries(),
                    "torch": torch.__version__,
                    "python": platform.python_version(),
                }
            )
        )
        return
    dev = torch.device(args.device)
    if dev.type == "cuda":
        # Plain fp32 like WebGPU's shaders: no TF32 tensor-core rounding.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    model = build(args.model, args.classes).to(dev)
    params = sum(p.numel() for p in model.parameters())
    x = torch.rand(args.batch, 3, args.size, args.size, device=dev)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    bf16 = args.autocast == "bf16"

    def logits_of(inp):
        if not bf16:
            return model(inp)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(inp)
        return out.float()

    labels = torch.randint(0, args.classes, (args.batch,), device=dev)
    targets = F.one_hot(labels, args.classes).float()

    if args.mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = cross_entropy(logits_of(x), targets)
            loss.backward()
            opt.step()
            return loss.item()

    else:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        eps, alpha = 8 / 255, 2 / 255
        lower = (x - eps).clamp(min=0)
        upper = (x + eps).clamp(max=1)

        def step():
            adv = x.clone().requires_grad_(True)
            loss = cross_entropy(logits_of(adv), targets)
            (g,) = torch.autograd.grad(loss, adv)
            with torch.no_grad():
                nxt = torch.min(torch.max(adv + alpha * g.sign(), lower), upper)
            return float(nxt[0, 0, 0, 0])

    for _ in range(args.warmup):
        step()
    samples = []
    cpu = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        c0 = time.process_time()
        step()
        samples.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    total = sum(samples)
    print(
        json.dumps(
            {
                "model": args.model,
                "mode": args.mode,
                "batch": args.batch,
                "threads": torch.get_num_threads(),
                "params": params,
                "warmup": args.warmup,
                "steps": args.steps,
                "stepSeconds": samples,
                "cpuSeconds": cpu,
                "imagesPerSecond": args.batch * args.steps / total,
                "torch": torch.__version__,
                "python": platform.python_version(),
                "mkldnn": torch.backends.mkldnn.is_available(),
                "channelsLast": args.channels_last,
                "autocast": args.autocast,
                "blas": blas_libraries(),
                "device": args.device,
                "deviceName": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
