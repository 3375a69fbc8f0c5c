/**
 * IDX (MNIST-style) reading and writing on Debian's real Fashion-MNIST files: counts, names and
 * statistics, pixels checked against the gunzipped bytes, plain and gzipped inputs, an exact round
 * trip through writeIdx, and errors that name the file at fault.
 */
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Dataset, DatasetSplits } from '../src/data/dataset.js';
import { FASHION_MNIST_CLASSES, MNIST_CLASSES, readIdxFolder, writeIdx } from '../src/data/idx.js';
import {
  FASHION_DIR,
  FASHION_FILES,
  NO_FASHION,
  type FashionRaw,
  assertSameDataset,
  bytesOf,
  countsOf,
  fashionRaw,
  sha256,
  tempDirs,
  splits,
  FASHION_NAMES,
} from './helpers.js';

const newDir = tempDirs('idx');

/** IDX file bytes built by hand: a 3-D uint8 image array or a 1-D label array. */
function idxImages(n: number, rows: number, cols: number, pixels: Uint8Array): Buffer {
  const head = Buffer.alloc(16);
  head.writeUInt32BE(0x803, 0);
  head.writeUInt32BE(n, 4);
  head.writeUInt32BE(rows, 8);
  head.writeUInt32BE(cols, 12);
  return Buffer.concat([head, pixels]);
}

function idxLabels(labels: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(0x801, 0);
  head.writeUInt32BE(labels.length, 4);
  return Buffer.concat([head, labels]);
}

/**
 * A small plain (non-gzipped) IDX folder of real Fashion-MNIST images: the first `n` training
 * and `m` test images, with hooks to damage one file.
 */
async function smallIdx(n = 100, m = 20): Promise<string> {
  const dir = await newDir();
  for (const [prefix, count] of [
    ['train', n],
    ['t10k', m],
  ] as const) {
    const raw = await fashionRaw(prefix);
    await writeFile(
      path.join(dir, `${prefix}-images-idx3-ubyte`),
      idxImages(count, 28, 28, raw.pixels.subarray(0, count * 784)),
    );
    await writeFile(
      path.join(dir, `${prefix}-labels-idx1-ubyte`),
      idxLabels(raw.labels.subarray(0, count)),
    );
  }
  return dir;
}

