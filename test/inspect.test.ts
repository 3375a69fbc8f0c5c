/**
 * `inspect`'s "changed elsewhere" count on a tampered copy: a real CIFAR-10 subset protected with
 * OPS (NumPy format), then a known number of bytes changed at distinct pixel positions outside
 * the chosen pixel in known classes, and one byte changed at a chosen pixel. The per-class counts
 * must be exactly the tampered positions (the chosen pixel's change is allowed), the L0 means
 * must grow by exactly those positions, and the other classes must stay at 0.
 */
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { type Dataset, streamOf } from '../src/data/dataset.js';
import { writeNpy } from '../src/data/npy.js';
import { cifarClassNames, cifarDataset, cifarRecords, runCli, tempDirs } from './helpers.js';

const tmp = tempDirs('inspect');

interface Report {
  sourceNote: string | null;
  classes: Array<{
    label: number;
    images: number;
    meanL0: number;
    maxL0: number;
    psnr: number | string;
    changedOutsidePixels: number;
  }>;
}

interface Manifest {
  classes: Array<{ label: number; pixels: Array<{ row: number; col: number }> }>;
}

describe('inspect on a tampered copy', () => {
  let src: Dataset;
  let out: string;
  before(async () => {
    const names = await cifarClassNames();
    src = cifarDataset(await cifarRecords('data_batch_1.bin', 300), names);
    const dir = await tmp();
    await writeNpy(dir, [
      { name: 'train', stream: streamOf(src) },
      {
        name: 'test',
        stream: streamOf(cifarDataset(await cifarRecords('test_batch.bin', 20), names)),
      },
    ]);
    out = path.join(await tmp(), 'ops');
    const r = await runCli([
      ...['protect', '--dataset', 'npy', '--data-dir', dir, '--out', out, '--format', 'npy'],
    ]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('counts exactly the tampered positions outside the chosen pixels, per class', async () => {
    const inspectJson = async () => {
      const r = await runCli(['inspect', '--json', out]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout) as Report;
    };
    const intact = await inspectJson();
    assert.equal(intact.sourceNote, null);
    for (const c of intact.classes) assert.equal(c.changedOutsidePixels, 0);

    const m = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as Manifest;
    const chosen = (label: number) => m.classes[label].pixels.map((p) => p.row * 32 + p.col);
    const file = path.join(out, 'x_train.npy');
    const bytes = await readFile(file);
    const offset = bytes.length - src.images.length; // the .npy header
    assert.ok(offset > 0 && offset < 1024);
    // The image bytes follow the header: the copy differs from the source only at chosen pixels.
    let differing = 0;
    for (let k = 0; k < src.images.length; k++)
      if (bytes[offset + k] !== src.images[k]) differing++;
    assert.ok(differing > 0 && differing <= 300 * 3, `${differing} bytes differ`);
    /** Positions where image i of the untouched copy differs from the source. */
    const l0Before = (i: number) => {
      let l0 = 0;
      for (let q = 0; q < 1024; q++)
        for (let c = 0; c < 3; c++)
          if (bytes[offset + i * 3072 + q * 3 + c] !== src.images[i * 3072 + q * 3 + c]) {
            l0++;
            break;
          }
      return l0;
    };
    const imagesOf = (label: number) =>
      Array.from(src.labels.keys()).filter((i) => src.labels[i] === label);
    // Class 3: 5 positions in its first image, 2 in its second; class 7: 4 in one image; the
    // changes use a different channel each time, one byte per position.
    const plan: Array<[label: number, image: number, positions: number]> = [
      [3, 0, 5],
      [3, 1, 2],
      [7, 4, 4],
    ];
    const firstL0 = [l0Before(imagesOf(3)[0]), l0Before(imagesOf(7)[4])];
    const expected = new Array<number>(10).fill(0);
    for (const [label, k, n] of plan) {
      const i = imagesOf(label)[k];
      const avoid = new Set(chosen(label));
      let done = 0;
      for (let q = 17; done < n; q += 97) {
        if (avoid.has(q % 1024)) continue;
        const at = i * 3072 + (q % 1024) * 3 + (done % 3);
        bytes[offset + at] = 255 - src.images[at];
        done++;
      }
      expected[label] += n;
    }
    // One byte at the chosen pixel of a class-5 image: allowed, not counted.
    const i5 = imagesOf(5)[0];
    const at5 = i5 * 3072 + chosen(5)[0] * 3 + 1;
    const was = bytes[offset + at5];
    const v = (was + 128) % 256 === src.images[at5] ? (was + 64) % 256 : (was + 128) % 256;
    bytes[offset + at5] = v;
    await writeFile(file, bytes);

    const tampered = await inspectJson();
    assert.equal(tampered.sourceNote, null);
    assert.deepEqual(
      tampered.classes.map((c) => c.changedOutsidePixels),
      expected,
    );
    for (const c of tampered.classes) {
      const before = intact.classes[c.label];
      const grown = (before.meanL0 * c.images + expected[c.label]) / c.images;
      assert.ok(Math.abs(c.meanL0 - grown) < 1e-12, `class ${c.label}: L0 ${c.meanL0} vs ${grown}`);
    }
    assert.equal(tampered.classes[3].maxL0, firstL0[0] + 5);
    assert.equal(tampered.classes[7].maxL0, firstL0[1] + 4);
    // The class-5 change shows in its PSNR only.
    assert.equal(tampered.classes[5].maxL0, Math.max(intact.classes[5].maxL0, 1));
    const n5 = intact.classes[5].images * 3072;
    const mse = (255 * 255) / 10 ** (Number(intact.classes[5].psnr) / 10);
    const mseNow = mse + ((v - src.images[at5]) ** 2 - (was - src.images[at5]) ** 2) / n5;
    const psnr = 10 * Math.log10((255 * 255) / mseNow);
    assert.ok(Math.abs(Number(tampered.classes[5].psnr) - psnr) < 1e-9, `${psnr}`);
    assert.notEqual(tampered.classes[5].psnr, intact.classes[5].psnr);
    // The text table's last column carries the same counts.
    const text = await runCli(['inspect', out]);
    assert.equal(text.code, 0, text.stderr);
    const counts = text.stdout
      .split('\n')
      .filter((l) => /^\s+\d+ /.test(l))
      .map((l) => Number(l.trim().split(/\s+/).at(-1)));
    assert.deepEqual(counts, expected);
  });
});
