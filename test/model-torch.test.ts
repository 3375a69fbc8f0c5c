// One training step of LeNet-5, smallcnn and ResNet-18 against PyTorch (test/torch_models.py,
// torch 1.13 on the CPU), from the same weights and the same batch: 8 real CIFAR-10 training
// images (pixels / 255) and their labels. In training mode (batch norm on batch statistics), both
// sides compute the mean softmax cross-entropy, every trainable parameter's gradient, the batch
// norms' moving statistics after the forward pass, and the parameters after one SGD step (lr 0.1,
// momentum 0.9, weight decay 5e-4 on every parameter: src/nn/optim.ts is torch.optim.SGD's update,
// the decay added to the gradient). Layouts are converted in the script: HWIO / OIHW filters,
// [in, out] / [out, in] dense kernels, NHWC / NCHW inputs, LeNet's fc1 rows (flattened (h, w, c)
// here, (c, h, w) in torch).
//
// The reference is torch in float64 (near-exact); torch in float32 is compared too, for the
// gradients. Error of a tensor: max |tfjs − torch| / max |torch| (the loss: relative). Tolerances:
// 1e-5 for the loss, moving statistics and stepped weights, 1e-4 for gradients, against float64;
// against torch float32, 1e-4 (LeNet-5, smallcnn) and 2e-2 (ResNet-18). Measured against float64
// (gradients / moving statistics / stepped weights; loss): LeNet-5 native 7.5e-7 / 0 / 8.2e-8;
// 6.1e-8, cpu 3.4e-7 / 0 / 8.2e-8; 6.1e-8; smallcnn native 4.9e-6 / 1.2e-7 / 1.3e-6; 3.6e-9;
// ResNet-18 native 7.6e-6 / 6.6e-7 / 3.7e-6; 1.2e-7. Torch float32 against float64: 1.5e-6,
// 8.1e-6, 8.5e-3 (a near tie, below).
//
// Why not any batch: with millions of activations, some ReLU input (a batch norm's output) lies
// within float32 noise of 0, and a float32 computation then takes the other branch than the exact
// one, which moves the gradients of that layer's bias/offset and of everything before it by 1e-3
// to 1e-2. On images 0–7, native smallcnn hits one (1.6e-3 on features.15/beta against float64,
// torch float32 4.5e-6), and torch float32's ResNet-18 does (8.5e-3 against float64, native
// 7.6e-6); on images 8–15 native ResNet-18 does (1.1e-2, torch float32 5.9e-6). Each model uses a
// batch where native has none (FROM below); the tfjs side is deterministic for a thread count.
//
// The moving variance differs by design: tfjs-layers averages the biased batch variance, torch the
// unbiased one (× n/(n−1), n = batch × height × width at that layer); torch's value is converted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/nn/engine.js';
import { buildModel, type ModelName } from '../src/nn/models/index.js';
import { SGD } from '../src/nn/optim.js';
import { cifarDataset, cifarRecords, PYTHON, tempDirs } from './helpers.js';
import { noNative, usingNative } from './native-helpers.js';

const BATCH = 8;
const LR = 0.1;
const MOMENTUM = 0.9;
const WEIGHT_DECAY = 5e-4;
const SCRIPT = path.resolve('test/torch_models.py');

