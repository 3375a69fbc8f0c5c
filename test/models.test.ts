/**
 * The model zoo: trainable parameter counts equal to the PyTorch reference implementations for
 * CIFAR-10 (hard-coded numbers, taken from torch, and — when /usr/bin/python3 has torch — recounted by
 * torch itself); forward passes at 32×32×3, 28×28×1 and 64×48×3 giving [batch, classes] logits;
 * BatchNorm moving statistics moving in training mode (by PyTorch's momentum 0.1) and not in
 * inference; reproducible seeded initialisation; save/load round trips; and, with torch, every
 * forward pass here rerun in PyTorch with the same weights and compared logit for logit.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tfc from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { OnepixelError } from '../src/errors.js';
import {
  MODELS as ALL_MODELS,
  buildModel,
  trainableParamCount,
  type ModelName as AnyModel,
} from '../src/nn/models/index.js';

// airbench94 (frozen whitening filters and BatchNorm scales) has its own PyTorch comparison:
// test/airbench94.test.ts.
type ModelName = Exclude<AnyModel, 'airbench94'>;
const MODELS = ALL_MODELS.filter((m): m is ModelName => m !== 'airbench94');
import { PYTHON, tempDirs } from './helpers.js';

/**
 * Trainable parameters for CIFAR-10 (32×32×3, 10 classes), counted by PyTorch 1.13 (Debian's
 * python3-torch) as `sum(p.numel() for p in model.parameters())` on the reference definitions in
 * TORCH_CODE below: kuangliu/pytorch-cifar LeNet, ResNet18, ResNet50, VGG('VGG16'), DenseNet121;
 * xternalz/WideResNet-pytorch WideResNet(28, 10, widen_factor=10); this project's smallcnn.
 */
const CIFAR10_PARAMS: Record<ModelName, number> = {
  lenet5: 62_006,
  smallcnn: 1_148_874,
  resnet18: 11_173_962,
  resnet50: 23_520_842,
  vgg16: 14_728_266,
  densenet121: 6_956_298,
  wrn28: 36_479_194,
};

