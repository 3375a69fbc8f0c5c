/**
 * CIFAR-10 / CIFAR-100 binary reading and writing on the real CIFAR-10 copy in ../shared/data: the
 * documented counts, statistics and checksums, pixels checked against the raw bytes decoded here,
 * byte-identical round trips, and errors that name the file and record at fault.
 */
import assert from 'node:assert/strict';
import { copyFile, readFile, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import {
  CIFAR10_CLASSES,
  readCifar10,
  readCifar100,
  writeCifar10,
  writeCifar100,
} from '../src/data/cifar.js';
import type { Dataset, DatasetSplits } from '../src/data/dataset.js';
import {
  CIFAR_DIR,
  CIFAR_RECORD,
  CIFAR_TRAIN_FILES,
  assertSameDataset,
  bytesOf,
  cifarClassNames,
  cifarDataset,
  cifarRecordToHwc,
  cifarRecords,
  countsOf,
  sha256,
  tempDirs,
  splits,
} from './helpers.js';

const newDir = tempDirs('cifar');

/** The checksums listed in ../shared/data/README.md. */
const README_SHA256: Record<string, string> = {
  'data_batch_1.bin': 'cee916563c9f80d84e3cc88e17fdc0941787f1244f00a67874d45b261883ada5',
  'data_batch_2.bin': 'a591ca11fa1708a91ee40f54b3da4784ccd871ecf2137de63f51ada8b3fa57ed',
  'data_batch_3.bin': 'bbe8596564c0f86427f876058170b84dac6670ddf06d79402899d93ceea26f67',
  'data_batch_4.bin': '014e562d6e23c72197cc727519169a60359f5eccd8945ad5a09d710285ff4e48',
  'data_batch_5.bin': '755304fc0b379caeae8c14f0dac912fbc7d6cd469eb67a1029a08a39453a9add',
  'test_batch.bin': '3efc7abf3b64f5984236583d95a12a72462afd5a415c21b40ff40c156fed9ada',
};
const TRAIN_MEAN = [0.49139968, 0.48215841, 0.44653091];
const TRAIN_STD = [0.24703223, 0.24348513, 0.26158784];

/** Per-channel mean and (population) std of HWC uint8 pixels on the 0–1 scale, in float64. */
function channelStats(images: Uint8Array): { mean: number[]; std: number[] } {
  const sum = [0, 0, 0];
  const sq = [0, 0, 0];
  for (let c = 0; c < 3; c++) {
    let s = 0;
    let q = 0;
    for (let i = c; i < images.length; i += 3) {
      const v = images[i];
      s += v;
      q += v * v;
    }
    sum[c] = s; // exact: at most 51.2e6 × 255² < 2^53
    sq[c] = q;
  }
  const n = images.length / 3;
  const mean = sum.map((s) => s / n / 255);
  const std = sq.map((q, c) => Math.sqrt(q / n / (255 * 255) - mean[c] * mean[c]));
  return { mean, std };
}

/** A small CIFAR-10 folder of real records: `per` records in each data batch and the test batch. */
async function smallCifar10(per = 10): Promise<string> {
  const dir = await newDir();
  for (const [b, file] of CIFAR_TRAIN_FILES.entries())
    await writeFile(path.join(dir, file), await cifarRecords('data_batch_1.bin', per, b * per));
  await writeFile(path.join(dir, 'test_batch.bin'), await cifarRecords('test_batch.bin', per));
  await copyFile(path.join(CIFAR_DIR, 'batches.meta.txt'), path.join(dir, 'batches.meta.txt'));
  return dir;
}

/** CIFAR-100 names for the test: the ten CIFAR-10 names first, then made-up ones. */
const FINE_NAMES = Array.from({ length: 100 }, (_, i) => CIFAR10_CLASSES[i] ?? `fine_${i}`);
const COARSE_NAMES = Array.from({ length: 20 }, (_, i) => `coarse_${i}`);

/**
 * CIFAR-100 records built from real CIFAR-10 ones: (coarse, fine) label bytes, then the same
 * planes. The fine label is the CIFAR-10 label moved by a multiple of 10 to cover 0..99.
 */
function toCifar100(raw: Buffer): { bytes: Buffer; fine: number[]; coarse: number[] } {
  const n = raw.length / CIFAR_RECORD;
  const bytes = Buffer.alloc(n * (CIFAR_RECORD + 1));
  const fine: number[] = [];
  const coarse: number[] = [];
  for (let r = 0; r < n; r++) {
    const rec = raw.subarray(r * CIFAR_RECORD, (r + 1) * CIFAR_RECORD);
    const f = rec[0] + 10 * (r % 10);
    const c = (r * 7) % 20;
    fine.push(f);
    coarse.push(c);
    const o = r * (CIFAR_RECORD + 1);
    bytes[o] = c;
    bytes[o + 1] = f;
    rec.copy(bytes, o + 2, 1);
  }
  return { bytes, fine, coarse };
}

describe('readCifar10 on the real CIFAR-10 copy', () => {
  let data: DatasetSplits<Dataset>;
  let test: Dataset;
  const raw: Record<string, Buffer> = {};

  before(async () => {
    data = await readCifar10(CIFAR_DIR);
    assert.ok(data.test, 'test split read');
    test = data.test;
    for (const f of [...CIFAR_TRAIN_FILES, 'test_batch.bin', 'test_batch_exact_first1000.bin'])
      raw[f] = await readFile(path.join(CIFAR_DIR, f));
  });

  it('has 50,000 training and 10,000 test images of 32×32×3 and the named classes', async () => {
    assert.equal(data.format, 'cifar10');
    assert.equal(data.dataDir, CIFAR_DIR);
    for (const ds of [data.train, test]) {
      assert.deepEqual([ds.height, ds.width, ds.channels], [32, 32, 3]);
      assert.equal(ds.images.length, ds.labels.length * 32 * 32 * 3);
      assert.equal(ds.coarseLabels, undefined);
    }
    assert.equal(data.train.labels.length, 50_000);
    assert.equal(test.labels.length, 10_000);
    const names = await cifarClassNames();
    assert.deepEqual(names, CIFAR10_CLASSES);
    assert.deepEqual(data.train.classNames, names);
    assert.deepEqual(test.classNames, names);
  });

  it('has 5,000 training and 1,000 test images per class', () => {
    assert.deepEqual(countsOf(data.train.labels, 10), new Array(10).fill(5000));
    assert.deepEqual(countsOf(test.labels, 10), new Array(10).fill(1000));
  });

  it('has the documented per-channel training mean and std (0–1 scale, to 1e-6)', () => {
    const { mean, std } = channelStats(data.train.images);
    for (let c = 0; c < 3; c++) {
      assert.ok(
        Math.abs(mean[c] - TRAIN_MEAN[c]) < 1e-6,
        `channel ${c} mean ${mean[c]}, expected ${TRAIN_MEAN[c]}`,
      );
      assert.ok(
        Math.abs(std[c] - TRAIN_STD[c]) < 1e-6,
        `channel ${c} std ${std[c]}, expected ${TRAIN_STD[c]}`,
      );
    }
  });

  it('keeps every label byte, in file order', () => {
    for (let i = 0; i < 50_000; i++) {
      const file = raw[CIFAR_TRAIN_FILES[Math.floor(i / 10_000)]];
      if (data.train.labels[i] !== file[(i % 10_000) * CIFAR_RECORD])
        assert.fail(`train label ${i}: ${data.train.labels[i]}`);
    }
    for (let i = 0; i < 10_000; i++)
      if (test.labels[i] !== raw['test_batch.bin'][i * CIFAR_RECORD])
        assert.fail(`test label ${i}: ${test.labels[i]}`);
    assert.equal(data.train.labels[0], 6); // the first training image is a frog
    assert.equal(test.labels[0], 3); // the first test image is a cat
  });

  it('turns the R, G, B planes into H×W×C pixels (spot pixels vs raw bytes)', () => {
    // Well-known values: data_batch_1 record 0, pixel (0, 0) is RGB (59, 62, 63).
    assert.deepEqual(Array.from(data.train.images.subarray(0, 3)), [59, 62, 63]);
    const spots: Array<[split: 'train' | 'test', index: number, y: number, x: number]> = [
      ['train', 0, 31, 31],
      ['train', 0, 5, 17],
      ['train', 9_999, 0, 31],
      ['train', 10_000, 31, 0],
      ['train', 23_456, 16, 16],
      ['train', 49_999, 12, 3],
      ['test', 0, 0, 0],
      ['test', 999, 30, 29],
      ['test', 9_999, 31, 31],
    ];
    for (const [split, index, y, x] of spots) {
      const ds = split === 'train' ? data.train : test;
      const file =
        split === 'train' ? CIFAR_TRAIN_FILES[Math.floor(index / 10_000)] : 'test_batch.bin';
      const rec = (index % 10_000) * CIFAR_RECORD;
      for (let c = 0; c < 3; c++) {
        const want = raw[file][rec + 1 + c * 1024 + y * 32 + x];
        const got = ds.images[index * 3072 + (y * 32 + x) * 3 + c];
        assert.equal(got, want, `${split} image ${index} pixel (${y}, ${x}) channel ${c}`);
      }
    }
  });

  it('decodes whole images exactly like a plain per-byte decoder (every 97th image)', () => {
    for (let i = 0; i < 60_000; i += 97) {
      const [ds, j] = i < 50_000 ? [data.train, i] : [test, i - 50_000];
      const file = i < 50_000 ? CIFAR_TRAIN_FILES[Math.floor(j / 10_000)] : 'test_batch.bin';
      const off = (j % 10_000) * CIFAR_RECORD;
      const want = cifarRecordToHwc(raw[file].subarray(off, off + CIFAR_RECORD));
      assert.ok(
        bytesOf(ds.images.subarray(j * 3072, (j + 1) * 3072)).equals(want),
        `image ${j} of ${file}`,
      );
    }
  });

  it('matches test_batch_exact_first1000.bin on the first 1,000 test records', () => {
    const exact = cifarDataset(raw['test_batch_exact_first1000.bin'], test.classNames);
    assert.ok(bytesOf(test.images.subarray(0, 1000 * 3072)).equals(bytesOf(exact.images)));
    assert.deepEqual(Array.from(test.labels.subarray(0, 1000)), Array.from(exact.labels));
  });

  it('lists the input files with the sha256 the data README documents', () => {
    assert.deepEqual(
      data.files.map((f) => path.basename(f.path)),
      [...CIFAR_TRAIN_FILES, 'test_batch.bin'],
    );
    for (const f of data.files) {
      const name = path.basename(f.path);
      assert.equal(f.path, path.join(CIFAR_DIR, name));
      assert.equal(f.bytes, 10_000 * CIFAR_RECORD, name);
      assert.equal(f.sha256, README_SHA256[name], name);
    }
  });

  it('writeCifar10 of the unmodified splits gives back the original files, byte for byte', async () => {
    const dir = await newDir();
    let reported = 0;
    await writeCifar10(dir, splits(data.train, test), () => reported++);
    assert.equal(reported, 60_000);
    for (const file of [...CIFAR_TRAIN_FILES, 'test_batch.bin']) {
      const written = await readFile(path.join(dir, file));
      assert.ok(written.equals(raw[file]), `${file} differs from the original`);
    }
    const back = await readCifar10(dir);
    assertSameDataset(back.train, data.train, 'train');
    assert.ok(back.test);
    assertSameDataset(back.test, test, 'test');
    assert.deepEqual(
      back.files.map((f) => f.sha256),
      data.files.map((f) => f.sha256),
    );
  });
});

describe('writeCifar10 → readCifar10 round trip', () => {
  it('is exact for a subset that does not split evenly into five batches', async () => {
    const names = await cifarClassNames();
    const train = cifarDataset(await cifarRecords('data_batch_2.bin', 1234, 17), names);
    const test = cifarDataset(await cifarRecords('test_batch_exact_first1000.bin', 321), names);
    const dir = await newDir();
    await writeCifar10(dir, splits(train, test));
    const sizes = [];
    for (const f of CIFAR_TRAIN_FILES)
      sizes.push((await readFile(path.join(dir, f))).length / CIFAR_RECORD);
    assert.deepEqual(sizes, [246, 247, 247, 247, 247]);
    const back = await readCifar10(dir);
    assertSameDataset(back.train, train, 'train');
    assert.ok(back.test);
    assertSameDataset(back.test, test, 'test');
    const meta = (await readFile(path.join(dir, 'batches.meta.txt'), 'utf8')).split('\n');
    assert.deepEqual(meta.slice(0, 10), names);
  });

  it('keeps custom class names through batches.meta.txt', async () => {
    const names = CIFAR10_CLASSES.map((n) => `my ${n}`);
    const train = cifarDataset(await cifarRecords('data_batch_3.bin', 50), names);
    const dir = await newDir();
    await writeCifar10(dir, splits(train, null));
    const back = await readCifar10(dir);
    assert.equal(back.test, null);
    assertSameDataset(back.train, train, 'train');
  });

  it('is readable back for a tiny training split (fewer records than five full batches)', async () => {
    const names = await cifarClassNames();
    const train = cifarDataset(await cifarRecords('data_batch_1.bin', 7), names);
    const dir = await newDir();
    await writeCifar10(dir, splits(train, null));
    const back = await readCifar10(dir);
    assertSameDataset(back.train, train, 'train');
    const sizes = await Promise.all(
      [1, 2, 3, 4, 5].map(
        async (b) => (await stat(path.join(dir, `data_batch_${b}.bin`))).size / 3073,
      ),
    );
    assert.deepEqual(sizes, [1, 1, 2, 1, 2]);
  });

  it('refuses fewer than 5 training images and a class count other than 10', async () => {
    const names = await cifarClassNames();
    const four = cifarDataset(await cifarRecords('data_batch_1.bin', 4), names);
    await assert.rejects(
      writeCifar10(await newDir(), splits(four, null)),
      /needs at least 5, got 4/,
    );
    const twelve = cifarDataset(await cifarRecords('data_batch_1.bin', 20), [...names, 'x', 'y']);
    await assert.rejects(
      writeCifar10(await newDir(), splits(twelve, null)),
      /holds 10 classes, this dataset has 12; use --format png or --format npy/,
    );
  });

  it('refuses data that is not 32×32×3, suggesting png or npy', async () => {
    const gray: Dataset = {
      height: 28,
      width: 28,
      channels: 1,
      images: new Uint8Array(2 * 784),
      labels: new Int32Array(2),
      classNames: ['a', 'b'],
    };
    const big: Dataset = { ...gray, height: 64, width: 64, channels: 3 };
    big.images = new Uint8Array(2 * 64 * 64 * 3);
    for (const [ds, shape] of [
      [gray, '28×28×1'],
      [big, '64×64×3'],
    ] as const) {
      const re = new RegExp(`32×32 RGB.*${shape}.*png.*npy`);
      await assert.rejects(writeCifar10(await newDir(), splits(ds, null)), re);
      await assert.rejects(writeCifar100(await newDir(), splits(ds, null)), re);
    }
  });
});

describe('readCifar10 errors name the file and record', () => {
  it('reads the small fixture folder (sanity check for the error cases)', async () => {
    const data = await readCifar10(await smallCifar10());
    assert.equal(data.train.labels.length, 50);
    assert.equal(data.test?.labels.length, 10);
  });

  it('truncated file', async () => {
    const dir = await smallCifar10();
    const file = path.join(dir, 'data_batch_3.bin');
    const bytes = await readFile(file);
    await writeFile(file, bytes.subarray(0, bytes.length - 100));
    await assert.rejects(
      readCifar10(dir),
      /data_batch_3\.bin: 30630 bytes is not a whole number of 3073-byte records \(9 records and 2973 bytes over: truncated/,
    );
  });

  it('truncated test file', async () => {
    const dir = await smallCifar10();
    const file = path.join(dir, 'test_batch.bin');
    await writeFile(file, (await readFile(file)).subarray(0, 3072));
    await assert.rejects(readCifar10(dir), /test_batch\.bin: 3072 bytes .*0 records and 3072/);
  });

  it('over-long file', async () => {
    const dir = await smallCifar10();
    const file = path.join(dir, 'data_batch_2.bin');
    await writeFile(file, Buffer.concat([await readFile(file), Buffer.alloc(5)]));
    await assert.rejects(
      readCifar10(dir),
      /data_batch_2\.bin: 30735 bytes .*10 records and 5 bytes over.*over-long/,
    );
  });

  it('label byte out of range', async () => {
    const dir = await smallCifar10();
    const file = path.join(dir, 'data_batch_4.bin');
    const bytes = await readFile(file);
    bytes[7 * CIFAR_RECORD] = 10;
    await writeFile(file, bytes);
    await assert.rejects(
      readCifar10(dir),
      /data_batch_4\.bin record 7: label byte 10, expected 0\.\.9/,
    );
  });

  it('empty file', async () => {
    const dir = await smallCifar10();
    await writeFile(path.join(dir, 'data_batch_5.bin'), Buffer.alloc(0));
    await assert.rejects(readCifar10(dir), /data_batch_5\.bin: empty file/);
  });

  it('missing training batch', async () => {
    const dir = await smallCifar10();
    await rm(path.join(dir, 'data_batch_2.bin'));
    await assert.rejects(
      readCifar10(dir),
      /data_batch_2\.bin: not found \(CIFAR-10 training batch\)/,
    );
  });

  it('wrong number of names in batches.meta.txt', async () => {
    const dir = await smallCifar10();
    const names = CIFAR10_CLASSES.slice(0, 9).join('\n') + '\n';
    await writeFile(path.join(dir, 'batches.meta.txt'), names);
    await assert.rejects(readCifar10(dir), /batches\.meta\.txt: 9 class names, expected 10/);
    await writeFile(path.join(dir, 'batches.meta.txt'), [...CIFAR10_CLASSES, 'extra'].join('\n'));
    await assert.rejects(readCifar10(dir), /batches\.meta\.txt: 11 class names, expected 10/);
  });

  it('falls back to the standard names without batches.meta.txt; no test split without test_batch.bin', async () => {
    const dir = await newDir();
    for (const [b, file] of CIFAR_TRAIN_FILES.entries())
      await writeFile(path.join(dir, file), await cifarRecords('data_batch_5.bin', 4, b * 4));
    const data = await readCifar10(dir);
    assert.deepEqual(data.train.classNames, CIFAR10_CLASSES);
    assert.equal(data.test, null);
    assert.equal(data.files.length, 5);
    assert.equal(data.train.labels.length, 20);
  });
});

describe('CIFAR-100 layout (built from real CIFAR-10 records)', () => {
  let dir: string;
  let train: ReturnType<typeof toCifar100>;
  let test: ReturnType<typeof toCifar100>;
  let trainRaw: Buffer;
  let testRaw: Buffer;

  before(async () => {
    dir = await newDir();
    trainRaw = await cifarRecords('data_batch_1.bin', 500, 100);
    testRaw = await cifarRecords('test_batch_exact_first1000.bin', 120);
    train = toCifar100(trainRaw);
    test = toCifar100(testRaw);
    await writeFile(path.join(dir, 'train.bin'), train.bytes);
    await writeFile(path.join(dir, 'test.bin'), test.bytes);
    await writeFile(path.join(dir, 'fine_label_names.txt'), FINE_NAMES.join('\n') + '\n');
    await writeFile(path.join(dir, 'coarse_label_names.txt'), COARSE_NAMES.join('\n') + '\n');
  });

  it('reads fine labels, coarse labels, both name lists and the pixels', async () => {
    const data = await readCifar100(dir);
    assert.equal(data.format, 'cifar100');
    assert.ok(data.test);
    for (const [ds, want, rawRecs] of [
      [data.train, train, trainRaw],
      [data.test, test, testRaw],
    ] as const) {
      assert.deepEqual([ds.height, ds.width, ds.channels], [32, 32, 3]);
      assert.deepEqual(Array.from(ds.labels), want.fine);
      assert.ok(ds.coarseLabels);
      assert.deepEqual(Array.from(ds.coarseLabels), want.coarse);
      assert.deepEqual(ds.classNames, FINE_NAMES);
      assert.deepEqual(ds.coarseClassNames, COARSE_NAMES);
      const c10 = cifarDataset(rawRecs, CIFAR10_CLASSES);
      assert.ok(bytesOf(ds.images).equals(bytesOf(c10.images)), 'pixels');
    }
    assert.ok(Math.max(...train.fine) >= 90, 'fixture covers high fine labels');
    assert.deepEqual(
      data.files.map((f) => [path.basename(f.path), f.bytes, f.sha256]),
      [
        ['train.bin', train.bytes.length, sha256(train.bytes)],
        ['test.bin', test.bytes.length, sha256(test.bytes)],
      ],
    );
  });

  it('writeCifar100 → readCifar100 is byte-exact', async () => {
    const data = await readCifar100(dir);
    assert.ok(data.test);
    const out = await newDir();
    let reported = 0;
    await writeCifar100(out, splits(data.train, data.test), () => reported++);
    assert.equal(reported, 620);
    assert.ok((await readFile(path.join(out, 'train.bin'))).equals(train.bytes), 'train.bin');
    assert.ok((await readFile(path.join(out, 'test.bin'))).equals(test.bytes), 'test.bin');
    const back = await readCifar100(out);
    assert.ok(back.test);
    for (const [a, b] of [
      [back.train, data.train],
      [back.test, data.test],
    ] as const) {
      assertSameDataset(a, b, 'cifar100');
      assert.deepEqual(Array.from(a.coarseLabels ?? []), Array.from(b.coarseLabels ?? []));
      assert.deepEqual(a.coarseClassNames, COARSE_NAMES);
    }
  });

  it('names the file and record for an out-of-range fine or coarse label', async () => {
    for (const [offset, value, re] of [
      [1, 100, /train\.bin record 3: label byte 100, expected 0\.\.99/],
      [0, 20, /train\.bin record 3: coarse label byte 20, expected 0\.\.19/],
    ] as const) {
      const bad = await newDir();
      for (const f of ['test.bin', 'fine_label_names.txt', 'coarse_label_names.txt'])
        await copyFile(path.join(dir, f), path.join(bad, f));
      const bytes = Buffer.from(train.bytes);
      bytes[3 * (CIFAR_RECORD + 1) + offset] = value;
      await writeFile(path.join(bad, 'train.bin'), bytes);
      await assert.rejects(readCifar100(bad), re);
    }
  });

  it('names the file for a wrong record size, an empty file or a wrong names file', async () => {
    const bad = await newDir();
    for (const f of ['train.bin', 'fine_label_names.txt', 'coarse_label_names.txt'])
      await copyFile(path.join(dir, f), path.join(bad, f));
    // CIFAR-10 records (3,073 bytes) are not whole 3,074-byte CIFAR-100 records.
    await writeFile(path.join(bad, 'test.bin'), testRaw);
    await assert.rejects(readCifar100(bad), /test\.bin: 368760 bytes .*3074-byte records/);
    await writeFile(path.join(bad, 'test.bin'), Buffer.alloc(0));
    await assert.rejects(readCifar100(bad), /test\.bin: empty file/);
    await writeFile(path.join(bad, 'test.bin'), test.bytes);
    await writeFile(path.join(bad, 'coarse_label_names.txt'), COARSE_NAMES.slice(1).join('\n'));
    await assert.rejects(readCifar100(bad), /coarse_label_names\.txt: 19 class names, expected 20/);
    await writeFile(path.join(bad, 'coarse_label_names.txt'), COARSE_NAMES.join('\n'));
    await writeFile(path.join(bad, 'fine_label_names.txt'), CIFAR10_CLASSES.join('\n'));
    await assert.rejects(readCifar100(bad), /fine_label_names\.txt: 10 class names, expected 100/);
  });
});
