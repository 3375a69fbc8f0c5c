/**
 * CIFAR-10 and CIFAR-100 in their official binary layouts: records of label byte(s) followed by
 * 1024 red, 1024 green and 1024 blue bytes (32×32, row-major). Read into H×W×C; written back as a
 * drop-in replacement folder with the same file names.
 */
import { join } from 'node:path';
import { open, stat, writeFile } from 'node:fs/promises';
import { fail } from '../errors.js';
import type { Dataset, DatasetSplits, SourceFile } from './dataset.js';
import { ChunkedWriter, isFile, readInput, sourceFile } from './files.js';
import type { DatasetWriter, SplitToWrite } from './write.js';

const SIDE = 32;
const PLANE = SIDE * SIDE;
const PIXELS = PLANE * 3;

export const CIFAR10_CLASSES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];
export const CIFAR10_TRAIN_FILES = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`);

interface Layout {
  /** Label bytes before the pixels: 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine). */
  labelBytes: 1 | 2;
  fineClasses: number;
  coarseClasses: number;
}

const C10: Layout = { labelBytes: 1, fineClasses: 10, coarseClasses: 0 };
const C100: Layout = { labelBytes: 2, fineClasses: 100, coarseClasses: 20 };

/*
 * Plane ↔ interleaved conversion, four pixels at a time through 32-bit words: eight times faster
 * in V8 than byte by byte. R, G, B hold pixels p..p+3 of each plane, little-endian.
 */
function view(a: Uint8Array): DataView {
  return new DataView(a.buffer, a.byteOffset, a.byteLength);
}

/** 1024 R, 1024 G, 1024 B bytes at `src` → 32×32×3 interleaved at `dst`. */
function planesToPixels(from: Uint8Array, src: number, to: Uint8Array, dst: number): void {
  const iv = view(from);
  const ov = view(to);
  for (let p = 0; p < PLANE; p += 4) {
    const R = iv.getUint32(src + p, true);
    const G = iv.getUint32(src + PLANE + p, true);
    const B = iv.getUint32(src + 2 * PLANE + p, true);
    const o = dst + 3 * p;
    ov.setUint32(
      o,
      (R & 255) | ((G & 255) << 8) | ((B & 255) << 16) | (((R >>> 8) & 255) << 24),
      true,
    );
    ov.setUint32(
      o + 4,
      ((G >>> 8) & 255) |
        (((B >>> 8) & 255) << 8) |
        (((R >>> 16) & 255) << 16) |
        (((G >>> 16) & 255) << 24),
      true,
    );
    ov.setUint32(
      o + 8,
      ((B >>> 16) & 255) | ((R >>> 24) << 8) | ((G >>> 24) << 16) | ((B >>> 24) << 24),
      true,
    );
  }
}

/** 32×32×3 interleaved at 0 of `from` → R, G, B planes at `dst` of `to`. */
function pixelsToPlanes(from: Uint8Array, to: Uint8Array, dst: number): void {
  const iv = view(from);
  const ov = view(to);
  for (let p = 0; p < PLANE; p += 4) {
    const a = iv.getUint32(3 * p, true); // r0 g0 b0 r1
    const b = iv.getUint32(3 * p + 4, true); // g1 b1 r2 g2
    const c = iv.getUint32(3 * p + 8, true); // b2 r3 g3 b3
    ov.setUint32(
      dst + p,
      (a & 255) |
        (((a >>> 24) & 255) << 8) |
        (((b >>> 16) & 255) << 16) |
        (((c >>> 8) & 255) << 24),
      true,
    );
    ov.setUint32(
      dst + PLANE + p,
      ((a >>> 8) & 255) |
        ((b & 255) << 8) |
        (((b >>> 24) & 255) << 16) |
        (((c >>> 16) & 255) << 24),
      true,
    );
    ov.setUint32(
      dst + 2 * PLANE + p,
      ((a >>> 16) & 255) |
        (((b >>> 8) & 255) << 8) |
        ((c & 255) << 16) |
        (((c >>> 24) & 255) << 24),
      true,
    );
  }
}

/** Whole records in a file of `bytes` bytes, or an error naming the file. */
function recordCount(path: string, bytes: number, recordBytes: number): number {
  if (bytes === 0) fail(`${path}: empty file, expected ${recordBytes}-byte records`);
  const extra = bytes % recordBytes;
  if (extra !== 0)
    fail(
      `${path}: ${bytes} bytes is not a whole number of ${recordBytes}-byte records ` +
        `(${Math.floor(bytes / recordBytes)} records and ${extra} bytes over: truncated or over-long file)`,
    );
  return bytes / recordBytes;
}

async function fileSize(path: string, what: string): Promise<number> {
  try {
    const st = await stat(path);
    if (!st.isFile()) fail(`${path}: is not a file (${what})`);
    return st.size;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') fail(`${path}: not found (${what})`);
    throw e;
  }
}

/** Fills `into` with the file's bytes; a file of another length than expected is an error. */
async function readInto(path: string, into: Buffer, what: string): Promise<Buffer> {
  const fh = await open(path, 'r').catch(() => fail(`${path}: cannot be opened (${what})`));
  try {
    let off = 0;
    while (off < into.length) {
      const { bytesRead } = await fh.read(into, off, into.length - off, off);
      if (bytesRead === 0) break;
      off += bytesRead;
    }
    const extra = (await fh.read(Buffer.alloc(1), 0, 1, off)).bytesRead;
    if (off !== into.length || extra !== 0) fail(`${path}: changed while being read`);
    return into;
  } finally {
    await fh.close();
  }
}

/**
 * Reads record files into one dataset, file by file (the next file is read while the current one
 * is converted), so memory peaks at the dataset plus two files; every error names file and record.
 */
async function readSplit(
  paths: string[],
  layout: Layout,
  classNames: string[],
  what: string,
): Promise<{ dataset: Dataset; files: SourceFile[] }> {
  const recordBytes = layout.labelBytes + PIXELS;
  const sizes = await Promise.all(paths.map((p) => fileSize(p, what)));
  const counts = paths.map((p, f) => recordCount(p, sizes[f], recordBytes));
  const n = counts.reduce((a, b) => a + b, 0);
  // Shared memory, so the statistics pass can split the images over worker threads.
  const images = new Uint8Array(new SharedArrayBuffer(n * PIXELS));
  const labels = new Int32Array(n);
  const coarse = layout.labelBytes === 2 ? new Uint8Array(n) : undefined;
  const files: SourceFile[] = [];
  // Two reused buffers, one being filled while the other is converted: fresh memory is slow to
  // touch (page faults), so not allocating a new buffer per file saves as much as the copy costs.
  const largest = Math.max(...sizes);
  const buffers = [
    Buffer.allocUnsafeSlow(largest),
    paths.length > 1 ? Buffer.allocUnsafeSlow(largest) : null,
  ];
  const load = (f: number) =>
    readInto(paths[f], (buffers[f % 2] as Buffer).subarray(0, sizes[f]), what);
  let next: Promise<Buffer> | null = load(0);
  let i = 0;
  for (let f = 0; f < paths.length; f++) {
    const path = paths[f];
    const bytes: Buffer = await (next as Promise<Buffer>);
    next = f + 1 < paths.length ? load(f + 1) : null;
    files.push(sourceFile(path, bytes));
    for (let r = 0; r < counts[f]; r++, i++) {
      const off = r * recordBytes;
      const label = bytes[off + layout.labelBytes - 1];
      if (label >= layout.fineClasses)
        fail(`${path} record ${r}: label byte ${label}, expected 0..${layout.fineClasses - 1}`);
      labels[i] = label;
      if (coarse) {
        coarse[i] = bytes[off];
        if (coarse[i] >= layout.coarseClasses)
          fail(
            `${path} record ${r}: coarse label byte ${coarse[i]}, expected 0..${layout.coarseClasses - 1}`,
          );
      }
      planesToPixels(bytes, off + layout.labelBytes, images, i * PIXELS);
    }
  }
  const dataset: Dataset = {
    height: SIDE,
    width: SIDE,
    channels: 3,
    images,
    labels,
    classNames,
    coarseLabels: coarse,
  };
  return { dataset, files };
}

async function readNames(
  path: string,
  expected: number,
  fallback: string[] | null,
): Promise<string[]> {
  if (!(await isFile(path))) {
    if (fallback) return fallback;
    fail(`${path}: not found (class names, one a line)`);
  }
  const names = (await readInput(path, 'class names'))
    .toString('utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== expected) fail(`${path}: ${names.length} class names, expected ${expected}`);
  return names;
}

/** CIFAR-10 binary version: data_batch_1..5.bin, test_batch.bin (optional), batches.meta.txt. */
export async function readCifar10(dir: string): Promise<DatasetSplits<Dataset>> {
  const classNames = await readNames(join(dir, 'batches.meta.txt'), 10, CIFAR10_CLASSES);
  const trainPaths = CIFAR10_TRAIN_FILES.map((f) => join(dir, f));
  const train = await readSplit(trainPaths, C10, classNames, 'CIFAR-10 training batch');
  const testPath = join(dir, 'test_batch.bin');
  const test = (await isFile(testPath))
    ? await readSplit([testPath], C10, classNames, 'CIFAR-10 test batch')
    : null;
  return {
    format: 'cifar10',
    dataDir: dir,
    train: train.dataset,
    test: test?.dataset ?? null,
    files: [...train.files, ...(test?.files ?? [])],
  };
}

/** CIFAR-100 binary version: train.bin, test.bin (optional), fine/coarse_label_names.txt. */
export async function readCifar100(dir: string): Promise<DatasetSplits<Dataset>> {
  const classNames = await readNames(join(dir, 'fine_label_names.txt'), 100, null);
  const coarseClassNames = await readNames(join(dir, 'coarse_label_names.txt'), 20, null);
  const train = await readSplit(
    [join(dir, 'train.bin')],
    C100,
    classNames,
    'CIFAR-100 training set',
  );
  const testPath = join(dir, 'test.bin');
  const test = (await isFile(testPath))
    ? await readSplit([testPath], C100, classNames, 'CIFAR-100 test set')
    : null;
  const withCoarse = (ds: Dataset): Dataset => ({ ...ds, coarseClassNames });
  return {
    format: 'cifar100',
    dataDir: dir,
    train: withCoarse(train.dataset),
    test: test ? withCoarse(test.dataset) : null,
    files: [...train.files, ...(test?.files ?? [])],
  };
}

/** One record's bytes: label byte(s) then the R, G, B planes. */
function encodeRecord(
  out: Uint8Array,
  image: Uint8Array,
  label: number,
  coarse: number | null,
): void {
  let o = 0;
  if (coarse !== null) out[o++] = coarse;
  out[o++] = label;
  pixelsToPlanes(image, out, o);
}

async function writeRecords(
  split: SplitToWrite,
  files: Array<{ path: string; records: number }>,
  coarse: boolean,
  onImage?: () => void,
): Promise<void> {
  const { stream } = split;
  const record = new Uint8Array((coarse ? 2 : 1) + PIXELS);
  const iter = stream.records()[Symbol.asyncIterator]();
  for (const file of files) {
    const out = new ChunkedWriter(file.path);
    for (let r = 0; r < file.records; r++) {
      const next = await iter.next();
      if (next.done) fail(`${split.name} split ended after fewer than ${stream.count} images`);
      const { image, label, coarseLabel } = next.value;
      if (label > 255) fail(`${next.value.ref}: label ${label} does not fit CIFAR's label byte`);
      encodeRecord(record, image, label, coarse ? (coarseLabel ?? 0) : null);
      await out.write(record);
      onImage?.();
    }
    await out.close();
  }
}