/** PyTorch twins of the zoo, named like the tfjs layers; argv[1] is a folder with manifest.json. */
const TORCH_CODE = String.raw`
import json, os, sys
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)  # the other core runs the tfjs tests

# kuangliu/pytorch-cifar models/lenet.py (input channels and flattened size generalised)
class LeNet(nn.Module):
    def __init__(self, in_ch, num_classes, flat):
        super().__init__()
        self.conv1 = nn.Conv2d(in_ch, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(flat, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)
    def forward(self, x):
        out = F.max_pool2d(F.relu(self.conv1(x)), 2)
        out = F.max_pool2d(F.relu(self.conv2(out)), 2)
        out = out.view(out.size(0), -1)
        out = F.relu(self.fc1(out))
        out = F.relu(self.fc2(out))
        return self.fc3(out)

# onepixel's smallcnn
class SmallCNN(nn.Module):
    def __init__(self, in_ch, num_classes):
        super().__init__()
        layers, c = [], in_ch
        for v in [64, 64, 'M', 128, 128, 'M', 256, 256, 'M']:
            if v == 'M':
                layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1, bias=False), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(256, num_classes)
    def forward(self, x):
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))

# kuangliu/pytorch-cifar models/resnet.py
class BasicBlock(nn.Module):
    expansion = 1
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion*planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion*planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion*planes))
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += self.shortcut(x)
        return F.relu(out)

class Bottleneck(nn.Module):
    expansion = 4
    def __init__(self, in_planes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, self.expansion*planes, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(self.expansion*planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != self.expansion*planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, self.expansion*planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(self.expansion*planes))
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        out += self.shortcut(x)
        return F.relu(out)

class ResNet(nn.Module):
    def __init__(self, block, num_blocks, in_ch, num_classes):
        super().__init__()
        self.in_planes = 64
        self.conv1 = nn.Conv2d(in_ch, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.layer1 = self._make_layer(block, 64, num_blocks[0], stride=1)
        self.layer2 = self._make_layer(block, 128, num_blocks[1], stride=2)
        self.layer3 = self._make_layer(block, 256, num_blocks[2], stride=2)
        self.layer4 = self._make_layer(block, 512, num_blocks[3], stride=2)
        self.linear = nn.Linear(512*block.expansion, num_classes)
    def _make_layer(self, block, planes, num_blocks, stride):
        layers = []
        for stride in [stride] + [1]*(num_blocks-1):
            layers.append(block(self.in_planes, planes, stride))
            self.in_planes = planes * block.expansion
        return nn.Sequential(*layers)
    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        out = F.adaptive_avg_pool2d(out, 1)  # reference: F.avg_pool2d(out, 4), the same at 32x32
        return self.linear(out.view(out.size(0), -1))

# kuangliu/pytorch-cifar models/vgg.py, VGG16
class VGG(nn.Module):
    def __init__(self, in_ch, num_classes):
        super().__init__()
        cfg = [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M']
        layers, c = [], in_ch
        for x in cfg:
            if x == 'M':
                layers += [nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True)]  # reference: floor mode
            else:
                layers += [nn.Conv2d(c, x, kernel_size=3, padding=1), nn.BatchNorm2d(x), nn.ReLU(inplace=True)]
                c = x
        layers += [nn.AvgPool2d(kernel_size=1, stride=1)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)
    def forward(self, x):
        out = F.adaptive_avg_pool2d(self.features(x), 1)  # reference: none (1x1 map at 32x32)
        return self.classifier(out.view(out.size(0), -1))

# kuangliu/pytorch-cifar models/densenet.py, DenseNet121
class DenseBottleneck(nn.Module):
    def __init__(self, in_planes, growth_rate):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, 4*growth_rate, kernel_size=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4*growth_rate)
        self.conv2 = nn.Conv2d(4*growth_rate, growth_rate, kernel_size=3, padding=1, bias=False)
    def forward(self, x):
        out = self.conv1(F.relu(self.bn1(x)))
        out = self.conv2(F.relu(self.bn2(out)))
        return torch.cat([out, x], 1)

class Transition(nn.Module):
    def __init__(self, in_planes, out_planes):
        super().__init__()
        self.bn = nn.BatchNorm2d(in_planes)
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size=1, bias=False)
    def forward(self, x):
        out = self.conv(F.relu(self.bn(x)))
        return F.avg_pool2d(out, 2, ceil_mode=True)  # reference: floor mode

class DenseNet(nn.Module):
    def __init__(self, nblocks, growth_rate, in_ch, num_classes, reduction=0.5):
        super().__init__()
        self.growth_rate = growth_rate
        num_planes = 2*growth_rate
        self.conv1 = nn.Conv2d(in_ch, num_planes, kernel_size=3, padding=1, bias=False)
        self.dense1 = self._make_dense_layers(num_planes, nblocks[0])
        num_planes += nblocks[0]*growth_rate
        out_planes = int(np.floor(num_planes*reduction))
        self.trans1 = Transition(num_planes, out_planes)
        num_planes = out_planes
        self.dense2 = self._make_dense_layers(num_planes, nblocks[1])
        num_planes += nblocks[1]*growth_rate
        out_planes = int(np.floor(num_planes*reduction))
        self.trans2 = Transition(num_planes, out_planes)
        num_planes = out_planes
        self.dense3 = self._make_dense_layers(num_planes, nblocks[2])
        num_planes += nblocks[2]*growth_rate
        out_planes = int(np.floor(num_planes*reduction))
        self.trans3 = Transition(num_planes, out_planes)
        num_planes = out_planes
        self.dense4 = self._make_dense_layers(num_planes, nblocks[3])
        num_planes += nblocks[3]*growth_rate
        self.bn = nn.BatchNorm2d(num_planes)
        self.linear = nn.Linear(num_planes, num_classes)
    def _make_dense_layers(self, in_planes, nblock):
        layers = []
        for i in range(nblock):
            layers.append(DenseBottleneck(in_planes, self.growth_rate))
            in_planes += self.growth_rate
        return nn.Sequential(*layers)
    def forward(self, x):
        out = self.conv1(x)
        out = self.trans1(self.dense1(out))
        out = self.trans2(self.dense2(out))
        out = self.trans3(self.dense3(out))
        out = self.dense4(out)
        out = F.adaptive_avg_pool2d(F.relu(self.bn(out)), 1)  # reference: F.avg_pool2d(., 4)
        return self.linear(out.view(out.size(0), -1))

# xternalz/WideResNet-pytorch wideresnet.py (dropRate 0)
class WBlock(nn.Module):
    def __init__(self, in_planes, out_planes, stride):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_planes)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_planes, out_planes, kernel_size=3, stride=1, padding=1, bias=False)
        self.equalInOut = (in_planes == out_planes)
        self.convShortcut = (not self.equalInOut) and nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, padding=0, bias=False) or None
    def forward(self, x):
        if not self.equalInOut:
            x = self.relu1(self.bn1(x))
        else:
            out = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(out if self.equalInOut else x)))
        out = self.conv2(out)
        return torch.add(x if self.equalInOut else self.convShortcut(x), out)

class NetworkBlock(nn.Module):
    def __init__(self, nb_layers, in_planes, out_planes, stride):
        super().__init__()
        self.layer = nn.Sequential(*[WBlock(i == 0 and in_planes or out_planes, out_planes, i == 0 and stride or 1) for i in range(int(nb_layers))])
    def forward(self, x):
        return self.layer(x)

class WideResNet(nn.Module):
    def __init__(self, depth, in_ch, num_classes, widen_factor):
        super().__init__()
        nChannels = [16, 16*widen_factor, 32*widen_factor, 64*widen_factor]
        n = (depth - 4) / 6
        self.conv1 = nn.Conv2d(in_ch, nChannels[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.block1 = NetworkBlock(n, nChannels[0], nChannels[1], 1)
        self.block2 = NetworkBlock(n, nChannels[1], nChannels[2], 2)
        self.block3 = NetworkBlock(n, nChannels[2], nChannels[3], 2)
        self.bn1 = nn.BatchNorm2d(nChannels[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(nChannels[3], num_classes)
    def forward(self, x):
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = F.adaptive_avg_pool2d(self.relu(self.bn1(out)), 1)  # reference: F.avg_pool2d(out, 8)
        return self.fc(out.flatten(1))

def build(name, h, w, c, classes, widen=10):
    if name == 'lenet5': return LeNet(c, classes, 16 * (((h - 4) // 2 - 4) // 2) * (((w - 4) // 2 - 4) // 2))
    if name == 'smallcnn': return SmallCNN(c, classes)
    if name == 'resnet18': return ResNet(BasicBlock, [2, 2, 2, 2], c, classes)
    if name == 'resnet50': return ResNet(Bottleneck, [3, 4, 6, 3], c, classes)
    if name == 'vgg16': return VGG(c, classes)
    if name == 'densenet121': return DenseNet([6, 12, 24, 16], 32, c, classes)
    if name == 'wrn28': return WideResNet(28, c, classes, widen)
    raise ValueError(name)

def count(m):
    return sum(p.numel() for p in m.parameters() if p.requires_grad)

TF_TO_TORCH = {'kernel': 'weight', 'bias': 'bias', 'gamma': 'weight', 'beta': 'bias',
               'moving_mean': 'running_mean', 'moving_variance': 'running_var'}

def load(m, e, d):
    raw = np.fromfile(os.path.join(d, e['id'] + '.weights'), dtype='<f4')
    sd, new, off = m.state_dict(), {}, 0
    for wt in e['weights']:
        n = int(np.prod(wt['shape']))
        a = raw[off:off + n].reshape(wt['shape'])
        off += n
        layer, kind = wt['name'].rsplit('/', 1)
        if kind == 'kernel' and a.ndim == 4:
            a = a.transpose(3, 2, 0, 1)  # HWIO -> OIHW
        elif kind == 'kernel':
            a = a.T  # [in, out] -> [out, in]
            if e['model'] == 'lenet5' and layer == 'fc1':  # flatten order (h, w, c) -> (c, h, w)
                a = a.reshape(a.shape[0], -1, 16).transpose(0, 2, 1).reshape(a.shape[0], -1)
        key = layer + '.' + TF_TO_TORCH[kind]
        assert key in sd and tuple(sd[key].shape) == a.shape, (key, a.shape)
        new[key] = torch.from_numpy(np.ascontiguousarray(a))
    assert off == raw.size
    missing = [k for k in sd if k not in new and not k.endswith('num_batches_tracked')]
    assert not missing, missing
    m.load_state_dict(new, strict=False)

# Beside the tfjs tests: counts first, then one JSON line in (a forward pass to redo), one out.
d = sys.argv[1]
names = ['lenet5', 'smallcnn', 'resnet18', 'resnet50', 'vgg16', 'densenet121', 'wrn28']
print(json.dumps({'cifar10': {n: count(build(n, 32, 32, 3, 10)) for n in names}}), flush=True)
with torch.no_grad():
    for line in sys.stdin:
        e = json.loads(line)
        bsz, h, w, c = e['input']
        m = build(e['model'], h, w, c, e['classes'], e['widen']).eval()
        load(m, e, d)
        x = np.fromfile(os.path.join(d, e['id'] + '.input'), dtype='<f4').reshape(bsz, h, w, c)
        y = m(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
        for ext in ('.weights', '.input'):
            os.remove(os.path.join(d, e['id'] + ext))
        print(json.dumps({e['id']: {'params': count(m), 'logits': y.flatten().tolist()}}), flush=True)
`;

