/**
 * Countermeasures on real protected CIFAR-10 images: grayscale equals PIL's convert('L'), a JPEG
 * round trip at quality 10 equals PIL's and smears the one-pixel shortcut away, the filters change
 * the shortcut pixel (their exact values are checked in transforms.test.ts), and bad names are
 * refused.
 */
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readCifar10 } from '../src/data/cifar.js';
import type { Dataset } from '../src/data/dataset.js';
import { searchDataset } from '../src/shortcut/search.js';
import { applyShortcut } from '../src/shortcut/apply.js';
import {
  applyCountermeasure,
  COUNTERMEASURES,
  type Countermeasure,
  countermeasureName,
  parseCountermeasure,
} from '../src/train/countermeasures.js';
import { OnepixelError } from '../src/errors.js';
import { CIFAR_DIR, headOf, noNumpy, runPython } from './helpers.js';

const N = 600;

/** The countermeasure's result (never stopped here: no shouldStop). */
async function applied(ds: Dataset, c: Countermeasure): Promise<Dataset> {
  const out = await applyCountermeasure(ds, c);
  assert.ok(out, 'stopped without being asked to');
  return out;
}

describe('countermeasures', () => {
  let protectedSet: Dataset;
  let pixels: ReturnType<typeof searchDataset>;
  before(async () => {
    const c = await readCifar10(CIFAR_DIR);
    const train = headOf(c.train, N);
    pixels = searchDataset(train, { pixels: 1 });
    protectedSet = applyShortcut(train, pixels);
  });

  it('parses every name and parameter; refuses the rest in one line naming the flag', () => {
    assert.deepEqual(parseCountermeasure('jpeg'), { kind: 'jpeg', quality: 10 });
    assert.deepEqual(parseCountermeasure('JPEG:75'), { kind: 'jpeg', quality: 75 });
    assert.deepEqual(parseCountermeasure('grayscale'), { kind: 'grayscale' });
    assert.deepEqual(parseCountermeasure('bdr:2'), { kind: 'bdr', bits: 2 });
    assert.deepEqual(parseCountermeasure('median:3'), { kind: 'median', size: 3 });
    assert.deepEqual(parseCountermeasure('mean:5'), { kind: 'mean', size: 5 });
    assert.deepEqual(parseCountermeasure('gaussian:0.1'), {
      kind: 'gaussian',
      sigma: 0.1,
      size: 3,
    });
    assert.deepEqual(parseCountermeasure('gaussian:1'), { kind: 'gaussian', sigma: 1, size: 7 });
    assert.deepEqual(parseCountermeasure('gaussian:1:3'), { kind: 'gaussian', sigma: 1, size: 3 });
    assert.deepEqual(parseCountermeasure('orthogonal-projection'), {
      kind: 'orthogonal-projection',
    });
    for (const name of [
      'none',
      'grayscale',
      'jpeg:10',
      'bdr:2',
      'median:3',
      'mean:3',
      'gaussian:0.1',
      'gaussian:1',
      'gaussian:1:3',
      'orthogonal-projection',
    ])
      assert.equal(countermeasureName(parseCountermeasure(name)), name);
    const refused: Array<[string, RegExp]> = [
      ['jpeg:0', /^--countermeasures: JPEG quality must be an integer 1–100 \(got '0'\)$/],
      ['jpeg:7.5', /JPEG quality must be an integer 1–100 \(got '7.5'\)/],
      ['median:4', /^--countermeasures: median window must be an odd integer 3–15 \(got '4'\)$/],
      ['mean:1', /mean window must be an odd integer 3–15 \(got '1'\)/],
      ['bdr:9', /^--countermeasures: bdr bits must be an integer 1–8 \(got '9'\)$/],
      ['gaussian:0', /gaussian σ must be a number in \(0, 10\] \(got '0'\)/],
      ['gaussian:x', /gaussian σ must be a number/],
      ['gaussian:1:4', /gaussian kernel size must be an odd integer 1–31 \(got '4'\)/],
      ['median', /'median' takes 1 parameter\(s\) after 'median'/],
      ['grayscale:2', /'grayscale:2' takes 0 parameter\(s\)/],
      [
        'blur',
        /^unknown countermeasure 'blur' \(--countermeasures\); valid: none, grayscale, jpeg/,
      ],
    ];
    for (const [name, re] of refused)
      assert.throws(
        () => parseCountermeasure(name, '--countermeasures'),
        (e: Error) => e instanceof OnepixelError && re.test(e.message) && !e.message.includes('\n'),
        name,
      );
  });

  it(
    'grayscale equals PIL convert("L") on every image, in all three channels',
    {
      skip: noNumpy(),
    },
    async () => {
      const gray = await applied(protectedSet, { kind: 'grayscale' });
      const n = 20; // one argv string (at most 128 KB) carries them to python
      const hwc = Buffer.from(protectedSet.images.subarray(0, n * 3072)).toString('base64');
      const expected = runPython(
        'import sys, base64, numpy as np\nfrom PIL import Image\n' +
          'a = np.frombuffer(base64.b64decode(sys.argv[1]), np.uint8)' +
          '.reshape(-1, 32, 32, 3)\n' +
          'print(base64.b64encode(np.stack([np.asarray(Image.fromarray(x).convert("L")) ' +
          'for x in a]).tobytes()).decode())',
        [hwc],
      );
      const l = Buffer.from(expected.trim(), 'base64');
      assert.equal(l.length, n * 1024);
      for (let p = 0; p < n * 1024; p++)
        for (let ch = 0; ch < 3; ch++)
          assert.equal(
            gray.images[p * 3 + ch],
            l[p],
            `image ${Math.floor(p / 1024)}, pixel ${p % 1024}`,
          );
      assert.notEqual(gray.images, protectedSet.images, 'a copy, not the input');
    },
  );

  it(
    'jpeg:10 equals PIL at quality 10 and removes the exact shortcut colour from most images',
    { skip: noNumpy() },
    async () => {
      const jpeg = await applied(protectedSet, parseCountermeasure('jpeg:10'));
      assert.equal(jpeg.images.length, protectedSet.images.length);
      let kept = 0;
      for (let i = 0; i < N; i++) {
        const cls = pixels.classes[protectedSet.labels[i]];
        const { row, col, value } = cls.pixels[0];
        const at = i * 3072 + (row * 32 + col) * 3;
        if (value.every((v, ch) => jpeg.images[at + ch] === v)) kept++;
      }
      // Measured: the exact colour survives in none of the 600 images.
      assert.ok(kept / N < 0.2, `${kept} of ${N} images keep the exact shortcut colour`);
      assert.deepEqual(Array.from(jpeg.labels), Array.from(protectedSet.labels));
      const n = 30; // one argv string (at most 128 KB) carries them to python
      const hwc = Buffer.from(protectedSet.images.subarray(0, n * 3072)).toString('base64');
      const expected = runPython(
        'import sys, io, base64, numpy as np\nfrom PIL import Image\n' +
          'a = np.frombuffer(base64.b64decode(sys.argv[1]), np.uint8).reshape(-1, 32, 32, 3)\n' +
          'def rt(x):\n  b = io.BytesIO()\n  Image.fromarray(x).save(b, "JPEG", quality=10)\n' +
          '  return np.asarray(Image.open(io.BytesIO(b.getvalue())).convert("RGB"))\n' +
          'print(base64.b64encode(np.stack([rt(x) for x in a]).tobytes()).decode())',
        [hwc],
      );
      // Tolerance 0: measured byte-identical (test/transforms.test.ts sweeps Q = 10…90).
      assert.deepEqual(
        Buffer.from(jpeg.images.subarray(0, n * 3072)),
        Buffer.from(expected.trim(), 'base64'),
      );
    },
  );

  it('median:3, mean:3, bdr:2 and gaussian:1 change the shortcut pixel; gaussian:0.1 does not', async () => {
    const at = (ds: Dataset, i: number) => {
      const { row, col } = pixels.classes[protectedSet.labels[i]].pixels[0];
      return Array.from(
        ds.images.subarray(i * 3072 + (row * 32 + col) * 3, i * 3072 + (row * 32 + col) * 3 + 3),
      );
    };
    for (const name of ['median:3', 'mean:3', 'bdr:2', 'gaussian:1', 'gaussian:0.1']) {
      const out = await applied(protectedSet, parseCountermeasure(name));
      let kept = 0;
      for (let i = 0; i < N; i++) if (at(out, i).join() === at(protectedSet, i).join()) kept++;
      if (name === 'gaussian:0.1') assert.equal(kept, N, name);
      else assert.ok(kept < N / 2, `${name}: ${kept} of ${N} keep the shortcut colour`);
    }
  });

  it('every countermeasure gives the event loop turns and stops when asked (a signal)', async () => {
    // A timer stands for a signal's handler: it can only run if the transform yields. It asks
    // for the stop; the transform must then end with null, well before the work is done.
    const names = ['grayscale', 'jpeg:10', 'bdr:2', 'median:3', 'mean:3', 'gaussian:1'];
    names.push('orthogonal-projection', 'resize:16', 'center-crop:16', 'rrc:16');
    const kinds = COUNTERMEASURES.map((c) => c.replace(/[[:].*/, '')).filter((c) => c !== 'none');
    assert.deepEqual(kinds.sort(), names.map((n) => parseCountermeasure(n).kind).sort());
    for (const name of names) {
      const c = parseCountermeasure(name);
      let asked = false;
      const timer = setImmediate(() => (asked = true));
      let images = 0;
      const out = await applyCountermeasure(
        protectedSet,
        c,
        (done) => (images = done),
        () => asked,
      );
      clearImmediate(timer);
      assert.equal(out, null, `${name}: not stopped`);
      assert.ok(images < N, `${name}: ran to the end (${images} images) before stopping`);
    }
  });
});
