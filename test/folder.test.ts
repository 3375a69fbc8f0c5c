/**
 * Class-folder reading and PNG-folder writing, on real data: CIFAR-10 records (the shared copy) and
 * Fashion-MNIST images (where the system has them) encoded into small folders in a temp dir.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import sharp from 'sharp';
import { streamOf, type Dataset, type ImageRecord, type ImageStream } from '../src/data/dataset.js';
import { openFolder, writePngFolder } from '../src/data/folder.js';
import type { SplitToWrite } from '../src/data/write.js';

const CIFAR_DIR = path.resolve(process.cwd(), '../shared/data/cifar-10-batches-bin');
const CIFAR_BATCH = path.join(CIFAR_DIR, 'data_batch_1.bin');
const FASHION_DIR = '/usr/share/datasets/fashion-mnist';
const FASHION_IMAGES = path.join(FASHION_DIR, 't10k-images-idx3-ubyte.gz');
const FASHION_LABELS = path.join(FASHION_DIR, 't10k-labels-idx1-ubyte.gz');
const HAVE_CIFAR = existsSync(CIFAR_BATCH);
const HAVE_FASHION = existsSync(FASHION_IMAGES) && existsSync(FASHION_LABELS);
const FASHION_CLASSES = [
  'T-shirt_top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

interface Source {
  height: number;
  width: number;
  channels: 1 | 3;
  images: Uint8Array[];
  labels: number[];
  classNames: string[];
}

/** The first `n` records of CIFAR-10's data_batch_1.bin, converted CHW → HWC. */
async function loadCifar(n: number): Promise<Source> {
  const buf = await readFile(CIFAR_BATCH);
  const classNames = (await readFile(path.join(CIFAR_DIR, 'batches.meta.txt'), 'utf8'))
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  const images: Uint8Array[] = [];
  const labels: number[] = [];
  for (let r = 0; r < n; r++) {
    const rec = buf.subarray(r * 3073, (r + 1) * 3073);
    labels.push(rec[0]);
    const hwc = new Uint8Array(32 * 32 * 3);
    for (let p = 0; p < 1024; p++)
      for (let c = 0; c < 3; c++) hwc[p * 3 + c] = rec[1 + c * 1024 + p];
    images.push(hwc);
  }
  return { height: 32, width: 32, channels: 3, images, labels, classNames };
}

/** The first `n` Fashion-MNIST test images (28×28×1) and labels, from the gzipped IDX files. */
async function loadFashion(n: number): Promise<Source> {
  const img = gunzipSync(await readFile(FASHION_IMAGES));
  const lab = gunzipSync(await readFile(FASHION_LABELS));
  assert.equal(img.readUInt32BE(0), 0x00000803);
  assert.equal(lab.readUInt32BE(0), 0x00000801);
  const [rows, cols] = [img.readUInt32BE(8), img.readUInt32BE(12)];
  assert.deepEqual([rows, cols], [28, 28]);
  const images: Uint8Array[] = [];
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    images.push(new Uint8Array(img.subarray(16 + i * 784, 16 + (i + 1) * 784)));
    labels.push(lab[8 + i]);
  }
  return { height: 28, width: 28, channels: 1, images, labels, classNames: FASHION_CLASSES };
}

function encoder(src: Source, image: Uint8Array) {
  const s = sharp(image, { raw: { width: src.width, height: src.height, channels: src.channels } });
  return src.channels === 1 ? s.toColourspace('b-w') : s;
}

/** Writes `src` as `root/<class name>/<index>.<ext>`; returns the class names used, sorted. */
async function writeClassFolders(
  root: string,
  src: Source,
  ext: 'png' | 'jpg' = 'png',
): Promise<string[]> {
  const used = new Set<string>();
  for (let i = 0; i < src.images.length; i++) {
    const name = src.classNames[src.labels[i]];
    used.add(name);
    await mkdir(path.join(root, name), { recursive: true });
    const file = path.join(root, name, `${String(i).padStart(5, '0')}.${ext}`);
    const enc = encoder(src, src.images[i]);
    await (ext === 'png' ? enc.png() : enc.jpeg({ quality: 95 })).toFile(file);
  }
  return [...used].sort();
}

