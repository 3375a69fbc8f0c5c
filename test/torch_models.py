"""PyTorch reference for test/model-torch.test.ts: one training step of LeNet-5, smallcnn or
ResNet-18 (written here after the references src/nn/models/*.ts follow), from the tfjs model's
weights and batch.

argv[1] is a folder holding manifest.json ({model, classes, input: [N, H, W, C], labels,
weights: [{name, shape}] in tfjs order, trainable: [names], lr, momentum, weight_decay}),
weights.f32 (every weight, float32, tfjs layouts, in manifest order) and x.f32 (the batch, NHWC).
In training mode (batch norm on batch statistics) it computes the mean softmax cross-entropy,
every trainable parameter's gradient, then one torch.optim.SGD step, twice: in float64 (the
near-exact reference) and in float32 (what torch users get). It writes, for each (suffix 64 or
32), in tfjs layouts and the manifest's order, as float32: gradsXX.f32 (the gradients of
`trainable`), steppedXX.f32 (those parameters after the step), runningXX.f32 (every batch norm's
running mean and variance after the forward pass, in `weights` order), and out.json
({loss64, loss32}). With "autocast": true in the manifest, also suffix bf: float32 under bf16
autocast, channels_last (test/native-bf16.test.ts).
"""
import json
import os
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)  # the other core runs the tfjs side


class LeNet(nn.Module):
    def __init__(self, in_ch, classes, flat):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(flat, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, classes)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = x.flatten(1)  # (c, h, w) order: the loader permutes fc1's rows to match
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class SmallCNN(nn.Module):
    def __init__(self, in_ch, classes):
        super().__init__()
        layers, c = [], in_ch
        for v in [64, 64, 'M', 128, 128, 'M', 256, 256, 'M']:
            if v == 'M':
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU()]
                c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(256, classes)

    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


