/**
 * The image transforms of src/transforms/ on real CIFAR-10 images, each against an independent
 * reference: OpenCV for the median, box and Gaussian filters, PIL for bit-depth reduction
 * (posterize), grayscale and the JPEG round trip.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readCifar10 } from '../src/data/cifar.js';
import type { Dataset } from '../src/data/dataset.js';
import {
  boxFilter,
  gaussianFilter,
  gaussianTaps,
  medianFilter,
} from '../src/transforms/filters.js';
import { bitDepth, grayscale } from '../src/transforms/pixels.js';
import { jpegRoundTrip } from '../src/transforms/jpeg.js';
import { CIFAR_DIR, headOf, noNumpy, runPython, tempDirs } from './helpers.js';

const N = 200;
const G = { height: 32, width: 32, channels: 3 };
const S = 3072;
const tmp = tempDirs('transforms');

/**
 * Runs `expr` (python, on `a`: the images as an n×32×32×3 uint8 array, with numpy as np, cv2 and
 * PIL's Image, ImageOps imported) and returns the uint8 bytes of the array it evaluates to.
 */
export async function python(images: Uint8Array, body: string): Promise<Uint8Array> {
  const dir = await tmp();
  const inp = path.join(dir, 'in.bin');
  const out = path.join(dir, 'out.bin');
  writeFileSync(inp, images);
  runPython(
    'import sys, io, numpy as np, cv2\nfrom PIL import Image, ImageOps\n' +
      'a = np.fromfile(sys.argv[1], np.uint8).reshape(-1, 32, 32, 3)\n' +
      body +
      '\nnp.ascontiguousarray(r, dtype=np.uint8).tofile(sys.argv[2])\n',
    [inp, out],
  );
  return new Uint8Array(readFileSync(out));
}

/** Applies a per-image transform to the first n images. */
function each(
  ds: Dataset,
  f: (src: Uint8Array, dst: Uint8Array) => void,
  n = ds.labels.length,
): Uint8Array {
  const out = new Uint8Array(n * S);
  for (let i = 0; i < n; i++)
    f(ds.images.subarray(i * S, (i + 1) * S), out.subarray(i * S, (i + 1) * S));
  return out;
}

function diffs(a: Uint8Array, b: Uint8Array): { max: number; mean: number; unequal: number } {
  assert.equal(a.length, b.length);
  let max = 0;
  let sum = 0;
  let unequal = 0;
  for (let k = 0; k < a.length; k++) {
    const d = Math.abs(a[k] - b[k]);
    if (d > max) max = d;
    if (d) unequal++;
    sum += d;
  }
  return { max, mean: sum / a.length, unequal };
}

/** How many values differ from the input: proves the transform did something. */
function changed(ds: Dataset, out: Uint8Array): number {
  return diffs(ds.images.subarray(0, out.length), out).unequal;
}

