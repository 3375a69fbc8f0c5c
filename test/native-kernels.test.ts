// Every native kernel, forward and gradient, against tfjs' cpu backend on the shapes, strides and
// paddings the models use (and a few more). Tolerances, relative (‖native − cpu‖∞ / ‖cpu‖∞):
// - 1e-5 for convolutions, products and reductions' forward passes (float32 sums in another order:
//   ~1e-6 over the few hundred to few thousand terms here);
// - 1e-4 for gradients (longer sums, as in test/engine.test.ts);
// - 1e-6 for element-wise ops (exactly rounded both sides; exp/log within an ulp).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../src/nn/engine.js';
import { agree, noNative, rand, relativeError, usingNative } from './native-helpers.js';
import { on } from './helpers.js';
import { batchNormTrain } from '../src/nn/backends/native/batchnorm.js';

const skip = noNative();
const FWD = 1e-5;
const GRAD = 1e-4;
const ELT = 1e-6;

/** y, and the gradients of Σ y·r (r random) with respect to each input. */
function withGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): tf.Tensor[] {
  const y = f(...inputs);
  const r = rand(y.shape, 99);
  const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), r)))(inputs);
  return [y, ...grads];
}

interface Conv {
  n: number;
  h: number;
  w: number;
  cin: number;
  cout: number;
  k: number;
  stride: number;
  pad: 'same' | 'valid';
}
const convs: Conv[] = [
  { n: 3, h: 32, w: 32, cin: 3, cout: 16, k: 3, stride: 1, pad: 'same' }, // first layer
  { n: 2, h: 34, w: 34, cin: 8, cout: 16, k: 3, stride: 2, pad: 'valid' }, // ResNet downsample
  { n: 2, h: 16, w: 16, cin: 8, cout: 16, k: 1, stride: 2, pad: 'valid' }, // shortcut
  { n: 4, h: 32, w: 32, cin: 3, cout: 6, k: 5, stride: 1, pad: 'valid' }, // LeNet
  { n: 2, h: 11, w: 9, cin: 5, cout: 7, k: 3, stride: 2, pad: 'same' }, // odd sizes
  { n: 1, h: 8, w: 8, cin: 16, cout: 32, k: 3, stride: 1, pad: 'same' },
  { n: 2, h: 13, w: 13, cin: 4, cout: 4, k: 5, stride: 2, pad: 'same' },
];
for (const c of convs) {
  const name = `${c.k}×${c.k}/${c.stride} ${c.pad} [${c.n},${c.h},${c.w},${c.cin}]→${c.cout}`;
  test(`native Conv2D and its gradients: ${name}`, { skip }, () =>
    agree(
      name,
      () =>
        withGrads(
          (x, w) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad),
          [rand([c.n, c.h, c.w, c.cin], 1), rand([c.k, c.k, c.cin, c.cout], 2)],
        ),
      GRAD,
      ['Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'],
    ),
  );
}

