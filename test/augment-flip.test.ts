/**
 * The crop and flip stage of the training augmentation (src/train/augment.ts, strategy
 * 'standard', default options: padding 4, flip probability 0.5), checked two ways:
 * - exactly, image by image, against the project's seeded generator replayed here (two crop
 *   offsets, then one uniform deviate compared with 0.5 per image) and a crop written by hand;
 * - without the replay: which of the 162 (offset, flip) crops each output is, found by search, and
 *   the number of flips against Binomial(n, 1/2) with a bound derived below.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Dataset } from '../src/data/dataset.js';
import { Rng } from '../src/nn/rng.js';
import { makeBatch } from '../src/train/augment.js';
import { Rand } from './fuzz-helpers.js';

const [H, W, C, N] = [8, 8, 2, 4000];
const S = H * W * C;

/** N images of bytes 1..255 (0 marks the zero padding), no two rows or columns alike. */
function images(): Dataset {
  const r = new Rand(21);
  const px = new Uint8Array(N * S);
  for (let i = 0; i < px.length; i++) px[i] = 1 + r.int(255);
  return {
    height: H,
    width: W,
    channels: C,
    images: px,
    labels: new Int32Array(N),
    classNames: ['a'],
  };
}

/** The crop by hand: out(y, x) = src(y + dy − 4, x' + dx − 4), x' = W − 1 − x when flipped, else 0. */
function crop(src: Uint8Array, dy: number, dx: number, flip: boolean): Uint8Array {
  const out = new Uint8Array(S);
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const sy = y + dy - 4;
      const sx = (flip ? W - 1 - x : x) + dx - 4;
      if (sy < 0 || sy >= H || sx < 0 || sx >= W) continue;
      for (let c = 0; c < C; c++) out[(y * W + x) * C + c] = src[(sy * W + sx) * C + c];
    }
  return out;
}

/** The float batch back to bytes (x = v/255 in float32). */
function bytesOf(x: Float32Array, i: number): Uint8Array {
  return Uint8Array.from(x.subarray(i * S, (i + 1) * S), (v) => Math.round(v * 255));
}

describe('standard augmentation: crop and flip', () => {
  const ds = images();
  const indices = Array.from({ length: N }, (_, i) => i);
  const seed = 1234;
  const batch = makeBatch(ds, indices, 'standard', new Rng(seed));

  it('equals the replayed draws image by image: flip exactly when the deviate is < 0.5', () => {
    const replay = new Rng(seed);
    let flips = 0;
    let between = 0; // deviates in [0.45, 0.55): a threshold off by 0.05 would show here
    for (let i = 0; i < N; i++) {
      const dy = replay.int(9);
      const dx = replay.int(9);
      const u = replay.uniform();
      const flip = u < 0.5;
      if (flip) flips++;
      if (u >= 0.45 && u < 0.55) between++;
      const src = ds.images.subarray(i * S, (i + 1) * S);
      assert.deepEqual(bytesOf(batch.x, i), crop(src, dy, dx, flip), `image ${i}`);
    }
    for (let j = 0; j < N * S; j++)
      assert.equal(batch.x[j], Math.fround(Math.round(batch.x[j] * 255) / 255), 'x is v/255');
    assert.ok(between > 300, `${between} deviates near the threshold`);
    assert.ok(flips > 0 && flips < N);
  });

  it('the share of flipped images is 1/2 within a bound that a correct flip breaks with p < 1e-6', () => {
    let flips = 0;
    for (let i = 0; i < N; i++) {
      const src = ds.images.subarray(i * S, (i + 1) * S);
      const got = bytesOf(batch.x, i);
      const found: boolean[] = [];
      for (let dy = 0; dy < 9; dy++)
        for (let dx = 0; dx < 9; dx++)
          for (const flip of [false, true]) {
            const want = crop(src, dy, dx, flip);
            if (want.every((v, j) => v === got[j])) found.push(flip);
          }
      assert.equal(found.length, 1, `image ${i} is exactly one crop`);
      if (found[0]) flips++;
    }
    // Hoeffding: P(|F − N/2| ≥ t) ≤ 2·exp(−2t²/N); t = √(N·ln(2·10⁶)/2) makes that 1e-6.
    const t = Math.sqrt((N * Math.log(2e6)) / 2);
    assert.ok(Math.abs(flips - N / 2) < t, `${flips} flips of ${N}, bound ±${t.toFixed(1)}`);
    // With N = 4000, t ≈ 241: a probability of 0.43 or 0.57 (F ≈ 1720 or 2280 expected) fails.
    assert.ok(t < 0.061 * N);
  });
});
