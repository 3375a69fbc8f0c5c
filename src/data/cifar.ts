/**
 * CIFAR-10 and CIFAR-100 in their official binary layouts: records of label byte(s) followed by
 * 1024 red, 1024 green and 1024 blue bytes (32×32, row-major). Read into H×W×C; written back as a
 * drop-in replacement folder with the same file names.
 */
import { join } from 'node:path';
import { availableParallelism } from 'node:os';
import { stat, writeFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { fail, OnepixelError } from '../errors.js';
import type { Dataset, DatasetSplits, SourceFile } from './dataset.js';
import { ChunkedWriter, isFile, readInput } from './files.js';
import type { DatasetWriter, SplitToWrite } from './write.js';
import {
  type DecodeJob,
  type DecodeTarget,
  type Layout,
  decodeFiles,
  pixelsToPlanes,
  PIXELS,
  SIDE,
} from './cifar-decode.js';

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

const C10: Layout = { labelBytes: 1, fineClasses: 10, coarseClasses: 0 };
const C100: Layout = { labelBytes: 2, fineClasses: 100, coarseClasses: 20 };

/** Whole records in a file of `bytes` bytes, or an error naming the file. */
export function recordCount(path: string, bytes: number, recordBytes: number): number {
  if (bytes === 0) fail(`${path}: empty file, expected ${recordBytes}-byte records`);
  const extra = bytes % recordBytes;
  if (extra !== 0)
    fail(
      `${path}: ${bytes} bytes is not a whole number of ${recordBytes}-byte records ` +
        `(${Math.floor(bytes / recordBytes)} records and ${extra} bytes over: truncated or over-long file)`,
    );
  return bytes / recordBytes;
}

export async function fileSize(path: string, what: string): Promise<number> {
  try {
    const st = await stat(path);
    if (!st.isFile()) fail(`${path}: is not a file (${what})`);
    return st.size;
  } catch (e) {
    if (e instanceof OnepixelError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') fail(`${path}: not found (${what})`);
    fail(`${path}: cannot be read (${what}): ${(e as Error).message}`);
  }
}

/**
 * Reads the splits' record files into shared memory. With two or more cores and enough data, the
 * files are shared out between the main thread and one worker, which read, hash and convert at
 * the same time; every error names the file and record.
 */
async function readSplits(
  splits: Array<{ paths: string[]; what: string }>,
  layout: Layout,
  classNames: string[],
): Promise<{ datasets: Dataset[]; files: SourceFile[] }> {
  const recordBytes = layout.labelBytes + PIXELS;
  const jobs: DecodeJob[] = [];
  const targets: DecodeTarget[] = [];
  for (const [split, { paths, what }] of splits.entries()) {
    let n = 0;
    for (const path of paths) {
      const size = await fileSize(path, what);
      const count = recordCount(path, size, recordBytes);
      jobs.push({ path, size, count, split, firstRecord: n, what });
      n += count;
    }
    // Shared memory: filled by two threads here, read by the statistics workers later. Its size
    // follows from the file sizes (whole records only), so it is what the files hold.
    const shared = (bytes: number) => {
      try {
        return new SharedArrayBuffer(bytes);
      } catch (e) {
        fail(`${paths.join(', ')}: ${n} records do not fit in memory (${(e as Error).message})`);
      }
    };
    targets.push({
      images: new Uint8Array(shared(n * PIXELS)),
      labels: new Int32Array(shared(n * 4)),
      coarse: layout.labelBytes === 2 ? new Uint8Array(shared(n)) : null,
    });
  }
  const total = jobs.reduce((a, j) => a + j.size, 0);
  const parallel = jobs.length > 1 && total >= PARALLEL_BYTES && availableParallelism() > 1;
  const mine = parallel ? jobs.filter((_, i) => i % 2 === 0) : jobs;
  const theirs = parallel ? jobs.filter((_, i) => i % 2 === 1) : [];
  const [a, b] = await Promise.all([
    decodeFiles(mine, targets, layout),
    decodeInWorker(theirs, targets, layout),
  ]);
  const hashes = new Map([...a, ...b].map((f) => [f.path, f]));
  const datasets = targets.map((t): Dataset => ({
    height: SIDE,
    width: SIDE,
    channels: 3,
    images: t.images,
    labels: t.labels,
    classNames,
    coarseLabels: t.coarse ?? undefined,
  }));
  return { datasets, files: jobs.map((j) => hashes.get(j.path) as SourceFile) };
}

/** Below this many bytes a worker costs more to start than it saves. */
const PARALLEL_BYTES = 16 << 20;

function decodeInWorker(
  jobs: DecodeJob[],
  targets: DecodeTarget[],
  layout: Layout,
): Promise<SourceFile[]> {
  if (jobs.length === 0) return Promise.resolve([]);
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./cifar-worker.js', import.meta.url), {
      workerData: { jobs, targets, layout },
    });
    worker.once('message', (m: { files?: SourceFile[]; error?: string; user?: boolean }) => {
      void worker.terminate();
      if (m.files) resolve(m.files);
      else reject(m.user ? new OnepixelError(m.error ?? 'read failed') : new Error(m.error));
    });
    worker.once('error', reject);
  });
}

