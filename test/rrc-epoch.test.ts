/**
 * `rrc:S:epoch`, the trainer's RandomResizedCrop drawn anew at every epoch: each epoch's crops
 * against PIL's `F.resized_crop` (torchvision 0.14) given the same boxes, byte for byte; the
 * boxes differ between epochs and come from the generator of the run's seed and the epoch (its
 * boxes are torchvision's `get_params`, test/resize.test.ts); the training loop builds the model
 * for S×S, trains on every epoch's crops and resumes a stopped run to exactly the uninterrupted
 * result; fast94 refuses it at once.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readCifar10 } from '../src/data/cifar.js';
import type { Dataset } from '../src/data/dataset.js';
import { initEngine } from '../src/nn/engine.js';
import { randomResizedCropParams } from '../src/transforms/resize.js';
import {
  applyCountermeasure,
  countermeasureName,
  epochCropRng,
  epochCrops,
  evalTransform,
  parseCountermeasure,
} from '../src/train/countermeasures.js';
import { jobConfig } from '../src/train/job.js';
import { type TrainConfig, train } from '../src/train/loop.js';
import { loadCheckpoint } from '../src/nn/checkpoint.js';
import { CIFAR_DIR, headOf, noNumpy, runPython, tempDirs } from './helpers.js';

const tmp = tempDirs('rrc-epoch');

describe('rrc:S:epoch', () => {
  let ds: Dataset;
  let test: Dataset;
  before(async () => {
    const c = await readCifar10(CIFAR_DIR);
    ds = headOf(c.train, 64);
    test = headOf(c.test as Dataset, 40);
  });

  it('parses and names; leaves the training set to the loop and resizes the test split', async () => {
    for (const t of ['rrc:32:epoch', 'rrc:32:0.5:bicubic:epoch'])
      assert.equal(countermeasureName(parseCountermeasure(t)), t);
    assert.equal(countermeasureName(parseCountermeasure('rrc:32:epoch:0.5')), 'rrc:32:0.5:epoch');
    assert.throws(() => parseCountermeasure('rrc:32:0.5:bicubic:epoch:x'), /takes 1–4 parameter/);
    const c = parseCountermeasure('rrc:24:epoch');
    assert.equal(await applyCountermeasure(ds, c), ds);
    assert.equal(countermeasureName(evalTransform(c)!), 'resize:24');
    assert.equal(epochCrops('rrc:24'), null);
    assert.equal(epochCrops('jpeg:10'), null);
    assert.equal(epochCrops(undefined), null);
    assert.equal(epochCrops('rrc:24:epoch')?.size, 24);
    // asked to stop (checked every 200 images), an epoch's crops end in null, as applyCountermeasure
    const many = {
      ...ds,
      images: new Uint8Array(256 * 3072).map((_, i) => ds.images[i % ds.images.length]),
      labels: new Int32Array(256).map((_, i) => ds.labels[i % ds.labels.length]),
    };
    assert.equal(await epochCrops('rrc:24:epoch')!.images(many, 0, 0, () => true), null);
    assert.equal(
      await applyCountermeasure(many, parseCountermeasure('rrc:24'), undefined, () => true),
      null,
    );
    assert.equal((await epochCrops('rrc:24:epoch')!.images(many, 0, 0, () => false))?.height, 24);
  });

  it(
    "each epoch's crops equal PIL's resized_crop of the epoch's boxes, new boxes every epoch",
    {
      skip: noNumpy(),
    },
    async () => {
      const S = 24;
      const crops = epochCrops(`rrc:${S}:0.3:epoch`)!;
      const n = 12;
      const small = headOf(ds, n);
      const boxes: number[][] = [];
      const ours: Uint8Array[] = [];
      for (const [seed, epoch] of [
        [0, 0],
        [0, 1],
        [5, 0],
      ]) {
        const rng = epochCropRng(seed, epoch);
        for (let i = 0; i < n; i++) {
          const b = randomResizedCropParams(32, 32, [0.3, 1], [3 / 4, 4 / 3], rng);
          boxes.push([b.top, b.left, b.height, b.width]);
        }
        const out = (await crops.images(small, seed, epoch))!;
        assert.equal(out.height, S);
        assert.equal(out.width, S);
        ours.push(out.images);
      }
      const dir = await tmp();
      writeFileSync(path.join(dir, 'in.bin'), small.images);
      runPython(
        `import sys, json, numpy as np
from PIL import Image
import torchvision.transforms.functional as F
from torchvision.transforms import InterpolationMode
a = np.fromfile(sys.argv[1], np.uint8).reshape(-1, 32, 32, 3)
boxes = json.loads(sys.argv[3])
r = [np.asarray(F.resized_crop(Image.fromarray(a[k % len(a)]), *b, [${S}, ${S}], InterpolationMode.BILINEAR)) for k, b in enumerate(boxes)]
np.ascontiguousarray(np.stack(r), dtype=np.uint8).tofile(sys.argv[2])`,
        [path.join(dir, 'in.bin'), path.join(dir, 'out.bin'), JSON.stringify(boxes)],
      );
      const ref = new Uint8Array(readFileSync(path.join(dir, 'out.bin')));
      const per = n * S * S * 3;
      ours.forEach((o, k) => assert.deepEqual(o, ref.subarray(k * per, (k + 1) * per), `run ${k}`));
      // another epoch, another seed: other crops (not one fixed draw)
      assert.notDeepEqual(ours[0], ours[1]);
      assert.notDeepEqual(ours[0], ours[2]);
      assert.notDeepEqual(boxes.slice(0, n), boxes.slice(n, 2 * n));
    },
  );

  it('trains on S×S crops and resumes a stopped run to exactly the uninterrupted result', async () => {
    await initEngine('wasm');
    const cfg: TrainConfig = {
      ...jobConfig(
        { preset: 'quick', model: 'lenet5', countermeasure: 'rrc:24:epoch', seed: 3 },
        'wasm',
      ),
      epochs: 3,
      batchSize: 16,
      workers: 1,
    };
    const e = evalTransform(parseCountermeasure('rrc:24:epoch'))!;
    const data = { train: ds, test: (await applyCountermeasure(test, e))! };
    const whole = await train(cfg, data, path.join(await tmp(), 'whole'));
    assert.equal(whole.finished, true);
    assert.equal(whole.history.length, 3);
    const dir = path.join(await tmp(), 'ckpt');
    let steps = 0;
    // 4 steps an epoch: stopped in the middle of epoch 2, after epoch 1's crops were drawn
    const stopped = await train(cfg, data, dir, { shouldStop: () => ++steps > 6 });
    assert.equal(stopped.finished, false);
    const resumed = await train(cfg, data, dir);
    assert.equal(resumed.finished, true);
    const strip = (h: typeof whole.history) =>
      h.map(({ seconds: _s, imagesPerSecond: _i, ...r }) => r);
    assert.deepEqual(strip(resumed.history), strip(whole.history));
    // the model was built for 24×24: LeNet-5's first dense layer reads 16×3×3 features
    // (24 → conv5 20 → pool 10 → conv5 6 → pool 3), not the 16×5×5 of 32×32 images
    const ck = await loadCheckpoint(dir);
    const dense = ck.weights.find((w) => w.shape.length === 2)!;
    assert.equal(dense.shape[0], 16 * 3 * 3);
    // and the crops mattered: the same run on one fixed draw (rrc:24) ends elsewhere
    const fixed = await train(
      { ...cfg, countermeasure: 'rrc:24' },
      { ...data, train: (await applyCountermeasure(ds, parseCountermeasure('rrc:24')))! },
      null,
    );
    assert.notDeepEqual(strip(fixed.history), strip(whole.history));
  });

  it('fast94 refuses it before any work', () => {
    assert.throws(
      () => jobConfig({ preset: 'fast94', countermeasure: 'rrc:32:epoch', seed: 0 }, 'native'),
      /rrc:32:epoch: per-epoch crops run in the quick and paper presets/,
    );
  });
});
