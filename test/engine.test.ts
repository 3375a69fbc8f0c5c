// The training engine: wasm gradients agree with tfjs' pure-JS cpu backend, and backend names
// that this build cannot run fail with a message that says what can.
//
// Tolerance: relative error ‖wasm − cpu‖∞ / ‖cpu‖∞ ≤ 1e-4 for every gradient (float32 sums of at
// most a few thousand terms differ by ~1e-6 relative between the two backends' summation orders).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { BACKENDS, initEngine, type BackendName } from '../src/nn/engine.js';
import {
  COMPOSED_KERNELS,
  CPU_FALLBACK_KERNELS,
  HEAP_KERNEL_NAMES,
  registerWasmTrainingKernels,
} from '../src/nn/backends/wasm/kernels.js';
import { createParallelTrainer } from '../src/nn/backends/wasm/parallel.js';
import { OnepixelError } from '../src/errors.js';
import { on, random } from './helpers.js';

const TOLERANCE = 1e-4;

function size(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i] - expected[i]));
    scale = Math.max(scale, Math.abs(expected[i]));
  }
  return diff / Math.max(scale, 1e-30);
}

function assertClose(actual: Float32Array[], expected: Float32Array[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: number of gradients`);
  for (let i = 0; i < expected.length; i++) {
    const err = relativeError(actual[i], expected[i]);
    assert.ok(
      err <= TOLERANCE,
      `${what}, gradient ${i}: relative error ${err.toExponential(2)} > ${TOLERANCE}`,
    );
  }
}

interface ConvCase {
  batch: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: number;
  stride: 1 | 2;
  pad: 'same' | 'valid' | number;
}

const convCases: ConvCase[] = [];
for (const k of [1, 3, 5]) {
  for (const stride of [1, 2] as const) {
    for (const pad of ['same', 'valid'] as const) {
      convCases.push({
        batch: 2 + ((k + stride) % 3),
        h: 9,
        w: 7,
        cin: 3,
        cout: 5,
        k,
        stride,
        pad,
      });
    }
  }
}
// Even sizes with stride 2 and 'same' (32 → 16 has its padding all at the bottom/right), 11 → 6,
// sizes whose last rows a valid conv never reads, explicit padding.
convCases.push({ batch: 2, h: 32, w: 32, cin: 4, cout: 6, k: 3, stride: 2, pad: 'same' });
convCases.push({ batch: 2, h: 32, w: 32, cin: 4, cout: 6, k: 1, stride: 2, pad: 'same' });
convCases.push({ batch: 3, h: 11, w: 11, cin: 6, cout: 4, k: 5, stride: 2, pad: 'same' });
convCases.push({ batch: 2, h: 12, w: 10, cin: 2, cout: 3, k: 3, stride: 2, pad: 'valid' });
convCases.push({ batch: 2, h: 9, w: 9, cin: 1, cout: 8, k: 1, stride: 2, pad: 'same' });
convCases.push({ batch: 4, h: 8, w: 8, cin: 3, cout: 2, k: 3, stride: 1, pad: 1 });
convCases.push({ batch: 2, h: 9, w: 8, cin: 3, cout: 4, k: 3, stride: 2, pad: 2 });
convCases.push({ batch: 2, h: 15, w: 13, cin: 3, cout: 6, k: 5, stride: 1, pad: 'valid' });

for (const c of convCases) {
  const name = `conv ${c.k}×${c.k} stride ${c.stride} pad ${c.pad}, [${c.batch},${c.h},${c.w},${c.cin}] → ${c.cout}`;
  test(`wasm conv gradients match cpu: ${name}`, async () => {
    const xShape = [c.batch, c.h, c.w, c.cin];
    const wShape = [c.k, c.k, c.cin, c.cout];
    const xv = random(size(xShape), 1);
    const wv = random(size(wShape), 2);
    const compute = (): tf.Tensor[] => {
      const x = tf.tensor4d(xv, xShape as [number, number, number, number]);
      const w = tf.tensor4d(wv, wShape as [number, number, number, number]);
      const f = (a: tf.Tensor, b: tf.Tensor) =>
        tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, c.stride, c.pad as 'same' | 'valid');
      const y = f(x, w);
      const dy = tf.tensor(random(y.size, 3), y.shape);
      const [dx, dw] = tf.grads(f)([x, w], dy);
      return [y, dx, dw];
    };
    const expected = await on('cpu', compute);
    const actual = await on('wasm', compute);
    assertClose(actual, expected, name);
  });
}

test('wasm backprop kernels also take NCHW tensors (called directly: forward wasm convs are NHWC)', async () => {
  const xShape: [number, number, number, number] = [2, 3, 9, 8]; // N, C, H, W
  const wShape: [number, number, number, number] = [3, 3, 3, 4];
  const dyShape: [number, number, number, number] = [2, 4, 5, 4]; // stride 2, 'same'
  const xv = random(size(xShape), 12);
  const wv = random(size(wShape), 13);
  const dyv = random(size(dyShape), 14);
  const attrs = { strides: 2, pad: 'same', dataFormat: 'NCHW', dimRoundingMode: undefined };
  const compute = (): tf.Tensor[] => {
    const x = tf.tensor4d(xv, xShape);
    const w = tf.tensor4d(wv, wShape);
    const dy = tf.tensor4d(dyv, dyShape);
    const dw = tf.engine().runKernel('Conv2DBackpropFilter', { x, dy }, {
      ...attrs,
      filterShape: wShape,
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
    const dx = tf.engine().runKernel('Conv2DBackpropInput', { dy, filter: w }, {
      ...attrs,
      inputShape: xShape,
    } as unknown as tf.NamedAttrMap) as tf.Tensor;
    return [dw, dx];
  };
  const expected = await on('cpu', compute);
  const actual = await on('wasm', compute);
  assertClose(actual, expected, 'NCHW');
});

test('wasm depthwise-conv and gather gradients (cpu fallbacks) match cpu', async () => {
  const xv = random(2 * 7 * 7 * 3, 4);
  const wv = random(3 * 3 * 3 * 2, 5);
  const tv = random(10 * 4, 6);
  const compute = (): tf.Tensor[] => {
    const x = tf.tensor4d(xv, [2, 7, 7, 3]);
    const w = tf.tensor4d(wv, [3, 3, 3, 2]);
    const table = tf.tensor2d(tv, [10, 4]);
    const idx = tf.tensor1d([1, 3, 3, 9, 0], 'int32');
    const f = (a: tf.Tensor, b: tf.Tensor) =>
      tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, 2, 'same');
    const [dx, dw] = tf.grads((a, b) => tf.sum(tf.square(f(a, b))))([x, w]);
    const dt = tf.grad((t: tf.Tensor) => tf.sum(tf.square(tf.gather(t, idx))))(table);
    return [dx, dw, dt];
  };
  const expected = await on('cpu', compute);
  const actual = await on('wasm', compute);
  assertClose(actual, expected, 'depthwise/gather');
});

test('wasm Tile (heap loop) matches cpu, float32 and int32, ranks 1–5', async () => {
  const cases: [number[], number[]][] = [
    [[5], [3]],
    [
      [2, 3],
      [1, 4],
    ],
    [
      [1, 1, 1, 7],
      [3, 5, 4, 1],
    ],
    [
      [2, 1, 3],
      [2, 3, 1],
    ],
    [
      [2, 3, 1, 2, 1],
      [1, 2, 3, 1, 4],
    ],
    [
      [3, 1],
      [1, 6],
    ],
  ];
  const compute = (): tf.Tensor[] =>
    cases.flatMap(([shape, reps], i) => {
      const f = tf.tensor(random(size(shape), 20 + i), shape);
      const n = tf.tensor(
        Int32Array.from(random(size(shape), 40 + i), (v) => Math.round(v * 100)),
        shape,
        'int32',
      );
      return [tf.tile(f, reps), tf.tile(n, reps)];
    });
  const expected = await on('cpu', compute);
  const actual = await on('wasm', compute);
  assert.deepEqual(actual, expected);
});

test('wasm max/avg pooling gradients match cpu, with ties, padding and overlapping windows', async () => {
  const cases: {
    shape: [number, number, number, number];
    size: number;
    stride: number;
    pad: 'same' | 'valid';
  }[] = [
    { shape: [2, 8, 8, 3], size: 2, stride: 2, pad: 'valid' },
    { shape: [3, 9, 7, 4], size: 2, stride: 2, pad: 'same' },
    { shape: [2, 9, 9, 5], size: 3, stride: 2, pad: 'same' },
    { shape: [2, 7, 8, 2], size: 3, stride: 1, pad: 'same' },
    { shape: [2, 11, 11, 3], size: 3, stride: 2, pad: 'valid' },
  ];
  const compute = (): tf.Tensor[] =>
    cases.flatMap((c, i) => {
      // Values on a coarse grid, so that windows hold ties (the gradient goes to the first maximum).
      const x = tf.tensor4d(
        random(size(c.shape), 60 + i).map((v) => Math.round(v * 3)),
        c.shape,
      );
      const f = (a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, c.size, c.stride, c.pad);
      const g = (a: tf.Tensor) => tf.avgPool(a as tf.Tensor4D, c.size, c.stride, c.pad);
      const dy = tf.tensor(random(size(f(x).shape), 80 + i), f(x).shape);
      return [tf.grad(f)(x, dy), tf.grad(g)(x, dy)];
    });
  const expected = await on('cpu', compute);
  const actual = await on('wasm', compute);
  assertClose(actual, expected, 'pooling');
});

/**
 * conv → BN → relu → maxpool → conv (stride 2) → BN → relu → avgpool → conv 1×1 (bias) → relu →
 * dense, softmax cross-entropy. Convolutions followed by BN have no bias: its gradient is zero in
 * exact arithmetic, so two backends' rounding noise would not compare.
 */
function smallModel(): tfl.LayersModel {
  const m = tfl.sequential();
  m.add(
    tfl.layers.conv2d({
      inputShape: [11, 11, 3],
      filters: 6,
      kernelSize: 3,
      padding: 'same',
      useBias: false,
    }),
  );
  m.add(tfl.layers.batchNormalization());
  m.add(tfl.layers.reLU());
  m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  m.add(
    tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, padding: 'same', useBias: false }),
  );
  m.add(tfl.layers.batchNormalization());
  m.add(tfl.layers.activation({ activation: 'relu' }));
  m.add(tfl.layers.averagePooling2d({ poolSize: 2, padding: 'same' }));
  m.add(tfl.layers.conv2d({ filters: 5, kernelSize: 1, activation: 'relu' }));
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: 10 }));
  return m;
}

test('wasm gradients of a conv+BN+pool+dense model match cpu, every parameter', async () => {
  const batch = 4;
  const xv = random(batch * 11 * 11 * 3, 7);
  const labels = [3, 1, 4, 1];
  let weights: { values: Float32Array; shape: number[] }[] = [];
  const compute = (): tf.Tensor[] => {
    const model = smallModel();
    if (weights.length === 0) {
      weights = model
        .getWeights()
        .map((w, i) => ({ values: random(w.size, 100 + i), shape: w.shape }));
    }
    model.setWeights(weights.map((w) => tf.tensor(w.values, w.shape)));
    const x = tf.tensor4d(xv, [batch, 11, 11, 3]);
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
    const { value, grads } = tf.variableGrads(
      () =>
        tf.losses.softmaxCrossEntropy(
          y,
          model.apply(x, { training: true }) as tf.Tensor,
        ) as tf.Scalar,
      model.trainableWeights.map((w) => w.read() as tf.Variable),
    );
    const out = [
      value,
      ...model.trainableWeights.map((w) => grads[(w.read() as tf.Variable).name]),
    ];
    model.dispose();
    return out;
  };
  const expected = await on('cpu', compute);
  const actual = await on('wasm', compute);
  // The loss, then conv kernel, BN γ β, conv kernel, BN γ β, conv kernel + bias, dense kernel + bias.
  assert.equal(expected.length, 1 + 10);
  assertClose(actual, expected, 'model');
});

test('initEngine is idempotent and registers the training kernels', async () => {
  assert.equal(await initEngine('wasm'), 'wasm');
  assert.equal(await initEngine('wasm'), 'wasm');
  assert.equal(await initEngine('wasm'), 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  const names = registerWasmTrainingKernels();
  for (const k of [...COMPOSED_KERNELS, ...HEAP_KERNEL_NAMES, ...CPU_FALLBACK_KERNELS])
    assert.ok(names.includes(k), k);
  assert.deepEqual(registerWasmTrainingKernels(), names);
  assert.deepEqual([...BACKENDS], ['auto', 'wasm', 'cpu', 'webgpu', 'native']);
});

test('initEngine refuses unknown backend names, saying what is valid', async () => {
  await assert.rejects(initEngine('tpu' as BackendName), (e: unknown) => {
    assert.ok(e instanceof OnepixelError);
    assert.match(e.message, /unknown backend 'tpu'/);
    assert.match(e.message, /valid backends: 'auto', 'wasm', 'cpu', 'webgpu', 'native'/);
    return true;
  });
  // A refused name leaves the current backend in place.
  assert.equal(await initEngine('wasm'), 'wasm');
});

test('data-parallel gradients from two wasm workers equal the whole-batch gradients', async () => {
  assert.equal(await initEngine('wasm'), 'wasm');
  const batch = 6;
  const shape = [batch, 12, 12, 3];
  const xv = random(size(shape), 9);
  const labels = Int32Array.from([0, 3, 1, 4, 2, 3]);
  const model = tfl.sequential();
  model.add(
    tfl.layers.conv2d({ inputShape: [12, 12, 3], filters: 4, kernelSize: 3, activation: 'relu' }),
  );
  model.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  model.add(tfl.layers.conv2d({ filters: 6, kernelSize: 3, strides: 2, padding: 'same' }));
  model.add(tfl.layers.flatten());
  model.add(tfl.layers.dense({ units: 5 }));
  model.setWeights(model.getWeights().map((w, i) => tf.tensor(random(w.size, 200 + i), w.shape)));
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  let expected: Float32Array[] = [];
  tf.tidy(() => {
    const x = tf.tensor4d(xv, shape as [number, number, number, number]);
    const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 5);
    const { value, grads } = tf.variableGrads(
      () => tf.losses.softmaxCrossEntropy(y, model.apply(x) as tf.Tensor) as tf.Scalar,
      vars,
    );
    expected = [value, ...vars.map((v) => grads[v.name])].map((t) =>
      Float32Array.from(t.dataSync()),
    );
  });
  const trainer = await createParallelTrainer(model, { workers: 2 });
  try {
    assert.equal(trainer.workers, 2);
    assert.equal(trainer.backend, 'wasm');
    const { loss, grads } = await trainer.gradients({ x: xv, shape, labels, classes: 5 });
    const actual = [
      Float32Array.of(loss),
      ...vars.map((v) => Float32Array.from(grads[v.name].dataSync())),
    ];
    tf.dispose(Object.values(grads));
    assertClose(actual, expected, 'data-parallel');
    // A step changes the main model's weights and keeps the workers usable.
    const before = Float32Array.from(vars[0].dataSync());
    const optimizer = tf.train.sgd(0.01);
    const l1 = await trainer.step({ x: xv, shape, labels, classes: 5 }, optimizer);
    const l2 = await trainer.step({ x: xv, shape, labels, classes: 5 }, optimizer);
    assert.ok(Number.isFinite(l1) && l2 < l1, `loss ${l1} → ${l2}`);
    assert.notDeepEqual(Float32Array.from(vars[0].dataSync()), before);
  } finally {
    await trainer.close();
    model.dispose();
  }
});

test('data-parallel training carries batch-norm moving statistics back to the main model', async () => {
  assert.equal(await initEngine('wasm'), 'wasm');
  const shape = [4, 6, 6, 2];
  const xv = random(size(shape), 11).map((v) => v + 0.5);
  const model = tfl.sequential();
  model.add(
    tfl.layers.conv2d({ inputShape: [6, 6, 2], filters: 3, kernelSize: 3, useBias: false }),
  );
  model.add(tfl.layers.batchNormalization({ momentum: 0.5 }));
  model.add(tfl.layers.flatten());
  model.add(tfl.layers.dense({ units: 3 }));
  const movingMean = model.layers[1].getWeights()[2];
  assert.deepEqual(Array.from(movingMean.dataSync()), [0, 0, 0]);
  const trainer = await createParallelTrainer(model, { workers: 2 });
  try {
    const labels = Int32Array.from([0, 1, 2, 1]);
    const loss = await trainer.step({ x: xv, shape, labels, classes: 3 }, tf.train.sgd(0.01));
    assert.ok(Number.isFinite(loss));
    const after = Array.from(model.layers[1].getWeights()[2].dataSync());
    assert.ok(
      after.some((v) => v !== 0),
      `moving mean still ${after}`,
    );
  } finally {
    await trainer.close();
    model.dispose();
  }
});