/** What openFolder should yield for a folder written by writeClassFolders: class by class. */
function expectedOrder(src: Source, classes: string[]) {
  const out: { image: Uint8Array; label: number; index: number }[] = [];
  classes.forEach((name, label) => {
    src.images.forEach((image, index) => {
      if (src.classNames[src.labels[index]] === name) out.push({ image, label, index });
    });
  });
  return out;
}

async function collect(stream: ImageStream): Promise<ImageRecord[]> {
  const out: ImageRecord[] = [];
  for await (const r of stream.records()) out.push(r);
  return out;
}

function toDataset(src: Source, classNames = src.classNames): Dataset {
  const size = src.height * src.width * src.channels;
  const images = new Uint8Array(src.images.length * size);
  src.images.forEach((im, i) => images.set(im, i * size));
  return {
    height: src.height,
    width: src.width,
    channels: src.channels,
    images,
    labels: Int32Array.from(src.labels),
    classNames,
  };
}

let tmp = '';
let cifar: Source;
let fashion: Source | null = null;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'onepixel-folder-'));
  if (HAVE_CIFAR) cifar = await loadCifar(200);
  if (HAVE_FASHION) fashion = await loadFashion(60);
});

after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

let counter = 0;
async function freshDir(name: string): Promise<string> {
  const d = path.join(tmp, `${name}-${counter++}`);
  await mkdir(d, { recursive: true });
  return d;
}

function firstN(src: Source, n: number): Source {
  return { ...src, images: src.images.slice(0, n), labels: src.labels.slice(0, n) };
}

