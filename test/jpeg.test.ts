/**
 * The JPEG countermeasure (src/transforms/jpeg.ts) on one-channel images, which the RGB test of
 * transforms.test.ts never reaches: against PIL's JPEG round trip of mode "L" images, byte for
 * byte, on the red planes of real CIFAR-10 images.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { jpegRoundTrip } from '../src/transforms/jpeg.js';
import { CIFAR_DIR, noNumpy, runPython, tempDirs } from './helpers.js';

const BATCH = path.join(CIFAR_DIR, 'test_batch.bin');
const N = 40;
const G = { height: 32, width: 32, channels: 1 };
const tmp = tempDirs('jpeg');

describe(
  'JPEG round trip of one-channel images',
  {
    skip: existsSync(BATCH) ? noNumpy() : `no ${BATCH}`,
  },
  () => {
    for (const quality of [10, 50, 90])
      it(`jpeg:${quality} equals PIL's round trip of mode L images exactly`, async () => {
        // The red plane of the first N test images: CIFAR records are [label][R][G][B] planes.
        const records = readFileSync(BATCH).subarray(0, N * 3073);
        const gray = new Uint8Array(N * 1024);
        for (let i = 0; i < N; i++)
          gray.set(records.subarray(i * 3073 + 1, i * 3073 + 1025), i * 1024);
        const ours = new Uint8Array(N * 1024);
        let reported = 0;
        await jpegRoundTrip(gray, ours, G, N, quality, (done, total) => {
          assert.equal(total, N);
          reported = Math.max(reported, done);
        });
        assert.equal(reported, N, 'progress reached every image');
        const dir = await tmp();
        writeFileSync(path.join(dir, 'in.bin'), gray);
        runPython(
          'import sys, io, numpy as np\nfrom PIL import Image\n' +
            'a = np.fromfile(sys.argv[1], np.uint8).reshape(-1, 32, 32)\n' +
            'def rt(x):\n  b = io.BytesIO()\n' +
            `  Image.fromarray(x, "L").save(b, "JPEG", quality=${quality})\n` +
            '  return np.asarray(Image.open(io.BytesIO(b.getvalue())))\n' +
            'np.stack([rt(x) for x in a]).astype(np.uint8).tofile(sys.argv[2])',
          [path.join(dir, 'in.bin'), path.join(dir, 'out.bin')],
        );
        const ref = new Uint8Array(readFileSync(path.join(dir, 'out.bin')));
        let unequal = 0;
        let changed = 0;
        for (let j = 0; j < ref.length; j++) {
          if (ours[j] !== ref[j]) unequal++;
          if (gray[j] !== ref[j]) changed++;
        }
        assert.equal(unequal, 0, `${unequal} of ${ref.length} values differ from PIL's`);
        assert.ok(changed > ref.length / 10, 'the reference changed the images');
      });

    it('stops before the next image when asked', async () => {
      const gray = new Uint8Array(8 * 1024).fill(128);
      let asked = 0;
      await assert.rejects(
        jpegRoundTrip(gray, new Uint8Array(8 * 1024), G, 8, 50, undefined, () => ++asked > 3),
        (e: Error) => e.constructor.name === 'Stopped',
      );
    });
  },
);