function checkCifarShape(split: SplitToWrite, classes: number, name: string): void {
  const s = split.stream;
  if (s.height !== SIDE || s.width !== SIDE || s.channels !== 3)
    fail(
      `the CIFAR binary format holds 32×32 RGB images, these are ${s.height}×${s.width}×${s.channels}; ` +
        `use --format png or --format npy`,
    );
  if (s.classNames.length !== classes)
    fail(
      `the ${name} binary format holds ${classes} classes, this dataset has ${s.classNames.length}; ` +
        `use --format png or --format npy`,
    );
}

/** CIFAR-10 layout: training split in five data_batch files, test_batch.bin, batches.meta.txt. */
export const writeCifar10: DatasetWriter = async (dir, splits, onImage) => {
  for (const split of splits) {
    checkCifarShape(split, 10, 'CIFAR-10');
    const n = split.stream.count;
    if (split.name === 'train' && n < 5)
      fail(
        `the CIFAR-10 layout spreads training images over 5 files and needs at least 5, got ${n}`,
      );
    const files =
      split.name === 'train'
        ? CIFAR10_TRAIN_FILES.map((name, b) => ({
            // As even as possible: 10,000 each for CIFAR-10's 50,000, none empty.
            path: join(dir, name),
            records: Math.floor(((b + 1) * n) / 5) - Math.floor((b * n) / 5),
          }))
        : [{ path: join(dir, 'test_batch.bin'), records: n }];
    await writeRecords(split, files, false, onImage);
  }
  await writeFile(join(dir, 'batches.meta.txt'), splits[0].stream.classNames.join('\n') + '\n\n');
};

/** CIFAR-100 layout: train.bin, test.bin (coarse label kept), fine/coarse_label_names.txt. */
export const writeCifar100: DatasetWriter = async (dir, splits, onImage) => {
  for (const split of splits) {
    checkCifarShape(split, 100, 'CIFAR-100');
    const file = { path: join(dir, `${split.name}.bin`), records: split.stream.count };
    await writeRecords(split, [file], true, onImage);
  }
  const s = splits[0].stream;
  await writeFile(join(dir, 'fine_label_names.txt'), s.classNames.join('\n') + '\n');
  const coarse = s.coarseClassNames ?? ['0'];
  await writeFile(join(dir, 'coarse_label_names.txt'), coarse.join('\n') + '\n');
};