describe('openFolder', { skip: HAVE_CIFAR ? false : `no CIFAR-10 at ${CIFAR_DIR}` }, () => {
  it('reads a CIFAR-10 class folder exactly: classes, count, shape, pixels, labels, refs', async () => {
    const src = firstN(cifar, 60);
    const dir = await freshDir('rgb');
    const classes = await writeClassFolders(dir, src);
    const splits = await openFolder(dir);
    assert.equal(splits.format, 'folder');
    assert.equal(splits.dataDir, dir);
    assert.equal(splits.test, null);
    const train = splits.train;
    assert.deepEqual(train.classNames, classes);
    assert.equal(train.count, 60);
    assert.deepEqual([train.height, train.width, train.channels], [32, 32, 3]);
    const records = await collect(train);
    const expected = expectedOrder(src, classes);
    assert.equal(records.length, 60);
    records.forEach((r, i) => {
      assert.deepEqual(r.image, expected[i].image, `record ${i}`);
      assert.equal(r.label, expected[i].label);
      assert.equal(
        r.ref,
        path.join(dir, classes[r.label], `${String(expected[i].index).padStart(5, '0')}.png`),
      );
    });
    // A second pass reads the same again.
    assert.equal((await collect(train)).length, 60);
  });

  it(
    'reads a Fashion-MNIST grayscale folder exactly with 1 channel',
    {
      skip: HAVE_FASHION ? false : `no Fashion-MNIST at ${FASHION_DIR}`,
    },
    async () => {
      const src = fashion as Source;
      const dir = await freshDir('gray');
      const classes = await writeClassFolders(dir, src);
      const { train } = await openFolder(dir);
      assert.deepEqual(train.classNames, classes);
      assert.deepEqual([train.height, train.width, train.channels, train.count], [28, 28, 1, 60]);
      const records = await collect(train);
      const expected = expectedOrder(src, classes);
      records.forEach((r, i) => {
        assert.deepEqual(r.image, expected[i].image, `record ${i}`);
        assert.equal(r.label, expected[i].label);
      });
      // channels: 3 turns grayscale into R = G = B.
      const rgb = await openFolder(dir, { channels: 3 });
      assert.equal(rgb.train.channels, 3);
      const first = (await collect(rgb.train))[0].image;
      assert.equal(first.length, 28 * 28 * 3);
      for (let p = 0; p < 28 * 28; p++) {
        assert.equal(first[p * 3], expected[0].image[p]);
        assert.equal(first[p * 3 + 1], expected[0].image[p]);
        assert.equal(first[p * 3 + 2], expected[0].image[p]);
      }
    },
  );

  it('converts RGB to 1 channel when asked', async () => {
    const dir = await freshDir('to-gray');
    await writeClassFolders(dir, firstN(cifar, 12));
    const { train } = await openFolder(dir, { channels: 1 });
    assert.equal(train.channels, 1);
    const records = await collect(train);
    assert.equal(records.length, 12);
    for (const r of records) assert.equal(r.image.length, 32 * 32);
  });

  it('ignores hidden files, hidden folders and non-image files; extensions are case-insensitive', async () => {
    const src = firstN(cifar, 10);
    const dir = await freshDir('mixed');
    const classes = await writeClassFolders(dir, src);
    const cls = path.join(dir, classes[0]);
    await writeFile(path.join(cls, 'notes.txt'), 'not an image');
    await writeFile(path.join(cls, '.DS_Store'), 'junk');
    await mkdir(path.join(dir, '.ipynb_checkpoints'));
    await encoder(src, src.images[0]).png().toFile(path.join(cls, 'ZZZ.PNG'));
    const { train } = await openFolder(dir);
    assert.deepEqual(train.classNames, classes);
    assert.equal(train.count, 11);
    const records = await collect(train);
    assert.ok(records.some((r) => r.ref.endsWith('ZZZ.PNG')));
  });

  it('detects the train/test layout and hashes each split', async () => {
    const dir = await freshDir('splits');
    const train = firstN(cifar, 40);
    const test = {
      ...cifar,
      images: cifar.images.slice(40, 80),
      labels: cifar.labels.slice(40, 80),
    };
    // Both splits need the same class folders: keep the classes present in both.
    const classesIn = (s: Source) => new Set(s.labels.map((l) => s.classNames[l]));
    const common = [...classesIn(train)].filter((c) => classesIn(test).has(c));
    const keep = (s: Source): Source => {
      const idx = s.labels
        .map((_, i) => i)
        .filter((i) => common.includes(s.classNames[s.labels[i]]));
      return { ...s, images: idx.map((i) => s.images[i]), labels: idx.map((i) => s.labels[i]) };
    };
    const [tr, te] = [keep(train), keep(test)];
    await writeClassFolders(path.join(dir, 'train'), tr);
    await writeClassFolders(path.join(dir, 'test'), te);
    const splits = await openFolder(dir);
    assert.ok(splits.test);
    assert.deepEqual(splits.train.classNames, [...common].sort());
    assert.deepEqual(splits.test.classNames, [...common].sort());
    assert.equal(splits.train.count, tr.images.length);
    assert.equal(splits.test.count, te.images.length);
    const testRecords = await collect(splits.test);
    const expected = expectedOrder(te, [...common].sort());
    testRecords.forEach((r, i) => assert.deepEqual(r.image, expected[i].image));

    assert.equal(splits.files.length, 2);
    assert.deepEqual(
      splits.files.map((f) => f.path),
      [path.join(dir, 'train'), path.join(dir, 'test')],
    );
    // The documented split hash: per file `<rel path>\n<sha256>\n`, in read order.
    const h = createHash('sha256');
    let bytes = 0;
    for (const r of testRecords) {
      const data = await readFile(r.ref);
      bytes += data.length;
      const rel = path.relative(path.join(dir, 'test'), r.ref).split(path.sep).join('/');
      h.update(`${rel}\n${createHash('sha256').update(data).digest('hex')}\n`);
    }
    assert.equal(splits.files[1].bytes, bytes);
    assert.equal(splits.files[1].sha256, h.digest('hex'));
  });

  it('refuses a test split whose class folders differ from train, naming both', async () => {
    const dir = await freshDir('split-mismatch');
    await writeClassFolders(path.join(dir, 'train'), firstN(cifar, 20));
    await writeClassFolders(path.join(dir, 'test'), firstN(cifar, 20));
    await mkdir(path.join(dir, 'test', 'zebra'));
    await encoder(cifar, cifar.images[0])
      .png()
      .toFile(path.join(dir, 'test', 'zebra', 'a.png'));
    await assert.rejects(openFolder(dir), (e: Error) => {
      assert.equal(e.name, 'OnepixelError');
      assert.ok(e.message.includes(path.join(dir, 'test')), e.message);
      assert.ok(e.message.includes(path.join(dir, 'train')), e.message);
      assert.match(e.message, /zebra/);
      return true;
    });
  });

  it('decodes JPEG input close to the source', async () => {
    const src = firstN(cifar, 20);
    const dir = await freshDir('jpeg');
    const classes = await writeClassFolders(dir, src, 'jpg');
    const { train } = await openFolder(dir);
    assert.deepEqual([train.height, train.width, train.channels], [32, 32, 3]);
    const records = await collect(train);
    const expected = expectedOrder(src, classes);
    let err = 0;
    let n = 0;
    records.forEach((r, i) => {
      assert.equal(r.image.length, 32 * 32 * 3);
      assert.equal(r.label, expected[i].label);
      for (let p = 0; p < r.image.length; p++) err += Math.abs(r.image[p] - expected[i].image[p]);
      n += r.image.length;
    });
    assert.ok(err / n < 10, `mean abs error ${err / n}/255`);
    assert.ok(err > 0, 'JPEG is lossy; identical pixels would mean the source was not decoded');
  });

  it('streams 200 images in order with the right labels', async () => {
    const dir = await freshDir('stream');
    const classes = await writeClassFolders(dir, cifar);
    const { train } = await openFolder(dir, { concurrency: 3 });
    assert.equal(train.count, 200);
    const expected = expectedOrder(cifar, classes);
    let i = 0;
    for await (const r of train.records()) {
      assert.equal(r.label, expected[i].label, `record ${i}`);
      assert.deepEqual(r.image, expected[i].image, `record ${i}`);
      i++;
    }
    assert.equal(i, 200);
    // Stopping early is fine.
    for await (const r of train.records()) {
      assert.equal(r.label, 0);
      break;
    }
  });
});