describe('readIdxFolder on Debian’s Fashion-MNIST', { skip: NO_FASHION }, () => {
  let data: DatasetSplits<Dataset>;
  let test: Dataset;
  let train: FashionRaw;
  let t10k: FashionRaw;

  before(async () => {
    data = await readIdxFolder(FASHION_DIR);
    assert.ok(data.test, 'test split read');
    test = data.test;
    train = await fashionRaw('train');
    t10k = await fashionRaw('t10k');
  });

  it('has 60,000 / 10,000 images of 28×28×1 and Fashion-MNIST’s class names', () => {
    assert.equal(data.format, 'idx');
    assert.equal(data.dataDir, FASHION_DIR);
    assert.equal(data.train.labels.length, 60_000);
    assert.equal(test.labels.length, 10_000);
    for (const ds of [data.train, test]) {
      assert.deepEqual([ds.height, ds.width, ds.channels], [28, 28, 1]);
      assert.equal(ds.images.length, ds.labels.length * 784);
      assert.deepEqual(ds.classNames, FASHION_NAMES);
    }
    assert.deepEqual(FASHION_MNIST_CLASSES, FASHION_NAMES);
  });

  it('has 6,000 training and 1,000 test images per class', () => {
    assert.deepEqual(countsOf(data.train.labels, 10), new Array(10).fill(6000));
    assert.deepEqual(countsOf(test.labels, 10), new Array(10).fill(1000));
  });

  it('has the known training mean pixel (0.2860) and the same sum as the raw bytes', () => {
    let sum = 0;
    for (let i = 0; i < data.train.images.length; i++) sum += data.train.images[i];
    let rawSum = 0;
    for (let i = 0; i < train.pixels.length; i++) rawSum += train.pixels[i];
    assert.equal(train.pixels.length, 60_000 * 784);
    assert.equal(sum, rawSum);
    const mean = sum / (60_000 * 784) / 255;
    assert.ok(Math.abs(mean - 0.286) < 1e-3, `mean ${mean}`);
  });

  it('keeps every pixel and label of the gunzipped files, in order', () => {
    assert.ok(bytesOf(data.train.images).equals(train.pixels), 'train pixels');
    assert.ok(bytesOf(test.images).equals(t10k.pixels), 'test pixels');
    assert.deepEqual(Array.from(data.train.labels), Array.from(train.labels));
    assert.deepEqual(Array.from(test.labels), Array.from(t10k.labels));
    // Known first labels: the first training image is an ankle boot, the first test one too.
    assert.equal(data.train.labels[0], 9);
    assert.equal(test.labels[0], 9);
  });

  it('puts pixel (y, x) of image i at i×784 + y×28 + x (spot checks vs the IDX bytes)', () => {
    for (const [ds, file, i, y, x] of [
      [data.train, train.imageFile, 0, 0, 0],
      [data.train, train.imageFile, 0, 14, 14],
      [data.train, train.imageFile, 12_345, 20, 7],
      [data.train, train.imageFile, 59_999, 27, 27],
      [test, t10k.imageFile, 0, 10, 20],
      [test, t10k.imageFile, 9_999, 13, 0],
    ] as const) {
      const want = file[16 + i * 784 + y * 28 + x];
      assert.equal(ds.images[i * 784 + y * 28 + x], want, `image ${i} (${y}, ${x})`);
    }
    const nonZero = [0, 100, 5000].map((i) => data.train.images[i * 784 + 14 * 28 + 14]);
    assert.ok(
      nonZero.some((v) => v > 0),
      'centre pixels are not all black',
    );
  });

  it('lists the four gzipped files with their sha256', async () => {
    assert.deepEqual(
      data.files.map((f) => path.basename(f.path)),
      ['train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz', ...FASHION_FILES.slice(2)],
    );
    for (const f of data.files) {
      const bytes = await readFile(f.path);
      assert.equal(f.bytes, bytes.length);
      assert.equal(f.sha256, sha256(bytes));
    }
  });

  it('reads the same data from plain (gunzipped) copies', async () => {
    const dir = await newDir();
    for (const [split, raw] of [
      ['train', train],
      ['t10k', t10k],
    ] as const) {
      // Equal to gunzipping the Debian files (checked in the tests above).
      await writeFile(path.join(dir, `${split}-images-idx3-ubyte`), raw.imageFile);
      await writeFile(path.join(dir, `${split}-labels-idx1-ubyte`), raw.labelFile);
    }
    const plain = await readIdxFolder(dir, MNIST_CLASSES);
    assertSameDataset(plain.train, { ...data.train, classNames: MNIST_CLASSES }, 'train');
    assert.ok(plain.test);
    assertSameDataset(plain.test, { ...test, classNames: MNIST_CLASSES }, 'test');
    assert.deepEqual(
      plain.files.map((f) => [path.basename(f.path), f.bytes]),
      [
        ['train-images-idx3-ubyte', 16 + 60_000 * 784],
        ['train-labels-idx1-ubyte', 8 + 60_000],
        ['t10k-images-idx3-ubyte', 16 + 10_000 * 784],
        ['t10k-labels-idx1-ubyte', 8 + 10_000],
      ],
    );
    assert.equal(plain.files[0].sha256, sha256(train.imageFile));
  });

  it('writeIdx → readIdxFolder is exact, and the written files gunzip to the originals', async () => {
    // The whole test split, and the first 15,000 training images (gzip is the slow part).
    const n = 15_000;
    const trainPart: Dataset = {
      ...data.train,
      images: data.train.images.subarray(0, n * 784),
      labels: data.train.labels.subarray(0, n),
    };
    const dir = await newDir();
    let reported = 0;
    await writeIdx(dir, splits(trainPart, test), () => reported++);
    assert.equal(reported, n + 10_000);
    const back = await readIdxFolder(dir);
    assertSameDataset(back.train, trainPart, 'train');
    assert.ok(back.test);
    assertSameDataset(back.test, test, 'test');
    const expected: Record<string, Buffer> = {
      'train-images-idx3-ubyte.gz': idxImages(n, 28, 28, train.pixels.subarray(0, n * 784)),
      'train-labels-idx1-ubyte.gz': idxLabels(train.labels.subarray(0, n)),
      't10k-images-idx3-ubyte.gz': t10k.imageFile,
      't10k-labels-idx1-ubyte.gz': t10k.labelFile,
    };
    for (const f of FASHION_FILES) {
      const written = gunzipSync(await readFile(path.join(dir, f)));
      assert.ok(written.equals(expected[f]), `${f} content differs`);
    }
    // The test split's files are the originals' content exactly.
    assert.ok(
      gunzipSync(await readFile(path.join(FASHION_DIR, FASHION_FILES[2]))).equals(
        expected[FASHION_FILES[2]],
      ),
    );
  });
});