test('native FusedConv2D (bias + ReLU) and its gradients', { skip }, () =>
  agree(
    'fused conv',
    () =>
      withGrads(
        (x, w, b) =>
          tf.fused.conv2d({
            x: x as tf.Tensor4D,
            filter: w as tf.Tensor4D,
            strides: 1,
            pad: 'same',
            bias: b,
            activation: 'relu',
          }),
        [rand([2, 10, 10, 4], 3), rand([3, 3, 4, 6], 4), rand([6], 5)],
      ),
    GRAD,
    ['FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'Sum'],
  ),
);

test(
  'native FusedConv2D and _FusedMatMul, linear: run directly, with lazy gradients',
  { skip },
  async () => {
    // (linear fused ops skip tfjs' custom gradient on native: src/nn/backends/native/fused-grads.ts)
    for (const pad of [
      'same',
      [
        [0, 0],
        [1, 2],
        [2, 0],
        [0, 0],
      ],
    ] as const)
      for (const bias of [true, false])
        await agree(
          `fused conv, pad ${JSON.stringify(pad)}, bias ${bias}`,
          () =>
            withGrads(
              (x, w, b) =>
                tf.fused.conv2d({
                  x: x as tf.Tensor4D,
                  filter: w as tf.Tensor4D,
                  strides: 2,
                  pad: pad as 'same',
                  bias: b,
                }),
              [rand([2, 9, 9, 4], 3), rand([3, 3, 4, 6], 4), ...(bias ? [rand([6], 5)] : [])],
            ),
          GRAD,
          ['FusedConv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter'],
        );
    for (const tb of [false, true])
      await agree(
        `fused matmul, transposeB ${tb}`,
        () =>
          withGrads(
            (a, b, bias) => tf.fused.matMul({ a, b, bias, transposeB: tb }),
            [rand([16, 40], 10), rand(tb ? [12, 40] : [40, 12], 11), rand([12], 12)],
          ),
        GRAD,
        ['_FusedMatMul', 'BatchMatMul', 'Sum'],
      );
  },
);

test(
  'an input gradient through fused convolutions and dense layers runs no weight gradients',
  { skip },
  async () => {
    await initEngine('native');
    const before = tf.memory().numTensors;
    const [w, b, m, mb] = [
      rand([5, 5, 3, 6], 1),
      rand([6], 2),
      rand([6 * 4 * 4, 10], 3),
      rand([10], 4),
    ];
    const x = rand([2, 8, 8, 3], 5);
    const loss = (input: tf.Tensor) => {
      const y = tf.fused.conv2d({
        x: input as tf.Tensor4D,
        filter: w as tf.Tensor4D,
        strides: 1,
        pad: 'valid',
        bias: b,
      });
      return tf.sum(tf.fused.matMul({ a: tf.reshape(y, [2, -1]), b: m, bias: mb }));
    };
    const info = await tf.profile(() => tf.grad(loss)(x));
    const count = (k: string) => info.kernels.filter((e) => e.name === k).length;
    assert.equal(count('Conv2DBackpropInput'), 1);
    assert.equal(count('Conv2DBackpropFilter'), 0);
    assert.equal(count('BatchMatMul'), 1, 'the dense layer: its input gradient only');
    assert.equal(count('Sum'), 1, 'no bias gradients (the one Sum is the loss)');
    tf.dispose(info.result as tf.Tensor);
    tf.dispose([w, b, m, mb, x]);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  },
);

for (const [ta, tb] of [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
] as const) {
  test(`native MatMul, transposeA ${ta}, transposeB ${tb}, and its gradients`, { skip }, () =>
    agree(
      'matmul',
      () =>
        withGrads(
          (a, b) => tf.matMul(a, b, ta, tb),
          [rand(ta ? [33, 17] : [17, 33], 6), rand(tb ? [9, 33] : [33, 9], 7)],
        ),
      GRAD,
      ['BatchMatMul'],
    ),
  );
}

test(
  'native BatchMatMul with a broadcast batch, and _FusedMatMul with bias + ReLU',
  { skip },
  async () => {
    // (products under 2^23 multiply-adds run on one thread: this one runs on all)
    await agree(
      'large matmul',
      () => [tf.matMul(rand([256, 512], 13), rand([512, 130], 14))],
      FWD,
      ['BatchMatMul'],
    );
    // (tfjs has no gradient for a broadcast batch: the forward pass only)
    await agree('batch matmul', () => [tf.matMul(rand([3, 5, 7], 8), rand([7, 4], 9))], FWD, [
      'BatchMatMul',
    ]);
    await agree(
      'batch matmul',
      () =>
        withGrads((a, b) => tf.matMul(a, b, false, true), [rand([3, 5, 7], 8), rand([3, 6, 7], 9)]),
      GRAD,
      ['BatchMatMul'],
    );
    await agree(
      'fused matmul',
      () =>
        withGrads(
          (a, b, bias) => tf.fused.matMul({ a, b, bias, activation: 'relu' }),
          [rand([16, 400], 10), rand([400, 120], 11), rand([120], 12)],
        ),
      GRAD,
      ['_FusedMatMul', 'BatchMatMul', 'NativeReluGrad'],
    );
  },
);

for (const [kind, shape, size, stride, pad] of [
  ['max', [2, 32, 32, 6], 2, 2, 'same'],
  ['max', [3, 7, 9, 4], 2, 2, 'same'], // odd: ceil mode
  ['max', [2, 8, 8, 3], 3, 1, 'same'],
  ['avg', [2, 32, 32, 6], 2, 2, 'same'],
  ['avg', [2, 4, 4, 16], 4, 4, 'valid'],
] as const) {
  test(
    `native ${kind} pooling ${size}/${stride} ${pad} [${shape}] and its gradient`,
    { skip },
    () =>
      agree(
        `${kind} pool`,
        () =>
          withGrads(
            (x) =>
              kind === 'max'
                ? tf.maxPool(x as tf.Tensor4D, size, stride, pad)
                : tf.avgPool(x as tf.Tensor4D, size, stride, pad),
            [rand([...shape], 13)],
          ),
        GRAD,
        kind === 'max' ? ['MaxPool', 'MaxPoolGrad'] : ['AvgPool', 'AvgPoolGrad'],
      ),
  );
}

test(
  'native average pooling of odd sizes (`same`): the true gradient of its forward pass',
  { skip },
  async () => {
    // Checked by hand, batched (test/avgpool-grad.test.ts checks every backend, tfjs' own
    // AvgPoolGrad included, which divided by the whole window: src/nn/backends/avgpool-grad.ts).
    const shape = [3, 7, 9, 4];
    await agree(
      'avg pool odd',
      () => [tf.avgPool(rand(shape, 13) as tf.Tensor4D, 2, 2, 'same')],
      FWD,
      ['AvgPool'],
    );
    const dy = rand([3, 4, 5, 4], 14);
    const dyv = dy.dataSync();
    await initEngine('native');
    const dx = await usingNative('avg pool odd gradient', ['AvgPoolGrad'], () =>
      tf
        .grad((x: tf.Tensor) => tf.sum(tf.mul(tf.avgPool(x as tf.Tensor4D, 2, 2, 'same'), dy)))(
          rand(shape, 13),
        )
        .dataSync(),
    );
    for (let n = 0; n < 3; n++)
      for (let i = 0; i < 7; i++)
        for (let j = 0; j < 9; j++)
          for (let c = 0; c < 4; c++) {
            const count = (i >= 6 ? 1 : 2) * (j >= 8 ? 1 : 2);
            const want = dyv[((n * 4 + (i >> 1)) * 5 + (j >> 1)) * 4 + c] / count;
            const got = dx[((n * 7 + i) * 9 + j) * 4 + c];
            assert.ok(
              Math.abs(got - want) <= 1e-6,
              `dx[${n},${i},${j},${c}] = ${got}, want ${want}`,
            );
          }
  },
);

test(
  'native max pooling sends the gradient of tied maxima (ReLU zeros) where cpu does',
  { skip },
  () =>
    agree(
      'tied max pool',
      () =>
        withGrads(
          (x) => tf.maxPool(tf.relu(x) as tf.Tensor4D, 2, 2, 'same'),
          [rand([2, 6, 6, 3], 14)],
        ),
      GRAD,
      ['Relu', 'MaxPool', 'MaxPoolGrad', 'NativeReluGrad'],
    ),
);

test('native FusedBatchNorm (given statistics) and its gradients', { skip }, () =>
  agree(
    'batch norm inference',
    () =>
      withGrads(
        (x, m, v, o, s) => tf.batchNorm(x, m, tf.abs(v), o, s, 1e-5),
        [rand([2, 5, 5, 8], 15), rand([8], 16), rand([8], 17), rand([8], 18), rand([8], 19)],
      ),
    GRAD,
    ['FusedBatchNorm'],
  ),
);

for (const [op, f, kernel] of [
  ['add', tf.add, 'Add'],
  ['sub', tf.sub, 'Sub'],
  ['mul', tf.mul, 'Multiply'],
  ['div', (a: tf.Tensor, b: tf.Tensor) => tf.div(a, tf.add(tf.abs(b), 0.5)), 'RealDiv'],
  ['maximum', tf.maximum, 'Maximum'],
  ['minimum', tf.minimum, 'Minimum'],
  ['squaredDifference', tf.squaredDifference, 'SquaredDifference'],
] as const) {
  for (const [sa, sb] of [
    [
      [2, 3, 4, 5],
      [2, 3, 4, 5],
    ],
    [[2, 3, 4, 5], [5]],
    [[5], [2, 3, 4, 5]],
    [
      [2, 1, 4, 1],
      [1, 3, 1, 5],
    ],
    [[64, 300], []],
    [
      [128, 10],
      [128, 1],
    ],
  ]) {
    // tfjs differentiates maximum, minimum and squaredDifference only without broadcasting.
    const grads = sa.join() === sb.join() || ['add', 'sub', 'mul', 'div'].includes(op);
    const g = f as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
    test(`native ${op} [${sa}] with [${sb}]${grads ? ' and its gradients' : ''}`, { skip }, () =>
      agree(
        `${op}`,
        () =>
          grads ? withGrads(g, [rand(sa, 20), rand(sb, 21)]) : [g(rand(sa, 20), rand(sb, 21))],
        GRAD,
        [kernel],
      ),
    );
  }
}

for (const [op, f, kernel] of [
  ['relu', tf.relu, 'Relu'],
  ['step', (x: tf.Tensor) => tf.step(x, 0.3), 'Step'],
  ['exp', tf.exp, 'Exp'],
  ['log', (x: tf.Tensor) => tf.log(tf.add(tf.abs(x), 0.1)), 'Log'],
  ['neg', tf.neg, 'Neg'],
  ['square', tf.square, 'Square'],
  ['sqrt', (x: tf.Tensor) => tf.sqrt(tf.add(tf.abs(x), 0.1)), 'Sqrt'],
] as const) {
  test(`native ${op} and its gradient`, { skip }, async () => {
    await agree(op, () => [(f as (x: tf.Tensor) => tf.Tensor)(rand([3, 50000], 22))], ELT, [
      kernel,
    ]);
    await agree(
      `${op} gradient`,
      () => withGrads(f as (x: tf.Tensor) => tf.Tensor, [rand([4, 7], 23)]),
      GRAD,
      [kernel],
    );
  });
}

test(
  'native Sum and Mean over many narrow rows (a bias gradient: blocks, flushes, a remainder)',
  { skip },
  () =>
    agree(
      'narrow column sums',
      () =>
        [6, 16, 7].flatMap((c) => [
          tf.sum(rand([7, 9, 11, c], 30), [0, 1, 2]),
          tf.mean(rand([5, 9, 11, c], 31), [0, 1, 2]),
        ]),
      FWD,
      ['Sum', 'Mean'],
    ),
);

for (const [axis, keepDims, contiguous] of [
  [[0, 1, 2], false, true],
  [-1, false, true],
  [1, true, true],
  [[0, 2], false, false], // not contiguous: the cpu fallback
  [null, false, true],
] as const) {
  test(
    `native Sum / Mean / Max over ${JSON.stringify(axis)}, keepDims ${keepDims}, and gradients`,
    { skip },
    () =>
      agree(
        'reductions',
        () => {
          const ax = axis === null ? undefined : (axis as number | number[]);
          return [
            ...withGrads((x) => tf.sum(x, ax, keepDims), [rand([4, 6, 5, 70], 24)]),
            ...withGrads((x) => tf.mean(x, ax, keepDims), [rand([4, 6, 5, 70], 25)]),
            ...withGrads((x) => tf.max(x, ax, keepDims), [rand([4, 6, 5, 70], 26)]),
          ];
        },
        FWD * 10,
        // (not contiguous: the cpu kernels, while the loss's Sum over all axes and the gradients'
        // element-wise ops stay native)
        contiguous ? ['Sum', 'Mean', 'Max'] : ['!Mean', '!Max', 'Multiply'],
      ),
  );
}

test(
  'native Softmax, LogSoftmax and the loss the training loop uses, with gradients',
  { skip },
  () =>
    agree(
      'softmax',
      () => [
        ...withGrads((x) => tf.softmax(x), [rand([128, 10], 27)]),
        ...withGrads((x) => tf.logSoftmax(x), [rand([128, 10], 28)]),
        ...withGrads(
          (x) => tf.neg(tf.mean(tf.sum(tf.mul(rand([128, 10], 29), tf.logSoftmax(x)), -1))),
          [tf.mul(rand([128, 10], 30), 20)],
        ),
      ],
      GRAD,
      ['Softmax', 'Max', 'Sub', 'Exp', 'Sum', 'Log', 'Multiply'],
    ),
);

test('native AddN', { skip }, () =>
  agree(
    'addN',
    () => [tf.addN([rand([3, 40000], 31), rand([3, 40000], 32), rand([3, 40000], 33)])],
    ELT,
    ['AddN'],
  ),
);

test('native PadV2 and Slice, and their gradients (each other)', { skip }, () =>
  agree(
    'pad and slice',
    () => [
      ...withGrads(
        (x) =>
          tf.pad(
            x,
            [
              [0, 0],
              [1, 2],
              [2, 1],
              [0, 0],
            ],
            0.5,
          ),
        [rand([2, 5, 4, 3], 34)],
      ),
      ...withGrads((x) => tf.slice(x, [1, 1, 0, 1], [1, 3, 4, 2]), [rand([2, 5, 4, 3], 35)]),
    ],
    ELT,
    ['PadV2', 'Slice'],
  ),
);

for (const shape of [
  [4, 6, 6, 16],
  [8, 32, 32, 16], // a first layer's size: wasm's float32 statistics are ~1e-3 off here
]) {
  test(
    `native training batch norm [${shape}] (batch statistics) and its one-call gradient match tfjs moments + batchNorm on cpu`,
    { skip },
    async () => {
      const inputs = () => [
        tf.add(tf.mul(rand(shape, 40), 3), 1.5),
        tf.add(rand([16], 41), 1),
        rand([16], 42),
      ];
      const reference = () => {
        const f = (x: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => {
          const { mean, variance } = tf.moments(x, [0, 1, 2]);
          return tf.batchNorm(x, mean, variance, o, s, 1e-5);
        };
        const [x, s, o] = inputs();
        const { mean, variance } = tf.moments(x, [0, 1, 2]);
        return [...withGrads(f, [x, s, o]), mean, variance];
      };
      const native = () => {
        const f = (x: tf.Tensor, s: tf.Tensor, o: tf.Tensor) => batchNormTrain(x, s, o, 1e-5)[0];
        const [x, s, o] = inputs();
        const [, mean, variance] = batchNormTrain(x, s, o, 1e-5);
        return [...withGrads(f, [x, s, o]), mean, variance];
      };
      const expected = await on('cpu', reference);
      const actual = await usingNative(
        'batch norm training',
        ['NativeBatchNormTrain', 'NativeBatchNormGrad'],
        () => on('native', native),
      );
      for (let i = 0; i < expected.length; i++) {
        const err = relativeError(actual[i], expected[i]);
        assert.ok(err <= GRAD, `output ${i}: relative error ${err.toExponential(2)} > ${GRAD}`);
      }
    },
  );
}