describe('openFolder errors', { skip: HAVE_CIFAR ? false : `no CIFAR-10 at ${CIFAR_DIR}` }, () => {
  it('names a corrupt image file', async () => {
    const dir = await freshDir('corrupt');
    await writeClassFolders(dir, firstN(cifar, 10));
    await mkdir(path.join(dir, 'cat'), { recursive: true });
    await writeFile(path.join(dir, 'cat', 'bad.png'), 'this is not a PNG file at all');
    const { train } = await openFolder(dir);
    await assert.rejects(collect(train), /cat[/\\]bad\.png: not a readable image \(/);
  });

  it('names a corrupt first image at open', async () => {
    const dir = await freshDir('corrupt-first');
    await mkdir(path.join(dir, 'cat'));
    await writeFile(path.join(dir, 'cat', 'bad.png'), Buffer.from([0x89, 0x50, 1, 2, 3, 4]));
    await assert.rejects(openFolder(dir), /cat[/\\]bad\.png: not a readable image/);
  });

  it('names an image of a different size, and the first image', async () => {
    const dir = await freshDir('size');
    const classes = await writeClassFolders(dir, firstN(cifar, 10));
    const odd = path.join(dir, classes[classes.length - 1], 'zz-odd.png');
    await sharp(Buffer.alloc(16 * 8 * 3, 7), { raw: { width: 16, height: 8, channels: 3 } })
      .png()
      .toFile(odd);
    const { train } = await openFolder(dir);
    await assert.rejects(collect(train), (e: Error) => {
      assert.ok(e.message.startsWith(`${odd}: image is 16×8, but the dataset's images are 32×32`));
      assert.match(e.message, /\(first: .*\.png\)$/);
      return true;
    });
  });

  it('names an empty class folder', async () => {
    const dir = await freshDir('empty-class');
    await writeClassFolders(dir, firstN(cifar, 10));
    await mkdir(path.join(dir, 'unicorn'));
    await writeFile(path.join(dir, 'unicorn', 'readme.txt'), 'no images here');
    await assert.rejects(openFolder(dir), /unicorn: class folder has no images/);
  });

  it('names a missing folder, a file given as the folder, and a folder without class folders', async () => {
    const missing = path.join(tmp, 'does-not-exist');
    await assert.rejects(openFolder(missing), /does-not-exist: folder not found/);
    const file = path.join(tmp, 'plain-file.png');
    await writeFile(file, 'x');
    await assert.rejects(openFolder(file), /plain-file\.png: not a folder/);
    const flat = await freshDir('flat');
    await encoder(cifar, cifar.images[0]).png().toFile(path.join(flat, 'a.png'));
    await assert.rejects(openFolder(flat), new RegExp(`flat-\\d+: no class folders found`));
  });
});

describe('writePngFolder', { skip: HAVE_CIFAR ? false : `no CIFAR-10 at ${CIFAR_DIR}` }, () => {
  async function roundTrip(train: Dataset, test: Dataset | null) {
    const dir = await freshDir('written');
    let images = 0;
    const splits: SplitToWrite[] = [{ name: 'train', stream: streamOf(train) }];
    if (test) splits.push({ name: 'test', stream: streamOf(test) });
    await writePngFolder(dir, splits, () => images++);
    assert.equal(images, train.labels.length + (test ? test.labels.length : 0));
    return { dir, read: await openFolder(dir) };
  }

  /** The dataset's images and labels in the order a folder reads back: by label, then index. */
  function byLabel(ds: Dataset) {
    const size = ds.height * ds.width * ds.channels;
    const out: { image: Uint8Array; label: number }[] = [];
    for (let l = 0; l < ds.classNames.length; l++)
      for (let i = 0; i < ds.labels.length; i++)
        if (ds.labels[i] === l)
          out.push({ image: ds.images.subarray(i * size, (i + 1) * size), label: l });
    return out;
  }

  async function assertSame(stream: ImageStream, ds: Dataset) {
    assert.deepEqual(stream.classNames, ds.classNames);
    assert.deepEqual(
      [stream.height, stream.width, stream.channels, stream.count],
      [ds.height, ds.width, ds.channels, ds.labels.length],
    );
    const got = await collect(stream);
    const want = byLabel(ds);
    assert.equal(got.length, want.length);
    got.forEach((r, i) => {
      assert.equal(r.label, want[i].label, `record ${i}`);
      assert.deepEqual(r.image, want[i].image, `record ${i}`);
    });
  }

  it('round-trips RGB exactly, keeping label order for unsorted class names', async () => {
    // Reversed names: sorted folder names would reorder the classes without the label prefix.
    const names = [...cifar.classNames].reverse();
    const train = toDataset(firstN(cifar, 120), names);
    const test = toDataset(
      { ...cifar, images: cifar.images.slice(120, 200), labels: cifar.labels.slice(120, 200) },
      names,
    );
    const { dir, read } = await roundTrip(train, test);
    assert.ok(read.test);
    await assertSame(read.train, train);
    await assertSame(read.test, test);
    const first = `${train.labels[0]}_${names[train.labels[0]]}`;
    assert.ok(existsSync(path.join(dir, 'train', first, '000.png')), first);
  });

  it(
    'round-trips grayscale exactly as 1-channel PNGs',
    {
      skip: HAVE_FASHION ? false : `no Fashion-MNIST at ${FASHION_DIR}`,
    },
    async () => {
      const ds = toDataset(fashion as Source);
      const { dir, read } = await roundTrip(ds, null);
      assert.equal(read.test, null);
      await assertSame(read.train, ds);
      const first = `${ds.labels[0]}_${FASHION_CLASSES[ds.labels[0]]}`;
      const meta = await sharp(path.join(dir, 'train', first, '00.png')).metadata();
      assert.equal(meta.channels, 1);
    },
  );

  it('makes class names folder-safe and refuses names that collide', async () => {
    const src = firstN(cifar, 30);
    const names = src.classNames.map((n, i) =>
      i === 0 ? '../air/plane' : i === 1 ? '.hidden' : n,
    );
    const ds = toDataset(src, names);
    const { dir, read } = await roundTrip(ds, null);
    assert.deepEqual(read.train.classNames, ['___air_plane', '_hidden', ...names.slice(2)]);
    assert.ok(existsSync(path.join(dir, 'train', '0____air_plane')));
    assert.ok(existsSync(path.join(dir, 'train', '1__hidden')));

    const clash = toDataset(
      src,
      names.map((n, i) => (i === 2 ? 'a/b' : i === 3 ? 'a_b' : n)),
    );
    const out = await freshDir('clash');
    await assert.rejects(
      writePngFolder(out, [{ name: 'train', stream: streamOf(clash) }]),
      /"a\/b" and "a_b" both become folder name "a_b"/,
    );
  });

  it('leaves folder names without a 0..K-1 prefix alone', async () => {
    const dir = await freshDir('prefix-like');
    const src = firstN(cifar, 10);
    const names = src.classNames.map((n, i) => `${i + 1}_${n}`);
    const folders = await writeClassFolders(dir, { ...src, classNames: names });
    const { train } = await openFolder(dir);
    assert.deepEqual(train.classNames, folders);
    assert.ok(train.classNames.every((n) => /^\d+_/.test(n)));
  });
});

describe('writePngFolder when its input fails midway', () => {
  it('lets every PNG it started end before it rejects, so the folder can then be removed', async () => {
    // Large noisy images keep sharp's encoder busy when the read fails: before the fix, the
    // rejection came while up to four PNGs were still being written into the folder.
    const side = 400;
    const size = side * side * 3;
    let seed = 1;
    const noise = () => {
      const img = new Uint8Array(size);
      for (let i = 0; i < size; i++) img[i] = (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
      return img;
    };
    const yielded = 6;
    const stream: ImageStream = {
      height: side,
      width: side,
      channels: 3,
      classNames: ['a'],
      count: 10,
      async *records(): AsyncIterable<ImageRecord> {
        for (let i = 0; i < yielded; i++) yield { image: noise(), label: 0, ref: `record ${i}` };
        throw new Error('record 6: unreadable');
      },
    };
    const dir = await freshDir('fails-midway');
    let written = 0;
    await assert.rejects(
      writePngFolder(dir, [{ name: 'train', stream }], () => written++),
      /record 6: unreadable/,
    );
    assert.equal(written, yielded, 'PNGs were still being written when the write failed');
    const files = (await readdir(path.join(dir, 'train', '0_a'))).sort();
    assert.deepEqual(files, ['00.png', '01.png', '02.png', '03.png', '04.png', '05.png']);
    for (const f of files) {
      const { info } = await sharp(path.join(dir, 'train', '0_a', f))
        .raw()
        .toBuffer({ resolveWithObject: true });
      assert.deepEqual([info.width, info.height], [side, side], f);
    }
    await rm(dir, { recursive: true });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(existsSync(dir), false);
  });
});
