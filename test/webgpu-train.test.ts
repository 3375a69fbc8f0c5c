/**
 * The training loop on the webgpu backend (on a machine without a GPU: Dawn's OpenGL path over
 * Mesa's llvmpipe, slow, so the runs are tiny): it follows the wasm run from the same seed, a
 * stopped run resumes to exactly the uninterrupted result (weights and optimiser state are read
 * back asynchronously), and worker threads are refused. Kernel-level agreement with the cpu
 * backend is in model-gradients.test.ts.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { readCifar10 } from '../src/data/cifar.js';
import type { Dataset } from '../src/data/dataset.js';
import { initEngine } from '../src/nn/engine.js';
import { type TrainConfig, train } from '../src/train/loop.js';
import { CIFAR_DIR, headOf, webgpuSkipReason } from './helpers.js';

const skip = await webgpuSkipReason();

const head = headOf;

const cfg: TrainConfig = {
  model: 'lenet5',
  strategy: 'standard',
  adversarial: null,
  epochs: 1,
  batchSize: 64,
  lr: 0.05,
  momentum: 0.9,
  weightDecay: 5e-4,
  schedule: 'onecycle',
  milestones: [],
  gamma: 0.1,
  seed: 3,
  workers: 1,
};

describe('training on webgpu', { skip }, () => {
  let data: { train: Dataset; test: Dataset };
  let tmp: string;
  before(async () => {
    const c = await readCifar10(CIFAR_DIR);
    data = { train: head(c.train, 256), test: head(c.test as Dataset, 100) };
    tmp = await mkdtemp(join(os.tmpdir(), 'onepixel-webgpu-'));
  });

  it('follows the wasm run from the same seed (LeNet-5, one epoch of 256 real images)', async () => {
    await initEngine('wasm');
    const wasm = await train(cfg, data, null);
    await initEngine('webgpu');
    const gpu = await train(cfg, data, null);
    for (const [i, a] of wasm.history.entries()) {
      const b = gpu.history[i];
      // Float sums in another order, 4 SGD steps: the losses stay within 1e-4 (relative).
      assert.ok(
        Math.abs(a.trainLoss - b.trainLoss) < 1e-4 * a.trainLoss,
        `epoch ${i + 1}: loss ${a.trainLoss} (wasm) vs ${b.trainLoss} (webgpu)`,
      );
      assert.ok(Math.abs(a.testAccuracy - b.testAccuracy) <= 0.01, `epoch ${i + 1} accuracy`);
    }
  });

  it('a stopped run resumes to exactly the uninterrupted result', async () => {
    await initEngine('webgpu');
    const whole = await train(cfg, data, null);
    const dir = join(tmp, 'ckpt');
    let steps = 0;
    const stopped = await train(cfg, data, dir, { shouldStop: () => ++steps > 2 });
    assert.equal(stopped.finished, false);
    const resumed = await train(cfg, data, dir);
    const strip = (h: typeof whole.history) =>
      h.map(({ seconds: _s, imagesPerSecond: _i, ...r }) => r);
    assert.deepEqual(strip(resumed.history), strip(whole.history));
  });

  it('refuses worker threads, which are a wasm feature', async () => {
    await initEngine('webgpu');
    await assert.rejects(
      train({ ...cfg, workers: 2 }, data, null),
      /--workers 2: worker threads are for the wasm backend; the webgpu backend trains in one thread/,
    );
  });

  it('cleans up', async () => {
    await rm(tmp, { recursive: true, force: true });
  });
});
