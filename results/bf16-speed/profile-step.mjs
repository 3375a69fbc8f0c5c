/* global performance, console, process */
// Per-kernel profile of one model's training step, fp32 and bf16 alternating (issue 22); copy to out/.
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, usePrecision } from '../dist/src/nn/engine.js';
import { nativeProfile, resetNativeProfile, setNativeProfiling } from '../dist/src/nn/backends/native/index.js';
import { buildModel } from '../dist/src/nn/models/index.js';
import { SGD } from '../dist/src/nn/optim.js';
const name = process.argv[2] ?? 'resnet18', n = Number(process.argv[3] ?? 64);
await initEngine('native');
const m = buildModel(name, { height: 32, width: 32, channels: 3 }, 10, { seed: 1 });
const vars = m.trainableWeights.map((w) => w.read());
const sgd = new SGD(vars, { momentum: 0.9, weightDecay: 5e-4 });
const x = tf.randomUniform([n, 32, 32, 3]); const y = tf.oneHot(tf.randomUniform([n], 0, 10, 'int32'), 10);
const step = () => tf.tidy(() => { const { value, grads } = tf.variableGrads(() => tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(m.apply(x, { training: true }))), -1))), vars); sgd.step(grads, 0.01); value.dataSync(); });
for (const p of ['fp32', 'bf16', 'fp32', 'bf16']) {
  usePrecision(p); step(); setNativeProfiling(true); resetNativeProfile();
  const t0 = performance.now(); step(); step(); const dt = (performance.now() - t0) / 2000;
  const prof = nativeProfile(); setNativeProfiling(false);
  console.log(p, `${(n / dt).toFixed(1)} img/s`, prof.slice(0, 8).map(([k, v]) => `${k} ${(v.ms / 2).toFixed(0)}ms`).join(', '));
}