/** Largest error allowed per tensor, against torch in float64 (and float32, for gradients). */
interface Tolerance {
  loss: number;
  grads: number;
  moving: number;
  stepped: number;
  grads32: number;
}
const TOLERANCE: Record<'lenet5' | 'smallcnn' | 'resnet18', Tolerance> = {
  lenet5: { loss: 1e-5, grads: 1e-4, moving: 1e-5, stepped: 1e-5, grads32: 1e-4 },
  smallcnn: { loss: 1e-5, grads: 1e-4, moving: 1e-5, stepped: 1e-5, grads32: 1e-4 },
  resnet18: { loss: 1e-5, grads: 1e-4, moving: 1e-5, stepped: 1e-5, grads32: 2e-2 },
};
/** The first image of each model's batch (see above). */
const FROM: Record<keyof typeof TOLERANCE, number> = { lenet5: 0, smallcnn: 8, resnet18: 0 };
/** The native kernels each model's step must run (besides the element-wise ones). */
const KERNELS: Record<keyof typeof TOLERANCE, string[]> = {
  lenet5: ['FusedConv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'MaxPool', 'MaxPoolGrad'],
  smallcnn: ['FusedConv2D', 'Conv2DBackpropFilter', 'MaxPool', 'MaxPoolGrad'],
  resnet18: ['FusedConv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput'],
};
const BATCH_NORM_KERNELS = ['NativeBatchNormReluTrain', 'NativeBatchNormGrad'];

function noTorch(): false | string {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} not runnable (${r.error.message})`;
  return r.status === 0 ? false : `${PYTHON} lacks torch or numpy`;
}
const NO_TORCH = noTorch();
const newDir = tempDirs('torch');

interface Step {
  loss: number;
  grads: Float32Array[];
  /** Moving mean and variance of every batch norm, in weight order. */
  moving: Float32Array[];
  stepped: Float32Array[];
}

interface Batch {
  x: Float32Array;
  labels: number[];
}

const batches = new Map<number, Promise<Batch>>();
function cifarBatch(from: number): Promise<Batch> {
  let b = batches.get(from);
  if (b === undefined) {
    b = (async () => {
      const ds = cifarDataset(await cifarRecords('data_batch_1.bin', BATCH, from), []);
      return { x: Float32Array.from(ds.images, (v) => v / 255), labels: Array.from(ds.labels) };
    })();
    batches.set(from, b);
  }
  return b;
}

function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1))) as tf.Scalar;
}

const isMoving = (name: string) => /\/moving_(mean|variance)$/.test(name);

/**
 * The tfjs step on `backend`, from `weights` when given (else the seeded build's, written into
 * `weights`); `manifest` receives the names and shapes for the script, `counts` each batch norm's
 * n (batch × height × width).
 */
async function tfjsStep(
  backend: 'native' | 'cpu',
  name: ModelName,
  b: Batch,
  weights: Float32Array[],
  manifest: { name: string; shape: number[] }[],
  counts: Map<string, number>,
  trainable: string[],
): Promise<Step> {
  assert.equal(await initEngine(backend), backend);
  const m = buildModel(name, { height: 32, width: 32, channels: 3 }, 10, { seed: 5 });
  if (weights.length > 0)
    tf.tidy(() =>
      m.setWeights(m.weights.map((w, i) => tf.tensor(weights[i], w.shape as number[]))),
    );
  else
    for (const w of m.weights) {
      weights.push(Float32Array.from(w.read().dataSync()));
      manifest.push({ name: w.originalName, shape: w.shape as number[] });
    }
  for (const layer of m.layers)
    if (layer.getClassName() === 'BatchNormalization') {
      const [, h, w] = (layer.input as tfl.SymbolicTensor).shape as number[];
      counts.set(layer.name, BATCH * h * w);
    }
  trainable.length = 0;
  trainable.push(...m.trainableWeights.map((w) => w.originalName));
  const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
  const sgd = new SGD(vars, { momentum: MOMENTUM, weightDecay: WEIGHT_DECAY });
  const loss = tf.tidy(() => {
    const x = tf.tensor4d(b.x, [BATCH, 32, 32, 3]);
    const y = tf.oneHot(tf.tensor1d(b.labels, 'int32'), 10);
    const { value, grads } = tf.variableGrads(
      () => crossEntropy(m.apply(x, { training: true }) as tf.Tensor, y),
      vars,
    );
    const g = vars.map((v) => Float32Array.from(grads[v.name].dataSync()));
    sgd.step(grads, LR);
    return { value: value.dataSync()[0], g };
  });
  const out: Step = {
    loss: loss.value,
    grads: loss.g,
    moving: m.weights
      .filter((w) => isMoving(w.originalName))
      .map((w) => Float32Array.from(w.read().dataSync())),
    stepped: vars.map((v) => Float32Array.from(v.dataSync())),
  };
  sgd.dispose();
  m.dispose();
  return out;
}

/** The same step in PyTorch (test/torch_models.py), in float64 and in float32. */
async function torchStep(
  name: ModelName,
  b: Batch,
  weights: Float32Array[],
  manifest: { name: string; shape: number[] }[],
  trainable: string[],
): Promise<{ exact: Step; f32: Step }> {
  const dir = await newDir();
  const f32 = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  await writeFile(path.join(dir, 'weights.f32'), Buffer.concat(weights.map(f32)));
  await writeFile(path.join(dir, 'x.f32'), f32(b.x));
  const spec = {
    model: name,
    classes: 10,
    input: [BATCH, 32, 32, 3],
    labels: b.labels,
    weights: manifest,
    trainable,
    lr: LR,
    momentum: MOMENTUM,
    weight_decay: WEIGHT_DECAY,
  };
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(spec));
  const r = spawnSync(PYTHON, [SCRIPT, dir], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `torch_models.py failed:\n${r.stderr}`);
  const read = async (file: string, shapes: number[][]) => {
    const buf = await readFile(path.join(dir, file));
    const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const total = shapes.reduce((s, sh) => s + sh.reduce((p, q) => p * q, 1), 0);
    assert.equal(all.length, total, `${file}: ${all.length} values, expected ${total}`);
    let off = 0;
    return shapes.map((sh) => {
      const n = sh.reduce((p, q) => p * q, 1);
      off += n;
      return all.slice(off - n, off);
    });
  };
  const shapeOf = (n: string) => (manifest.find((w) => w.name === n) as { shape: number[] }).shape;
  const movingShapes = manifest.filter((w) => isMoving(w.name)).map((w) => w.shape);
  const out = JSON.parse(await readFile(path.join(dir, 'out.json'), 'utf8')) as Record<
    string,
    number
  >;
  const load = async (bits: '64' | '32'): Promise<Step> => ({
    loss: out[`loss${bits}`],
    grads: await read(`grads${bits}.f32`, trainable.map(shapeOf)),
    moving: await read(`running${bits}.f32`, movingShapes),
    stepped: await read(`stepped${bits}.f32`, trainable.map(shapeOf)),
  });
  return { exact: await load('64'), f32: await load('32') };
}

function maxAbs(v: Float32Array): number {
  let m = 0;
  for (const x of v) m = Math.max(m, Math.abs(x));
  return m;
}

/** max |a − b| / max |b|. */
function relErr(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d / Math.max(maxAbs(b), 1e-30);
}

/**
 * torch's running variance as tfjs-layers computes it: torch averages the unbiased batch variance
 * v·n/(n−1) into the initial moving value r0 with weight 0.1, tfjs the biased v.
 */
function biasedVariance(torchVar: Float32Array, initial: Float32Array, n: number): Float32Array {
  return torchVar.map((r, i) => 0.9 * initial[i] + (r - 0.9 * initial[i]) * ((n - 1) / n));
}

const skip = NO_TORCH;
const models: [keyof typeof TOLERANCE, ('native' | 'cpu')[]][] = [
  ['lenet5', ['native', 'cpu']],
  ['smallcnn', ['native']],
  ['resnet18', ['native']],
];
for (const [name, backends] of models)
  for (const backend of backends) {
    const why = backend === 'native' ? noNative() : false;
    test(
      `${name} on ${backend}: one training step (loss, every gradient, moving statistics, SGD) equals PyTorch's`,
      { skip: skip || why },
      async (t) => {
        const b = await cifarBatch(FROM[name]);
        const weights: Float32Array[] = [];
        const manifest: { name: string; shape: number[] }[] = [];
        const counts = new Map<string, number>();
        const trainable: string[] = [];
        const kernels =
          backend === 'cpu'
            ? []
            : [...KERNELS[name], 'addon:sgd', ...(name === 'lenet5' ? [] : BATCH_NORM_KERNELS)];
        const run = () => tfjsStep(backend, name, b, weights, manifest, counts, trainable);
        const ours = await (backend === 'native' ? usingNative(name, kernels, run) : run());
        const { exact, f32 } = await torchStep(name, b, weights, manifest, trainable);
        const tol = TOLERANCE[name];
        // torch's running variances, made biased (see above); the means as they are
        const movingNames = manifest.filter((w) => isMoving(w.name)).map((w) => w.name);
        const want = exact.moving.map((v, i) => {
          const wName = movingNames[i];
          if (!wName.endsWith('variance')) return v;
          const init = weights[manifest.findIndex((w) => w.name === wName)];
          const n = counts.get(wName.slice(0, wName.lastIndexOf('/')));
          assert.ok(n !== undefined, `${wName}: no batch-norm layer`);
          return biasedVariance(v, init, n);
        });
        const lossErr = Math.abs(ours.loss - exact.loss) / Math.abs(exact.loss);
        /** Each tensor's error, checked, and the largest with its name. */
        const check = (
          what: string,
          a: Float32Array[],
          ref: Float32Array[],
          names: string[],
          tolerance: number,
        ) => {
          let worst: [number, string] = [0, '-'];
          a.forEach((v, i) => {
            const e = relErr(v, ref[i]);
            if (e > worst[0]) worst = [e, names[i]];
            assert.ok(e <= tolerance, `${what}, ${names[i]}: ${e.toExponential(2)} > ${tolerance}`);
          });
          return `${worst[0].toExponential(2)} (${worst[1]})`;
        };
        t.diagnostic(
          `${name} on ${backend}, images ${FROM[name]}–${FROM[name] + BATCH - 1}: loss ` +
            `${ours.loss.toFixed(6)}, float64 ${exact.loss.toFixed(6)} (${lossErr.toExponential(2)})`,
        );
        assert.ok(lossErr <= tol.loss, `loss: ${ours.loss} vs torch ${exact.loss}`);
        const g = check('gradient', ours.grads, exact.grads, trainable, tol.grads);
        const mv = check('moving statistic', ours.moving, want, movingNames, tol.moving);
        const st = check('after the step', ours.stepped, exact.stepped, trainable, tol.stepped);
        const g32 = check(
          'gradient vs torch float32',
          ours.grads,
          f32.grads,
          trainable,
          tol.grads32,
        );
        const t32 = exact.grads.map((v, i) => relErr(f32.grads[i], v));
        t.diagnostic(
          `against float64: gradients ${g}, moving ${mv}, stepped ${st}; against torch float32: ` +
            `gradients ${g32}; torch float32 against float64: ${Math.max(...t32).toExponential(2)}`,
        );
        // (Not a comparison of two untouched copies: the step moved every parameter.)
        ours.stepped.forEach((v, i) =>
          assert.ok(relErr(v, weights[manifest.findIndex((w) => w.name === trainable[i])]) > 0),
        );
      },
    );
  }