describe('writeIdx → readIdxFolder on subsets', { skip: NO_FASHION }, () => {
  it('is exact for a training split alone, with MNIST names', async () => {
    const raw = await fashionRaw('t10k');
    const ds: Dataset = {
      height: 28,
      width: 28,
      channels: 1,
      images: new Uint8Array(raw.pixels.subarray(784 * 500, 784 * 1737)),
      labels: Int32Array.from(raw.labels.subarray(500, 1737)),
      classNames: MNIST_CLASSES,
    };
    const dir = await newDir();
    await writeIdx(dir, splits(ds, null));
    const back = await readIdxFolder(dir, MNIST_CLASSES);
    assert.equal(back.test, null);
    assertSameDataset(back.train, ds, 'train');
  });

  it('keeps a non-28×28 size (cropped real images)', async () => {
    const raw = await fashionRaw('train');
    const n = 50;
    const images = new Uint8Array(n * 20 * 24);
    for (let i = 0; i < n; i++)
      for (let y = 0; y < 20; y++)
        for (let x = 0; x < 24; x++)
          images[(i * 20 + y) * 24 + x] = raw.pixels[i * 784 + (y + 4) * 28 + x + 2];
    const ds: Dataset = {
      height: 20,
      width: 24,
      channels: 1,
      images,
      labels: Int32Array.from(raw.labels.subarray(0, n)),
      classNames: FASHION_NAMES,
    };
    const dir = await newDir();
    await writeIdx(dir, splits(ds, ds));
    const back = await readIdxFolder(dir);
    assertSameDataset(back.train, ds, 'train');
    assert.ok(back.test);
    assertSameDataset(back.test, ds, 'test');
  });

  it('refuses RGB data, suggesting npy or png', async () => {
    const rgb: Dataset = {
      height: 32,
      width: 32,
      channels: 3,
      images: new Uint8Array(3 * 3072),
      labels: new Int32Array(3),
      classNames: ['a'],
    };
    await assert.rejects(writeIdx(await newDir(), splits(rgb, null)), /grayscale.*3 channels.*npy/);
  });
});

