/* global performance, console, process */
// A model's bf16 training step on native (batch B, 2 warm-up steps, then S timed ones), for
// ONEDNN_VERBOSE=1 runs: `verbose-rates.py` reads the log. Usage: node verbose-step.mjs MODEL B S
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, usePrecision } from '../../dist/src/nn/engine.js';
import { buildModel } from '../../dist/src/nn/models/index.js';
import { SGD } from '../../dist/src/nn/optim.js';
const [name = 'resnet18', b = '128', s = '3'] = process.argv.slice(2);
const n = Number(b);
await initEngine('native');
usePrecision('bf16');
const m = buildModel(name, { height: 32, width: 32, channels: 3 }, 10, { seed: 1 });
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
step();
step();
console.log('--- timed steps');
const t0 = performance.now();
for (let i = 0; i < Number(s); i++) step();
const ms = (performance.now() - t0) / Number(s);
console.log(JSON.stringify({ model: name, batch: n, steps: Number(s), msPerStep: ms, imgPerS: (1000 * n) / ms }));