/** Which files a CIFAR binary folder holds, split by split, and its class names. */
export interface CifarFolder {
  layout: Layout;
  classNames: string[];
  coarseClassNames?: string[];
  /** The training files, then the test file when there is one. */
  splits: Array<{ paths: string[]; what: string }>;
}

/** CIFAR-10: data_batch_1..5.bin, test_batch.bin (optional), batches.meta.txt (optional). */
export async function cifar10Folder(dir: string): Promise<CifarFolder> {
  const classNames = await readNames(join(dir, 'batches.meta.txt'), 10, CIFAR10_CLASSES);
  const testPath = join(dir, 'test_batch.bin');
  const hasTest = await isFile(testPath);
  return {
    layout: C10,
    classNames,
    splits: [
      { paths: CIFAR10_TRAIN_FILES.map((f) => join(dir, f)), what: 'CIFAR-10 training batch' },
      ...(hasTest ? [{ paths: [testPath], what: 'CIFAR-10 test batch' }] : []),
    ],
  };
}

/** CIFAR-100: train.bin, test.bin (optional), fine/coarse_label_names.txt. */
export async function cifar100Folder(dir: string): Promise<CifarFolder> {
  const classNames = await readNames(join(dir, 'fine_label_names.txt'), 100, null);
  const coarseClassNames = await readNames(join(dir, 'coarse_label_names.txt'), 20, null);
  const testPath = join(dir, 'test.bin');
  const hasTest = await isFile(testPath);
  return {
    layout: C100,
    classNames,
    coarseClassNames,
    splits: [
      { paths: [join(dir, 'train.bin')], what: 'CIFAR-100 training set' },
      ...(hasTest ? [{ paths: [testPath], what: 'CIFAR-100 test set' }] : []),
    ],
  };
}

/** CIFAR-10 binary version: data_batch_1..5.bin, test_batch.bin (optional), batches.meta.txt. */
export async function readCifar10(dir: string): Promise<DatasetSplits<Dataset>> {
  const folder = await cifar10Folder(dir);
  const { datasets, files } = await readSplits(folder.splits, folder.layout, folder.classNames);
  return { format: 'cifar10', dataDir: dir, train: datasets[0], test: datasets[1] ?? null, files };
}

/** CIFAR-100 binary version: train.bin, test.bin (optional), fine/coarse_label_names.txt. */
export async function readCifar100(dir: string): Promise<DatasetSplits<Dataset>> {
  const folder = await cifar100Folder(dir);
  const { datasets, files } = await readSplits(folder.splits, folder.layout, folder.classNames);
  const coarseClassNames = folder.coarseClassNames;
  const [train, test] = datasets.map((ds): Dataset => ({ ...ds, coarseClassNames }));
  return { format: 'cifar100', dataDir: dir, train, test: test ?? null, files };
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

/** One record's bytes: label byte(s) then the R, G, B planes. */
export function encodeRecord(
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

export function checkCifarShape(split: SplitToWrite, classes: number, name: string): void {
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

/** The five training files of the CIFAR-10 layout and their record counts for n images. */
export function cifar10TrainFiles(
  dir: string,
  n: number,
): Array<{ path: string; records: number }> {
  if (n < 5)
    fail(`the CIFAR-10 layout spreads training images over 5 files and needs at least 5, got ${n}`);
  // As even as possible: 10,000 each for CIFAR-10's 50,000, none empty.
  return CIFAR10_TRAIN_FILES.map((name, b) => ({
    path: join(dir, name),
    records: Math.floor(((b + 1) * n) / 5) - Math.floor((b * n) / 5),
  }));
}

/** The class-name files of either layout (batches.meta.txt; fine/coarse_label_names.txt). */
export async function writeCifarNames(
  dir: string,
  c100: boolean,
  classNames: string[],
  coarseClassNames: string[] | undefined,
): Promise<void> {
  if (!c100) {
    await writeFile(join(dir, 'batches.meta.txt'), classNames.join('\n') + '\n\n');
    return;
  }
  await writeFile(join(dir, 'fine_label_names.txt'), classNames.join('\n') + '\n');
  const coarse = coarseClassNames ?? ['0'];
  await writeFile(join(dir, 'coarse_label_names.txt'), coarse.join('\n') + '\n');
}

/** CIFAR-10 layout: training split in five data_batch files, test_batch.bin, batches.meta.txt. */
export const writeCifar10: DatasetWriter = async (dir, splits, onImage) => {
  for (const split of splits) {
    checkCifarShape(split, 10, 'CIFAR-10');
    const n = split.stream.count;
    const files =
      split.name === 'train'
        ? cifar10TrainFiles(dir, n)
        : [{ path: join(dir, 'test_batch.bin'), records: n }];
    await writeRecords(split, files, false, onImage);
  }
  await writeCifarNames(dir, false, splits[0].stream.classNames, undefined);
};

/** CIFAR-100 layout: train.bin, test.bin (coarse label kept), fine/coarse_label_names.txt. */
export const writeCifar100: DatasetWriter = async (dir, splits, onImage) => {
  for (const split of splits) {
    checkCifarShape(split, 100, 'CIFAR-100');
    const file = { path: join(dir, `${split.name}.bin`), records: split.stream.count };
    await writeRecords(split, [file], true, onImage);
  }
  const s = splits[0].stream;
  await writeCifarNames(dir, true, s.classNames, s.coarseClassNames);
};
