// The whitening floor of fast94's adversarial training (src/train/presets.ts, robustWhitenFloor):
// on the recipe's 5,000 whitening images of CIFAR-10, the largest move an 8/255 perturbation can
// make along each whitened direction (the sum of |filter weight| · ε / channel std), with the
// recipe's floor 5e-4 and with 12(ε/σ)², against numpy's eigh on the same patches
// (results/audit-fast94/whiten-gain.py, whose output whiten-gain.txt these values are).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { AIRBENCH_STD, WHITEN_WIDTH, whiteningKernel } from '../src/nn/models/airbench94.js';
import { robustWhitenFloor } from '../src/train/presets.js';
import { CIFAR_DIR, cifarDataset, cifarRecords } from './helpers.js';

const HAVE_CIFAR = existsSync(path.join(CIFAR_DIR, 'data_batch_1.bin'));

/** Per eigen-direction (the first 12 filters, largest eigenvalue first): the ε-ball's reach. */
function reach(images: Uint8Array, floor: number | undefined, eps: number): number[] {
  const { values } = whiteningKernel(images, 5000, 32, 32, 3, floor);
  const out: number[] = [];
  for (let k = 0; k < 12; k++) {
    let s = 0;
    for (let tap = 0; tap < 4; tap++)
      for (let ch = 0; ch < 3; ch++)
        s += Math.abs(values[(tap * 3 + ch) * WHITEN_WIDTH + k]) / AIRBENCH_STD[ch];
    out.push(s * eps);
  }
  return out;
}

describe(
  'the whitening floor of adversarial training',
  { skip: !HAVE_CIFAR && 'no CIFAR-10' },
  () => {
    it('caps the reach of an 8/255 perturbation along every whitened direction at 0.93 (12.60 without)', async () => {
      const ds = cifarDataset(await cifarRecords('data_batch_1.bin', 5000), []);
      const eps = 8 / 255;
      assert.equal(robustWhitenFloor(eps).toFixed(5), '0.19920');
      // numpy (whiten-gain.txt), smallest eigenvalue first.
      const recipe = [12.6, 8.18, 6.04, 5.77, 3.08, 2.88, 1.83, 0.97, 0.75, 0.69, 0.38, 0.14];
      const floored = [0.93, 0.83, 0.92, 0.91, 0.8, 0.8, 0.86, 0.67, 0.6, 0.56, 0.35, 0.13];
      const fix = (v: number[]) => v.reverse().map((x) => Number(x.toFixed(2)));
      assert.deepEqual(fix(reach(ds.images, undefined, eps)), recipe);
      assert.deepEqual(fix(reach(ds.images, robustWhitenFloor(eps), eps)), floored);
    });
  },
);