class BasicBlock(nn.Module):
    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, planes, 1, stride=stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    def __init__(self, in_ch, classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        cin = 64
        for i, planes in enumerate([64, 128, 256, 512]):
            blocks = []
            for j in range(2):
                blocks.append(BasicBlock(cin, planes, 2 if j == 0 and i > 0 else 1))
                cin = planes
            setattr(self, f'layer{i + 1}', nn.Sequential(*blocks))
        self.linear = nn.Linear(512, classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.adaptive_avg_pool2d(out, 1).flatten(1))


def build(name, h, w, c, classes):
    if name == 'lenet5':
        side = lambda s: ((s - 4) // 2 - 4) // 2  # two (5×5 valid conv, 2×2 pool)
        return LeNet(c, classes, 16 * side(h) * side(w))
    if name == 'smallcnn':
        return SmallCNN(c, classes)
    if name == 'resnet18':
        return ResNet18(c, classes)
    raise ValueError(name)


TF_TO_TORCH = {'kernel': 'weight', 'bias': 'bias', 'gamma': 'weight', 'beta': 'bias',
               'moving_mean': 'running_mean', 'moving_variance': 'running_var'}


def to_torch(model, name, a, flat_c):
    """A tfjs weight in torch's layout: HWIO -> OIHW, [in, out] -> [out, in]; LeNet's fc1 rows
    from NHWC's flatten order (h, w, c) to NCHW's (c, h, w)."""
    layer, kind = name.rsplit('/', 1)
    if kind == 'kernel' and a.ndim == 4:
        return a.transpose(3, 2, 0, 1)
    if kind == 'kernel':
        a = a.T
        if model == 'lenet5' and layer == 'fc1':
            a = a.reshape(a.shape[0], -1, flat_c).transpose(0, 2, 1).reshape(a.shape[0], -1)
    return a


def to_tfjs(model, name, a, flat_c):
    """The inverse of to_torch."""
    layer, kind = name.rsplit('/', 1)
    if kind == 'kernel' and a.ndim == 4:
        return a.transpose(2, 3, 1, 0)
    if kind == 'kernel':
        if model == 'lenet5' and layer == 'fc1':
            a = a.reshape(a.shape[0], flat_c, -1).transpose(0, 2, 1).reshape(a.shape[0], -1)
        return a.T
    return a


def key(name):
    layer, kind = name.rsplit('/', 1)
    return layer + '.' + TF_TO_TORCH[kind]


def main(d):
    with open(os.path.join(d, 'manifest.json')) as f:
        m = json.load(f)
    n, h, w, c = m['input']
    raw = np.fromfile(os.path.join(d, 'weights.f32'), dtype='<f4')
    sd, new, off = build(m['model'], h, w, c, m['classes']).state_dict(), {}, 0
    for wt in m['weights']:
        size = int(np.prod(wt['shape']))
        a = to_torch(m['model'], wt['name'], raw[off:off + size].reshape(wt['shape']), 16)
        off += size
        k = key(wt['name'])
        assert k in sd and tuple(sd[k].shape) == a.shape, (k, a.shape)
        new[k] = torch.from_numpy(np.ascontiguousarray(a))
    assert off == raw.size, 'weights.f32 has more values than the manifest names'
    missing = [k for k in sd if k not in new and not k.endswith('num_batches_tracked')]
    assert not missing, missing
    x = np.fromfile(os.path.join(d, 'x.f32'), dtype='<f4').reshape(n, h, w, c)
    x = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    labels = torch.tensor(m['labels'], dtype=torch.long)

    def step(dtype, autocast=False):
        """Loss, gradients, running statistics and stepped parameters, computed in `dtype`; with
        `autocast`, float32 under bf16 autocast in channels_last (PyTorch's bf16 training on the
        CPU: the loss in float32)."""
        model = build(m['model'], h, w, c, m['classes']).to(dtype)
        model.load_state_dict({k: v.to(dtype) for k, v in new.items()}, strict=False)
        model.train()
        params = dict(model.named_parameters())
        trainable = [params[key(t)] for t in m['trainable']]
        assert len(trainable) == len(params), 'every torch parameter is a tfjs trainable weight'
        if autocast:
            model = model.to(memory_format=torch.channels_last)
            with torch.autocast('cpu', dtype=torch.bfloat16):
                logits = model(x.to(dtype).contiguous(memory_format=torch.channels_last))
            assert logits.dtype == torch.bfloat16, logits.dtype
            loss = F.cross_entropy(logits.float(), labels)
        else:
            loss = F.cross_entropy(model(x.to(dtype)), labels)  # mean over the batch
        loss.backward()
        grads = [to_tfjs(m['model'], t, p.grad.numpy(), 16)
                 for t, p in zip(m['trainable'], trainable)]
        # running statistics after the forward pass (torch: momentum 0.1, unbiased variance)
        after = model.state_dict()
        running = [after[key(wt['name'])].numpy() for wt in m['weights']
                   if wt['name'].rsplit('/', 1)[1].startswith('moving')]
        torch.optim.SGD(model.parameters(), lr=m['lr'], momentum=m['momentum'],
                        weight_decay=m['weight_decay']).step()
        stepped = [to_tfjs(m['model'], t, p.detach().numpy(), 16)
                   for t, p in zip(m['trainable'], trainable)]
        return float(loss.item()), grads, running, stepped

    def write(name, arrays):
        flat = [np.ascontiguousarray(a, dtype='<f4').ravel() for a in arrays]
        (np.concatenate(flat) if flat else np.zeros(0, '<f4')).tofile(os.path.join(d, name))

    out = {}
    steps = [(torch.float64, '64', False), (torch.float32, '32', False)]
    if m.get('autocast'):
        steps.append((torch.float32, 'bf', True))
    for dtype, suffix, autocast in steps:
        loss, grads, running, stepped = step(dtype, autocast)
        out['loss' + suffix] = loss
        write(f'grads{suffix}.f32', grads)
        write(f'running{suffix}.f32', running)
        write(f'stepped{suffix}.f32', stepped)
    with open(os.path.join(d, 'out.json'), 'w') as f:
        json.dump(out, f)


if __name__ == '__main__':
    main(sys.argv[1])
