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
"""

import argparse
import json
import platform
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
        out = out.view(out.size(0), -1)
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
        return self.linear(out.view(out.size(0), -1))


def build(name, classes):
    if name == "lenet5":
        return LeNet(classes)
    if name == "smallcnn":
        return SmallCNN(classes)
    if name == "resnet18":
        return ResNet(BasicBlock, [2, 2, 2, 2], classes)
    raise SystemExit(f"unknown model {name!r}")


def cross_entropy(logits, targets):
    """Mean cross-entropy on soft targets, as onepixel's training loop computes it."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mode", choices=["train", "inputgrad"], default="train")
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
    dev = torch.device(args.device)
    if dev.type == "cuda":
        # Plain fp32 like WebGPU's shaders: no TF32 tensor-core rounding.
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    model = build(args.model, args.classes).to(dev)
    params = sum(p.numel() for p in model.parameters())
    x = torch.rand(args.batch, 3, args.size, args.size, device=dev)
    labels = torch.randint(0, args.classes, (args.batch,), device=dev)
    targets = F.one_hot(labels, args.classes).float()

    if args.mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = cross_entropy(model(x), targets)
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
            loss = cross_entropy(model(adv), targets)
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
                "device": args.device,
                "deviceName": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                "peakRssMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            }
        )
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
