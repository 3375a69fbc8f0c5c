/**
 * Training on real CIFAR-10 subsets: protection shows as a clear accuracy gap, a stopped run
 * resumes to exactly the uninterrupted result, and bad runs stop with clear messages.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { readCifar10 } from '../src/data/cifar.js';
import type { Dataset } from '../src/data/dataset.js';
import { initEngine } from '../src/nn/engine.js';
import { searchDataset } from '../src/shortcut/search.js';
import { applyShortcut } from '../src/shortcut/apply.js';
import { type TrainConfig, train } from '../src/train/loop.js';
import { configFrom, parseStrategy } from '../src/cli/train.js';
import { openAuditData } from '../src/audit/matrix.js';
import { writeNpy } from '../src/data/npy.js';
import { streamOf } from '../src/data/dataset.js';
import { CIFAR_DIR, headOf } from './helpers.js';

const head = headOf;

const base: TrainConfig = {
  model: 'lenet5',
  strategy: 'standard',
  adversarial: null,
  epochs: 4,
  batchSize: 64,
  lr: 0.05,
  momentum: 0.9,
  weightDecay: 5e-4,
  schedule: 'onecycle',
  milestones: [],
  gamma: 0.1,
  seed: 1,
};

describe('train', () => {
  let clean: { train: Dataset; test: Dataset };
  let prot: { train: Dataset; test: Dataset };
  let tmp: string;
  before(async () => {
    await initEngine('wasm');
    const c = await readCifar10(CIFAR_DIR);
    const trainSet = head(c.train, 6000);
    const test = head(c.test as Dataset, 1000); // the exact first 1000 test records
    clean = { train: trainSet, test };
    // Four pixels per class: a shortcut a test-sized run learns within 5 epochs. The one-pixel
    // result on all of CIFAR-10 (quick preset, with crops) is recorded in bench/RESULTS.md.
    prot = { train: applyShortcut(trainSet, searchDataset(trainSet, { pixels: 4 })), test };
    tmp = await mkdtemp(join(os.tmpdir(), 'onepixel-train-'));
  });

  it('protected data is learned through its pixel: a clear clean-test gap (LeNet-5, 6,000 real images, 4-pixel OPS, 5 epochs)', async () => {
    // No augmentation and 4 pixels: the switch to the shortcut then comes within a test's budget.
    const cfg: TrainConfig = { ...base, epochs: 5, strategy: 'none' };
    const a = await train(cfg, clean, null);
    const b = await train(cfg, prot, null);
    const accClean = a.history.at(-1)?.testAccuracy ?? 0;
    const accProt = b.history.at(-1)?.testAccuracy ?? 1;
    const trainProt = b.history.at(-1)?.trainAccuracy ?? 0;
    assert.equal(a.history.length, 5);
    console.log(`clean ${accClean}, protected ${accProt} (train ${trainProt})`);
    assert.ok(accClean >= 0.3, `clean model reaches ${accClean}`);
    assert.ok(accClean - accProt >= 0.12, `gap clean ${accClean} vs protected ${accProt}`);
    assert.ok(trainProt - accProt >= 0.5, `protected train ${trainProt} vs clean test ${accProt}`);
    await writeFile(join(tmp, 'gap.json'), JSON.stringify({ accClean, accProt, trainProt }));
  });

  for (const workers of [1, 2])
    it(`a stopped run resumes to exactly the uninterrupted result (${workers} worker(s))`, async () => {
      const cfg = { ...base, epochs: 2, workers };
      const small = { train: head(clean.train, 1280), test: head(clean.test, 300) };
      const whole = await train(cfg, small, null);
      const dir = join(tmp, `ckpt-${workers}`);
      let steps = 0;
      const stopped = await train(cfg, small, dir, { shouldStop: () => ++steps > 27 });
      assert.equal(stopped.finished, false);
      const resumed = await train(cfg, small, dir);
      assert.equal(resumed.finished, true);
      const strip = (h: typeof whole.history) =>
        h.map(({ seconds: _s, imagesPerSecond: _i, ...r }) => r);
      assert.deepEqual(strip(resumed.history), strip(whole.history));
    });

  it('two workers (data parallel) follow the one-thread run of a model without batch norm', async () => {
    const cfg = { ...base, epochs: 1 };
    const small = { train: head(clean.train, 1280), test: head(clean.test, 300) };
    const one = await train({ ...cfg, workers: 1 }, small, null);
    const two = await train({ ...cfg, workers: 2 }, small, null);
    const [a, b] = [one.history[0], two.history[0]];
    assert.ok(
      Math.abs(a.trainLoss - b.trainLoss) < 1e-3 * a.trainLoss,
      `loss ${a.trainLoss} vs ${b.trainLoss}`,
    );
    assert.ok(
      Math.abs(a.testAccuracy - b.testAccuracy) <= 0.02,
      `${a.testAccuracy} vs ${b.testAccuracy}`,
    );
    assert.equal(a.trainAccuracy, b.trainAccuracy);
  });

  it('adversarial training (with mixup) runs in one thread and is refused on several workers', async () => {
    const small = { train: head(clean.train, 256), test: head(clean.test, 100) };
    const at = { ...base, epochs: 1, adversarial: { epsilon: 8 / 255, step: 2 / 255, steps: 2 } };
    await assert.rejects(train({ ...at, workers: 2 }, small, null), /use 1 worker \(--workers 1\)/);
    const run = await train({ ...at, workers: 1, strategy: 'mixup' }, small, null);
    assert.ok(Number.isFinite(run.history[0].trainLoss) && run.history[0].trainLoss > 0);
  });

  it('refuses a corrupt checkpoint and one made with other settings', async () => {
    const cfg = { ...base, epochs: 1 };
    const small = { train: head(clean.train, 256), test: head(clean.test, 100) };
    const dir = join(tmp, 'ckpt2');
    await train(cfg, small, dir);
    await assert.rejects(train({ ...cfg, lr: 0.01 }, small, dir), /other settings/);
    const bin = await readFile(join(dir, 'weights.bin'));
    bin[100] ^= 0xff;
    await writeFile(join(dir, 'weights.bin'), bin);
    await assert.rejects(train(cfg, small, dir), /corrupt checkpoint/);
  });

  it('stops on a NaN loss naming the epoch and step', async () => {
    const small = { train: head(clean.train, 512), test: head(clean.test, 100) };
    await assert.rejects(
      train({ ...base, epochs: 1, lr: 1e8, schedule: 'constant' }, small, null),
      /epoch 1 step \d+: loss is (NaN|Infinity|-Infinity); stopping/,
    );
  });

  it('presets and strategy names', () => {
    const q = configFrom({
      data: '',
      seed: 0,
      backend: 'wasm',
      epsilon: 8 / 255,
      attackStep: 2 / 255,
      attackSteps: 10,
      resume: false,
      force: false,
      preset: 'quick',
    });
    assert.deepEqual(
      [q.model, q.epochs, q.batchSize, q.lr, q.momentum, q.weightDecay, q.schedule, q.strategy],
      ['lenet5', 15, 128, 0.05, 0.9, 5e-4, 'onecycle', 'standard'],
    );
    const p = configFrom({
      data: '',
      seed: 0,
      backend: 'wasm',
      epsilon: 8 / 255,
      attackStep: 2 / 255,
      attackSteps: 10,
      resume: false,
      force: false,
      preset: 'paper',
      model: 'resnet18',
      strategy: 'at+cutout',
    });
    assert.deepEqual(
      [p.epochs, p.lr, p.schedule, p.milestones, p.strategy],
      [200, 0.1, 'multistep', [100, 150], 'cutout'],
    );
    assert.deepEqual(p.adversarial, { epsilon: 8 / 255, step: 2 / 255, steps: 10 });
    assert.throws(
      () => parseStrategy('jpeg'),
      /unknown strategy 'jpeg' \(--strategy\); valid: .*at\+mixup/,
    );
  });

  it('audit refuses datasets whose test splits differ', async () => {
    const other = join(tmp, 'npy');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(other);
    await writeNpy(other, [
      { name: 'train', stream: streamOf(head(clean.train, 100)) },
      { name: 'test', stream: streamOf(head(clean.test, 50)) },
    ]);
    await assert.rejects(
      openAuditData([
        { name: 'clean', dir: CIFAR_DIR, kind: 'clean' },
        { name: 'npy', dir: other, kind: 'protected' },
      ]),
      /test split differs/,
    );
  });

  it('cleans up', async () => {
    await rm(tmp, { recursive: true, force: true });
  });
});
