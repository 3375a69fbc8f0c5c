/**
 * Error-minimizing noise on the webgpu backend (here: Dawn's OpenGL path over Mesa's llvmpipe, so
 * the runs are tiny). EM reads every tensor asynchronously, which is what lets it run on a GPU
 * engine at all. From the same seed it makes the same noise as the native backend (or cpu, where
 * native is not built), up to the sign steps that float rounding flips where a gradient is near
 * zero. (wasm is not the reference: its gradients route differently at ties, so 15 % of its
 * sample-wise noise differs from cpu's, native's and webgpu's alike.)
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readCifar10 } from '../src/data/cifar.js';
import type { Dataset } from '../src/data/dataset.js';
import { initEngine, nativeAvailable } from '../src/nn/engine.js';
import { EM_DEFAULTS, type EmConfig, generateEm } from '../src/noise/em.js';
import { CIFAR_DIR, headOf, webgpuSkipReason } from './helpers.js';

const skip = await webgpuSkipReason();
const EPS = 8 / 255;

const small: EmConfig = {
  ...EM_DEFAULTS,
  steps: 4,
  trainSteps: 3,
  batchSize: 32,
  noiseBatch: 32,
  maxRounds: 1,
  stopAccuracy: 1,
  seed: 5,
};

/** Share of the noise values that agree to 1e-5 (a flipped sign step moves one by 2·step). */
function agreement(a: Float32Array, b: Float32Array): number {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (Math.abs(a[i] - b[i]) < 1e-5) same++;
  return same / a.length;
}

describe('EM on webgpu', { skip }, () => {
  let train: Dataset;
  before(async () => {
    train = headOf((await readCifar10(CIFAR_DIR)).train, 64);
  });

  const reference = nativeAvailable() ? 'native' : 'cpu';
  // Class-wise steps sum a class's gradients over the batch: more rounding, more flipped signs.
  for (const [mode, least] of [
    ['samplewise', 0.99],
    ['classwise', 0.97],
  ] as const)
    it(`${mode}: the same noise and round record as ${reference}, within ε`, async () => {
      const config = { ...small, mode };
      await initEngine(reference);
      const cpu = await generateEm(train, config);
      await initEngine('webgpu');
      const gpu = await generateEm(train, config);
      assert.equal(gpu.finished, true);
      assert.equal(gpu.state.stopped, 'max-rounds');
      for (const v of gpu.noise) assert.ok(Math.abs(v) <= EPS + 1e-6, `|δ| = ${Math.abs(v)}`);
      for (let i = 0; i < train.images.length; i++) {
        const x = train.images[i] / 255 + gpu.noise[i];
        assert.ok(x >= -1e-6 && x <= 1 + 1e-6, `pixel ${i}: ${x}`);
      }
      const share = agreement(cpu.noise, gpu.noise);
      assert.ok(share >= least, `only ${(share * 100).toFixed(2)} % of the noise agrees`);
      const [a, b] = [cpu.state.history[0], gpu.state.history[0]];
      assert.ok(Math.abs(a.trainLoss - b.trainLoss) < 1e-4 * a.trainLoss, 'surrogate loss');
      assert.ok(
        Math.abs(a.accuracy - b.accuracy) <= 2 / 64,
        `accuracy ${a.accuracy} ${b.accuracy}`,
      );
    });
});
