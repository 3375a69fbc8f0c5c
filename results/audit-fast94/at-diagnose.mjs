/* global console, process */
// Run as out/at-diagnose.mjs (copy it there after npm run build): its imports are ../dist/.
// Diagnosis of an adversarially trained fast94 checkpoint (issue 23): accuracy on the first N
// clean training images in eval mode (running statistics) and in train mode (batch statistics),
// and in eval mode on the same images after the training attack (N-FGSM from the final weights).
// A model that reads the attack's perturbation (label leaking) scores higher on attacked images
// than on clean ones; a batch-norm statistics fault shows as train mode far above eval mode.
import * as tf from '@tensorflow/tfjs-core';
import { loadCheckpoint } from '../dist/src/nn/checkpoint.js';
import { initEngine, usePrecision } from '../dist/src/nn/engine.js';
import { buildModel } from '../dist/src/nn/models/index.js';
import { openTrainingData } from '../dist/src/train/data.js';
import { jobConfig } from '../dist/src/train/job.js';
import { attackAt } from '../dist/src/train/loop.js';
import { fast94Attack, fast94AttackRng } from '../dist/src/train/fast94.js';
const [ckptDir, dataDir, nArg] = process.argv.slice(2);
const n = Number(nArg ?? 1000);
await initEngine('native');
const ck = await loadCheckpoint(ckptDir);
usePrecision(ck.meta.config.precision ?? 'fp32');
const data = await openTrainingData(dataDir);
const ds = data.train;
const model = buildModel('airbench94', ds, 10, { seed: ck.meta.config.seed });
for (const w of model.weights) {
  const s = ck.weights.find((v) => v.name === w.originalName);
  w.write(tf.tensor(s.values, s.shape));
}
const size = 3072;
const x = tf.tensor4d(Float32Array.from(ds.images.subarray(0, n * size), (v) => v / 255), [n, 32, 32, 3]);
const labels = Array.from(ds.labels.subarray(0, n));
const acc = (logits) => {
  const p = tf.argMax(logits, -1).dataSync();
  return p.reduce((c, v, i) => c + (v === labels[i] ? 1 : 0), 0) / n;
};
const evalClean = acc(model.apply(x, { training: false }));
const trainClean = acc(model.apply(x, { training: true }));
// the last epoch's attack settings (N-FGSM: start in [−2ε, 2ε], one step of ε, unprojected)
const cfg = jobConfig({ model: 'airbench94', preset: 'fast94', strategy: 'at', seed: ck.meta.config.seed }, 'native');
const a = attackAt(cfg.adversarial, 10_000, 39);
const adv = fast94Attack(model, x, labels, 10, { ...a, rng: fast94AttackRng(ck.meta.config.seed, 99) });
const evalAttacked = acc(model.apply(adv, { training: false }));
const trainAttacked = acc(model.apply(adv, { training: true }));
// the same noise without the gradient step: is it the step (label information) or the noise?
const noisy = fast94Attack(model, x, labels, 10, { ...a, steps: 0, rng: fast94AttackRng(ck.meta.config.seed, 99) });
const evalNoisy = acc(model.apply(noisy, { training: false }));
console.log(JSON.stringify({ checkpoint: ckptDir, data: dataDir, images: n, evalClean, trainClean, evalAttacked, trainAttacked, evalNoiseOnly: evalNoisy }));
