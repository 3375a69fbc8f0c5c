/* global performance, console, process */
// LeNet-5 bf16 training steps on native, batch 128: median img/s of 300 steps after 30 warm-up
// steps, as one JSON line (for wait-policy.sh; the environment decides libgomp's wait policy).
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, usePrecision } from '../../dist/src/nn/engine.js';
import { buildModel } from '../../dist/src/nn/models/index.js';
import { SGD } from '../../dist/src/nn/optim.js';
const n = 128;
await initEngine('native');
usePrecision('bf16');
const m = buildModel('lenet5', { height: 32, width: 32, channels: 3 }, 10, { seed: 1 });
const vars = m.trainableWeights.map((w) => w.read());
const sgd = new SGD(vars, { momentum: 0.9, weightDecay: 5e-4 });
const x = tf.randomUniform([n, 32, 32, 3]);
const y = tf.oneHot(tf.randomUniform([n], 0, 10, 'int32'), 10);
const loss = () => tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(m.apply(x, { training: true }))), -1)));
const step = () =>
  tf.tidy(() => {
    const { value, grads } = tf.variableGrads(loss, vars);
    sgd.step(grads, 0.01);
    value.dataSync();
  });
const times = [];
for (let i = 0; i < 330; i++) {
  const t0 = performance.now();
  step();
  if (i >= 30) times.push((performance.now() - t0) / 1000);
}
times.sort((a, b) => a - b);
console.log(JSON.stringify({ side: 'native', imgPerS: Math.round(n / times[times.length >> 1]), env: { OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY, GOMP_SPINCOUNT: process.env.GOMP_SPINCOUNT } }));