describe('readIdxFolder errors name the file at fault', { skip: NO_FASHION }, () => {
  it('reads the small fixture folder (sanity check for the error cases)', async () => {
    const data = await readIdxFolder(await smallIdx());
    assert.equal(data.train.labels.length, 100);
    assert.equal(data.test?.labels.length, 20);
  });

  it('bad magic in the images and in the labels file', async () => {
    const dir = await smallIdx();
    const img = path.join(dir, 'train-images-idx3-ubyte');
    const good = await readFile(img);
    const bad = Buffer.from(good);
    bad.writeUInt32BE(0x801, 0); // a label file's magic
    await writeFile(img, bad);
    await assert.rejects(
      readIdxFolder(dir),
      /train-images-idx3-ubyte: not an IDX image file \(expected magic 0x00000803/,
    );
    await writeFile(img, good);
    const lbl = path.join(dir, 't10k-labels-idx1-ubyte');
    const labels = await readFile(lbl);
    labels[3] = 3;
    await writeFile(lbl, labels);
    await assert.rejects(
      readIdxFolder(dir),
      /t10k-labels-idx1-ubyte: not an IDX label file \(expected magic 0x00000801\)/,
    );
  });

  it('truncated and over-long images file', async () => {
    const dir = await smallIdx();
    const img = path.join(dir, 'train-images-idx3-ubyte');
    const bytes = await readFile(img);
    await writeFile(img, bytes.subarray(0, bytes.length - 10));
    await assert.rejects(
      readIdxFolder(dir),
      /train-images-idx3-ubyte: 78406 bytes, expected 78416 for 100 images of 28×28 \(truncated/,
    );
    await writeFile(img, Buffer.concat([bytes, Buffer.alloc(1)]));
    await assert.rejects(readIdxFolder(dir), /train-images-idx3-ubyte: 78417 bytes.*over-long/);
    await writeFile(img, bytes.subarray(0, 12));
    await assert.rejects(readIdxFolder(dir), /train-images-idx3-ubyte: not an IDX image file/);
  });

  it('truncated gzipped images file', async () => {
    const dir = await smallIdx();
    const img = path.join(dir, 'train-images-idx3-ubyte');
    const gz = gzipSync(await readFile(img));
    await writeFile(`${img}.gz`, gz.subarray(0, gz.length - 200));
    await assert.rejects(readIdxFolder(dir), /train-images-idx3-ubyte\.gz: corrupt gzip data/);
  });

  it('label out of range', async () => {
    const dir = await smallIdx();
    const lbl = path.join(dir, 'train-labels-idx1-ubyte');
    const bytes = await readFile(lbl);
    bytes[8 + 42] = 10;
    await writeFile(lbl, bytes);
    await assert.rejects(
      readIdxFolder(dir),
      /train-labels-idx1-ubyte record 42: label 10, expected 0\.\.9/,
    );
    // With three class names, Fashion-MNIST's labels 3..9 are out of range too.
    const first = (await fashionRaw('train')).labels.findIndex((l) => l >= 3);
    await assert.rejects(
      readIdxFolder(await smallIdx(), ['a', 'b', 'c']),
      new RegExp(`train-labels-idx1-ubyte record ${first}: label \\d, expected 0\\.\\.2`),
    );
  });

  it('count mismatch between images and labels', async () => {
    const dir = await smallIdx();
    const raw = await fashionRaw('t10k');
    await writeFile(
      path.join(dir, 't10k-labels-idx1-ubyte'),
      idxLabels(raw.labels.subarray(0, 19)),
    );
    await assert.rejects(
      readIdxFolder(dir),
      /t10k-labels-idx1-ubyte: 19 labels for 20 images in .*t10k-images-idx3-ubyte/,
    );
  });

  it('label file whose header count disagrees with its length', async () => {
    const dir = await smallIdx();
    const lbl = path.join(dir, 'train-labels-idx1-ubyte');
    const bytes = await readFile(lbl);
    await writeFile(lbl, bytes.subarray(0, bytes.length - 1));
    await assert.rejects(
      readIdxFolder(dir),
      /train-labels-idx1-ubyte: 107 bytes, expected 108 for 100 labels/,
    );
  });

  it('missing training files: the message names the folder', async () => {
    const empty = await newDir();
    await assert.rejects(
      readIdxFolder(empty),
      (e: Error) =>
        e.message.startsWith(`${empty}: no train-images-idx3-ubyte[.gz]`) &&
        e.message.includes('train-labels-idx1-ubyte'),
    );
    const onlyImages = await smallIdx();
    await rm(path.join(onlyImages, 'train-labels-idx1-ubyte'));
    await assert.rejects(readIdxFolder(onlyImages), (e: Error) =>
      e.message.startsWith(`${onlyImages}: train-labels-idx1-ubyte[.gz] is missing`),
    );
    await assert.rejects(readIdxFolder(path.join(empty, 'nope')), /nope: no train-images/);
  });

  it('has no test split without t10k files', async () => {
    const dir = await smallIdx();
    await rm(path.join(dir, 't10k-images-idx3-ubyte'));
    await rm(path.join(dir, 't10k-labels-idx1-ubyte'));
    const data = await readIdxFolder(dir);
    assert.equal(data.test, null);
    assert.equal(data.files.length, 2);
  });
});
