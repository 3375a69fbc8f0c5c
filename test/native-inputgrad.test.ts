// PGD's gradient, with respect to the input alone, in inference mode: on native its forward pass
// runs kernels that keep only what the input's gradient needs (src/nn/backends/native/fused-grads.ts, the
// batch-norm layer in src/nn/backends/native/batchnorm.ts). The gradient must equal cpu's, and no weight
// gradient may run.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../src/nn/engine.js';
import { buildModel, type ModelName } from '../src/nn/models/index.js';
import { BN_INFER, BN_INFER_RELU } from '../src/nn/backends/native/batchnorm.js';
import { RELU_GRAD } from '../src/nn/backends/native/kernels-layout.js';
import { CONV_INPUT_GRAD_ONLY } from '../src/nn/backends/native/kernels-conv.js';
import { agree, noNative, rand } from './native-helpers.js';

const skip = noNative();

/** The input gradient of the mean cross-entropy of `name` (seeded) on a small random batch. */
function inputGrad(name: ModelName, size: number): tf.Tensor[] {
  const model = buildModel(name, { height: size, width: size, channels: 3 }, 10, { seed: 1 });
  const x = tf.add(tf.mul(rand([4, size, size, 3], 7), 0.5), 0.5);
  const labels = tf.oneHot(tf.tensor1d([1, 4, 7, 0], 'int32'), 10);
  const loss = (input: tf.Tensor) =>
    tf.losses.softmaxCrossEntropy(labels, model.apply(input, { training: false }) as tf.Tensor);
  const g = tf.grad(loss)(x);
  model.dispose();
  return [g];
}

// The native kernels each model's input gradient must run (and the filter gradient it must not).
const CONV = [CONV_INPUT_GRAD_ONLY, 'Conv2DBackpropInput', '!Conv2DBackpropFilter'];
const HEAD = ['_FusedMatMul', 'BatchMatMul', 'Exp', 'Log'];
const BN = [BN_INFER_RELU, BN_INFER, 'Mean'];

for (const [name, size, kernels] of [
  ['lenet5', 32, [...CONV, ...HEAD, 'MaxPool', 'MaxPoolGrad', RELU_GRAD]],
  ['smallcnn', 16, [...CONV, ...HEAD, BN_INFER_RELU, 'Mean', 'MaxPool', 'MaxPoolGrad']],
  ['resnet18', 9, [...CONV, ...HEAD, ...BN, 'Add', 'Relu', RELU_GRAD, 'PadV2']],
] as const)
  test(`native input gradient of ${name} in inference mode equals cpu's`, { skip }, () =>
    agree(name, () => inputGrad(name, size), 1e-4, kernels),
  );

test(
  'the input gradient of ResNet-18 computes no weight gradient on native',
  { skip },
  async () => {
    await initEngine('native');
    const before = tf.memory().numTensors;
    const info = await tf.profile(() => tf.tidy(() => inputGrad('resnet18', 9)[0]));
    const ran = new Set(info.kernels.map((k) => k.name));
    assert.ok(ran.has(CONV_INPUT_GRAD_ONLY), 'convolutions that keep the filter only');
    assert.ok(ran.has(BN_INFER_RELU), 'batch norms (with their ReLU) that keep no input');
    assert.ok(ran.has('Conv2DBackpropInput'));
    assert.ok(!ran.has('Conv2DBackpropFilter'), 'a filter gradient ran');
    tf.dispose(info.result as tf.Tensor);
    assert.equal(tf.memory().numTensors, before, 'tensors leaked');
  },
);