describe('transforms', { skip: noNumpy() }, () => {
  let ds: Dataset;
  before(async () => {
    ds = headOf((await readCifar10(CIFAR_DIR)).train, N);
  });

  it('median:3 equals cv2.medianBlur exactly (border replicated)', async () => {
    const ours = each(ds, (s, d) => medianFilter(s, d, G, 3));
    const ref = await python(ds.images, 'r = np.stack([cv2.medianBlur(x, 3) for x in a])');
    assert.deepEqual(diffs(ours, ref), { max: 0, mean: 0, unequal: 0 });
    assert.ok(changed(ds, ours) > N * S * 0.3);
  });

  it('median:5 equals cv2.medianBlur exactly', async () => {
    const ours = each(ds, (s, d) => medianFilter(s, d, G, 5));
    const ref = await python(ds.images, 'r = np.stack([cv2.medianBlur(x, 5) for x in a])');
    assert.deepEqual(diffs(ours, ref), { max: 0, mean: 0, unequal: 0 });
  });

  it('mean:3 equals cv2.blur with BORDER_REPLICATE exactly', async () => {
    const ours = each(ds, (s, d) => boxFilter(s, d, G, 3));
    const ref = await python(
      ds.images,
      'r = np.stack([cv2.blur(x, (3, 3), borderType=cv2.BORDER_REPLICATE) for x in a])',
    );
    assert.deepEqual(diffs(ours, ref), { max: 0, mean: 0, unequal: 0 });
    assert.ok(changed(ds, ours) > N * S * 0.3);
  });

  for (const [sigma, k] of [
    [1, 7],
    [1, 3],
    [0.5, 5],
    [2, 13],
  ])
    it(`gaussian:${sigma}:${k} equals cv2.GaussianBlur with BORDER_REPLICATE exactly`, async () => {
      const ours = each(ds, (s, d) => gaussianFilter(s, d, G, sigma, k));
      const ref = await python(
        ds.images,
        `r = np.stack([cv2.GaussianBlur(x, (${k}, ${k}), ${sigma}, ` +
          'borderType=cv2.BORDER_REPLICATE) for x in a])',
      );
      assert.deepEqual(diffs(ours, ref), { max: 0, mean: 0, unequal: 0 });
      assert.ok(changed(ds, ours) > N * S * 0.3);
    });

  it('gaussian:0.1 (K = 3, the benchmarks’ setting) is the identity on 8-bit images', async () => {
    assert.deepEqual(Array.from(gaussianTaps(0.1, 3)), [0, 256, 0]);
    const ours = each(ds, (s, d) => gaussianFilter(s, d, G, 0.1));
    const ref = await python(
      ds.images,
      'r = np.stack([cv2.GaussianBlur(x, (3, 3), 0.1, borderType=cv2.BORDER_REPLICATE) for x in a])',
    );
    assert.equal(diffs(ours, ref).unequal, 0);
    assert.equal(changed(ds, ours), 0);
  });

  for (const bits of [1, 2, 5, 8])
    it(`bdr:${bits} equals PIL ImageOps.posterize exactly`, async () => {
      const ours = each(ds, (s, d) => bitDepth(s, d, bits));
      const ref = await python(
        ds.images,
        `r = np.stack([np.asarray(ImageOps.posterize(Image.fromarray(x), ${bits})) for x in a])`,
      );
      assert.deepEqual(diffs(ours, ref), { max: 0, mean: 0, unequal: 0 });
      if (bits < 8) assert.ok(changed(ds, ours) > N * S * 0.3);
    });

  it('grayscale equals PIL convert("L") in all three channels', async () => {
    const ours = each(ds, (s, d) => grayscale(s, d, 3));
    const ref = await python(
      ds.images,
      'r = np.stack([np.repeat(np.asarray(Image.fromarray(x).convert("L"))[:, :, None], 3, 2) ' +
        'for x in a])',
    );
    assert.deepEqual(diffs(ours, ref), { max: 0, mean: 0, unequal: 0 });
  });

  for (const quality of [10, 30, 50, 70, 90])
    it(`jpeg:${quality} equals PIL's JPEG round trip at the same quality exactly`, async () => {
      const ours = new Uint8Array(N * S);
      await jpegRoundTrip(ds.images, ours, G, N, quality);
      const ref = await python(
        ds.images,
        'def rt(x):\n  b = io.BytesIO()\n' +
          `  Image.fromarray(x).save(b, "JPEG", quality=${quality})\n` +
          '  return np.asarray(Image.open(io.BytesIO(b.getvalue())).convert("RGB"))\n' +
          'r = np.stack([rt(x) for x in a])',
      );
      const d = diffs(ours, ref);
      const self = diffs(ds.images, ref);
      process.stdout.write(
        `# jpeg:${quality} vs PIL: mean |Δ| ${d.mean.toFixed(4)}, max ${d.max}, ` +
          `${((100 * d.unequal) / (N * S)).toFixed(2)} % of values differ; ` +
          `PIL vs the input: mean |Δ| ${self.mean.toFixed(2)}\n`,
      );
      // Measured on 200 images at Q = 10…90: byte-identical (libvips and PIL share libjpeg's
      // quantisation tables, 4:2:0, integer DCT and fancy upsampling).
      assert.deepEqual(d, { max: 0, mean: 0, unequal: 0 });
      assert.ok(self.mean > 0.5, 'the reference changed the images');
    });
});