function noTorch(): false | string {
  const code =
    'import importlib.util as u, sys; sys.exit(0 if u.find_spec("torch") and u.find_spec("numpy") else 1)';
  const r = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} not runnable (${r.error.message})`;
  if (r.status !== 0) return `${PYTHON} lacks torch (apt-get install python3-torch)`;
  return false;
}

const NO_TORCH = noTorch();
const newDir = tempDirs('models');

/** The PyTorch side, running on the other core beside the tfjs tests (see TORCH_CODE). */
class TorchPeer {
  private readonly proc: ChildProcessWithoutNullStreams;
  private out = '';
  private err = '';
  private readonly done: Promise<number | null>;

  constructor(readonly dir: string) {
    this.proc = spawn(PYTHON, ['-c', TORCH_CODE, dir]);
    this.proc.stdout.setEncoding('utf8').on('data', (s: string) => (this.out += s));
    this.proc.stderr.setEncoding('utf8').on('data', (s: string) => (this.err += s));
    this.proc.stdin.on('error', () => {}); // a peer that died is reported by finish()
    this.done = new Promise((resolve) => this.proc.on('close', resolve));
  }

  /** Asks for a forward pass whose weights and input are already in `dir`. */
  send(entry: object): void {
    this.proc.stdin.write(JSON.stringify(entry) + '\n');
  }

  /** Waits for every answer: `cifar10` (the counts) and one per entry id. */
  async finish(): Promise<Record<string, unknown>> {
    this.proc.stdin.end();
    const code = await this.done;
    if (code !== 0) throw new Error(`python failed (${code}):\n${this.err}`);
    const results: Record<string, unknown> = {};
    for (const line of this.out.trim().split('\n')) Object.assign(results, JSON.parse(line));
    return results;
  }

  kill(): void {
    if (this.proc.exitCode === null) this.proc.kill();
  }
}

let torch: TorchPeer | null = null;

/** One forward pass kept for the PyTorch comparison. */
interface Entry {
  id: string;
  model: ModelName;
  widen: number;
  input: number[];
  classes: number;
  params: number;
  logits: number[];
}

type WeightNames = { name: string; shape: number[] }[];

function isBatchNorm(layer: tfl.layers.Layer): boolean {
  return layer.getClassName() === 'BatchNormalization';
}

/** Gives every BN layer random gamma, beta and moving statistics, so inference BN is no identity. */
function randomizeBatchNorms(model: tfl.LayersModel, seed: number): void {
  for (const layer of model.layers.filter(isBatchNorm)) {
    const c = layer.getWeights()[0].shape;
    seed += 4;
    const w = [
      tfc.randomUniform(c, 0.5, 1.5, 'float32', seed),
      tfc.randomUniform(c, -0.2, 0.2, 'float32', seed + 1),
      tfc.randomUniform(c, -0.2, 0.2, 'float32', seed + 2),
      tfc.randomUniform(c, 0.5, 1.5, 'float32', seed + 3),
    ];
    layer.setWeights(w);
    tfc.dispose(w);
  }
}

/** The model's weights, layer by layer, as `layer/kind` names and one float32 buffer. */
function exportWeights(model: tfl.LayersModel): { names: WeightNames; bytes: Buffer } {
  const names: WeightNames = [];
  const parts: Buffer[] = [];
  for (const layer of model.layers) {
    for (const w of layer.weights) {
      names.push({ name: w.originalName, shape: w.shape as number[] });
      const data = w.read().dataSync() as Float32Array;
      parts.push(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    }
  }
  return { names, bytes: Buffer.concat(parts) };
}

function f32(a: tfc.Tensor): Buffer {
  const d = a.dataSync() as Float32Array;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

before(async () => {
  await tfc.setBackend('cpu');
  if (!NO_TORCH) torch = new TorchPeer(await newDir());
});

after(() => torch?.kill());

describe('model zoo', () => {
  it('lists the models and refuses unknown names, bad shapes and bad options', () => {
    assert.deepEqual(
      [...ALL_MODELS],
      ['lenet5', 'smallcnn', 'resnet18', 'resnet50', 'vgg16', 'densenet121', 'wrn28', 'airbench94'],
    );
    const cifar = { height: 32, width: 32, channels: 3 };
    assert.throws(
      () => buildModel('resnet34', cifar, 10),
      (e: unknown) =>
        e instanceof OnepixelError &&
        e.message.includes("'resnet34'") &&
        e.message.includes(ALL_MODELS.join(', ')),
    );
    assert.throws(() => buildModel('lenet5', cifar, 0), OnepixelError);
    assert.throws(() => buildModel('lenet5', cifar, 2.5), OnepixelError);
    assert.throws(() => buildModel('smallcnn', { ...cifar, channels: 0 }, 10), OnepixelError);
    assert.throws(() => buildModel('smallcnn', { ...cifar, height: 31.5 }, 10), OnepixelError);
    assert.throws(() => buildModel('lenet5', { height: 15, width: 32, channels: 3 }, 10), /16/);
    assert.throws(() => buildModel('wrn28', cifar, 10, { widen: 0 }), /widen/);
    assert.throws(() => buildModel('smallcnn', cifar, 10, { seed: NaN }), /seed/);
  });

  for (const name of MODELS) {
    it(`${name}: trainable parameters for CIFAR-10 equal PyTorch's (${CIFAR10_PARAMS[name]})`, () => {
      const model = buildModel(name, { height: 32, width: 32, channels: 3 }, 10);
      try {
        assert.equal(trainableParamCount(model), CIFAR10_PARAMS[name]);
        // BN moving statistics are buffers in PyTorch: non-trainable here, not counted above.
        const bnChannels = model.layers
          .filter(isBatchNorm)
          .reduce((n, l) => n + (l.getWeights()[0].shape[0] as number), 0);
        assert.equal(model.countParams(), CIFAR10_PARAMS[name] + 2 * bnChannels);
        assert.deepEqual(model.outputs[0].shape, [null, 10]);
        assert.equal(model.layers[model.layers.length - 1].getConfig().activation, 'linear');
      } finally {
        model.dispose();
      }
    });
  }

  it('initialises like PyTorch, reproducibly with a seed', () => {
    const cifar = { height: 32, width: 32, channels: 3 };
    const a = buildModel('lenet5', cifar, 10, { seed: 7 });
    const b = buildModel('lenet5', cifar, 10, { seed: 7 });
    const c = buildModel('lenet5', cifar, 10, { seed: 8 });
    try {
      const wa = a.getWeights().map((t) => Array.from(t.dataSync()));
      assert.deepEqual(
        b.getWeights().map((t) => Array.from(t.dataSync())),
        wa,
      );
      assert.notDeepEqual(
        c.getWeights().map((t) => Array.from(t.dataSync())),
        wa,
      );
      // conv1 kernel and bias: U(±1/√fan_in), fan_in = 3·5·5 = 75.
      const bound = 1 / Math.sqrt(75);
      for (const w of a.getLayer('conv1').getWeights()) {
        const v = w.dataSync();
        assert.ok(v.every((x) => Math.abs(x) <= bound));
        assert.ok(Math.max(...v.map(Math.abs)) > 0.8 * bound);
      }
    } finally {
      [a, b, c].forEach((m) => m.dispose());
    }
    const w = buildModel('wrn28', { height: 8, width: 8, channels: 3 }, 10, { widen: 1, seed: 1 });
    try {
      // kaiming normal (fan-out): std √(2 / (16·9)) for conv1; fc bias zero.
      const v = w.getLayer('conv1').getWeights()[0].dataSync() as Float32Array;
      const std = Math.sqrt(v.reduce((s: number, x: number) => s + x * x, 0) / v.length);
      assert.ok(Math.abs(std / Math.sqrt(2 / 144) - 1) < 0.15, `std ${std}`);
      assert.ok(
        w
          .getLayer('fc')
          .getWeights()[1]
          .dataSync()
          .every((x) => x === 0),
      );
    } finally {
      w.dispose();
    }
  });

  it('saves and loads through tfjs-layers serialization (custom layer names, padding, adds)', async () => {
    for (const name of ['smallcnn', 'resnet18'] as const) {
      const model = buildModel(name, { height: 8, width: 8, channels: 3 }, 5, { seed: 4 });
      let artifacts: tfc.io.ModelArtifacts | undefined;
      await model.save(
        tfc.io.withSaveHandler(async (a) => {
          artifacts = a;
          return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
        }),
      );
      assert.ok(artifacts);
      const loaded = await tfl.loadLayersModel(tfc.io.fromMemory(artifacts));
      const x = tfc.randomNormal([2, 8, 8, 3], 0, 1, 'float32', 9);
      const [a, b] = [model.predict(x), loaded.predict(x)] as tfc.Tensor[];
      assert.deepEqual(Array.from(b.dataSync()), Array.from(a.dataSync()));
      tfc.dispose([x, a, b]);
      model.dispose();
      loaded.dispose();
    }
  });

  // Every family's BN comes from the same helper; ResNet-50 and DenseNet-121 (~1 s per call even at
  // 8×8) are left out here, and their inference-mode BN is checked against PyTorch below.
  it('updates BatchNorm moving statistics in training mode only, with momentum 0.1', () => {
    for (const name of ['smallcnn', 'resnet18', 'vgg16', 'wrn28'] as const) {
      const model = buildModel(name, { height: 8, width: 8, channels: 3 }, 10, {
        widen: 1,
        seed: 2,
      });
      try {
        const bns = model.layers.filter(isBatchNorm);
        const first = bns[0];
        const last = bns[bns.length - 1];
        const x = tfc.randomNormal([4, 8, 8, 3], 0, 1, 'float32', 5);
        const bnIn = tfl
          .model({ inputs: model.inputs, outputs: first.input as tfl.SymbolicTensor })
          .predict(x) as tfc.Tensor;
        const { mean, variance } = tfc.moments(bnIn, [0, 1, 2]);
        const stats = (l: tfl.layers.Layer) =>
          l
            .getWeights()
            .slice(2)
            .map((t) => Array.from(t.dataSync()));

        const before = [stats(first), stats(last)];
        tfc.dispose(model.apply(x, { training: false }) as tfc.Tensor);
        tfc.dispose(model.predict(x) as tfc.Tensor);
        assert.deepEqual([stats(first), stats(last)], before, `${name}: inference moved stats`);

        const y = model.apply(x, { training: true }) as tfc.Tensor;
        assert.deepEqual(y.shape, [4, 10]);
        const [mm, mv] = stats(first);
        const m = mean.dataSync();
        const v = variance.dataSync();
        for (let i = 0; i < mm.length; i++) {
          // PyTorch: running = 0.9·running + 0.1·batch (tfjs uses the biased batch variance).
          assert.ok(Math.abs(mm[i] - 0.1 * m[i]) < 1e-5, `${name} mean[${i}]`);
          assert.ok(Math.abs(mv[i] - (0.9 + 0.1 * v[i])) < 1e-5, `${name} var[${i}]`);
        }
        assert.notDeepEqual(stats(last)[0], before[1][0], `${name}: last BN mean unchanged`);
        tfc.dispose([x, bnIn, mean, variance, y]);
      } finally {
        model.dispose();
      }
    }
  });

  describe('forward passes (and PyTorch, when installed, on the same weights)', () => {
    const entries: Entry[] = [];

    /**
     * WRN-28-10 takes ~30 s for one CIFAR batch on the CPU backend, so the forwards use k = 2 or 1
     * (same code; k = 1 also has block1's identity shortcut). The big nets run one grayscale image
     * and skip 64×48 (several seconds each; their code is the same as at the other sizes).
     */
    const cases: {
      what: string;
      input: { height: number; width: number; channels: number };
      classes: number;
      widen: number;
      batches: [ModelName, number][];
    }[] = [
      {
        what: '32×32×3',
        input: { height: 32, width: 32, channels: 3 },
        classes: 10,
        widen: 2,
        batches: MODELS.map((m) => [m, 2]),
      },
      {
        what: '28×28×1',
        input: { height: 28, width: 28, channels: 1 },
        classes: 10,
        widen: 1,
        batches: MODELS.map((m) => [m, m === 'resnet50' || m === 'densenet121' ? 1 : 2]),
      },
      {
        what: '64×48×3',
        input: { height: 64, width: 48, channels: 3 },
        classes: 7,
        widen: 1,
        batches: [
          ['lenet5', 2],
          ['smallcnn', 2],
          ['resnet18', 1],
          ['vgg16', 1],
          ['wrn28', 1],
        ],
      },
    ];
    let seed = 100;
    for (const c of cases) {
      for (const [name, n] of c.batches) {
        const { height, width, channels } = c.input;
        const shape = [n, height, width, channels];
        it(`${name} on ${shape.join('×')} → [${n}, ${c.classes}]`, async () => {
          seed += 10;
          const model = buildModel(name, c.input, c.classes, { widen: c.widen, seed });
          try {
            randomizeBatchNorms(model, seed);
            const x = tfc.randomNormal(shape, 0, 1, 'float32', seed);
            const y = model.predict(x) as tfc.Tensor;
            assert.deepEqual(y.shape, [n, c.classes]);
            const logits = Array.from(y.dataSync());
            assert.ok(logits.every(Number.isFinite));
            if (torch) {
              const id = `${name}-${c.what}`.replace(/[^a-z0-9]+/gi, '_');
              const { names, bytes } = exportWeights(model);
              await writeFile(path.join(torch.dir, `${id}.weights`), bytes);
              await writeFile(path.join(torch.dir, `${id}.input`), f32(x));
              const entry = { id, model: name, widen: c.widen, input: shape, classes: c.classes };
              torch.send({ ...entry, weights: names });
              entries.push({ ...entry, params: trainableParamCount(model), logits });
            }
            tfc.dispose([x, y]);
          } finally {
            model.dispose();
          }
        });
      }
    }

    it(
      'PyTorch counts the same parameters and computes the same logits',
      { skip: NO_TORCH },
      async (t) => {
        assert.ok(torch);
        const out = await torch.finish();
        assert.deepEqual(out.cifar10, CIFAR10_PARAMS);
        assert.equal(
          entries.length,
          cases.reduce((k, c) => k + c.batches.length, 0),
        );
        for (const e of entries) {
          const r = out[e.id] as { params: number; logits: number[] };
          assert.equal(e.params, r.params, `${e.id}: parameter count`);
          const scale = Math.max(1, ...r.logits.map(Math.abs));
          const diff = Math.max(...r.logits.map((v, i) => Math.abs(v - e.logits[i])));
          t.diagnostic(
            `${e.id}: max |tfjs − torch| ${diff.toExponential(2)}, scale ${scale.toFixed(2)}`,
          );
          // float32 on both sides: within 1e-4 (of the logits' scale, where they exceed 1).
          assert.ok(diff <= 1e-4 * scale, `${e.id}: max |tfjs − torch| = ${diff} (scale ${scale})`);
        }
      },
    );
  });
});
