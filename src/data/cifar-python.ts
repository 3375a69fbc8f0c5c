/**
 * CIFAR-10 and CIFAR-100 in their official "python version" layouts (what torchvision's CIFAR10 /
 * CIFAR100 and Keras' cifar10/cifar100 read): pickled dicts, one per file.
 *
 * - CIFAR-10 (the folder `cifar-10-batches-py`): data_batch_1 … data_batch_5, test_batch, each
 *   {data: uint8 array N×3072, labels: [N ints], batch_label: str, filenames: [N str]}, and
 *   batches.meta {num_cases_per_batch, label_names: [10 str], num_vis: 3072}.
 * - CIFAR-100 (`cifar-100-python`): train, test, each {data, fine_labels, coarse_labels,
 *   batch_label, filenames}, and meta {fine_label_names: [100 str], coarse_label_names: [20 str]}.
 *
 * A row of `data` is 1024 red, 1024 green, 1024 blue bytes (each plane row-major 32×32), as in the
 * binary version. The files are written directly into the output folder (as the binary writer
 * does), and read from the folder that holds them (`--data-dir …/cifar-10-batches-py`).
 */
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { fail } from '../errors.js';
import type { Dataset, DatasetSplits, ImageRecord, SourceFile } from './dataset.js';
import { ChunkedWriter, isFile, readInput, sourceFile } from './files.js';
import {
  MAX_STRING_BYTES,
  NdArray,
  PickleWriter,
  PyBytes,
  type PyValue,
  pickleDict,
  unpickle,
} from './pickle.js';
import { PIXELS, SIDE, pixelsToPlanes, planesToPixels } from './cifar-decode.js';
import type { DatasetWriter, SplitToWrite } from './write.js';

export const CIFAR10_PYTHON_TRAIN = [1, 2, 3, 4, 5].map((i) => `data_batch_${i}`);

type Dict = Map<string, PyValue>;

interface Layout {
  name: 'CIFAR-10' | 'CIFAR-100';
  /** The folder name in the official archive (and torchvision's `base_folder`). */
  folder: string;
  train: string[];
  test: string;
  meta: string;
  /** The key of the (fine) labels in a batch. */
  labels: string;
  coarse: boolean;
  classes: number;
}

const C10: Layout = {
  name: 'CIFAR-10',
  folder: 'cifar-10-batches-py',
  train: CIFAR10_PYTHON_TRAIN,
  test: 'test_batch',
  meta: 'batches.meta',
  labels: 'labels',
  coarse: false,
  classes: 10,
};
const C100: Layout = {
  name: 'CIFAR-100',
  folder: 'cifar-100-python',
  train: ['train'],
  test: 'test',
  meta: 'meta',
  labels: 'fine_labels',
  coarse: true,
  classes: 100,
};

function batchKeys(l: Layout): string[] {
  return ['data', l.labels, ...(l.coarse ? ['coarse_labels'] : []), 'batch_label', 'filenames'];
}

// ---------------------------------------------------------------------------------------------
// Reading: every file must be exactly what the official archives (or onepixel) hold.

function loadDict(path: string, bytes: Buffer, keys: string[]): Dict {
  const d = unpickle(path, bytes);
  if (!(d instanceof Map))
    fail(`${path}: the pickle holds no dict (a CIFAR python file is a dict)`);
  for (const k of d.keys())
    if (!keys.includes(k))
      fail(`${path}: key '${k}' is not one of the format's keys (${keys.join(', ')})`);
  for (const k of keys) if (!d.has(k)) fail(`${path}: key '${k}' is missing`);
  return d;
}

function text(v: PyValue, path: string, key: string): string {
  if (typeof v === 'string') return v;
  if (v instanceof PyBytes) return v.text();
  return fail(`${path}: key '${key}' is not a string`);
}

function int(v: PyValue, path: string, key: string): number {
  if (typeof v !== 'number') fail(`${path}: key '${key}' is not an integer`);
  return v;
}

function list(v: PyValue, path: string, key: string, n: number | null): PyValue[] {
  if (!Array.isArray(v)) fail(`${path}: key '${key}' is not a list`);
  if (n !== null && v.length !== n)
    fail(`${path}: key '${key}' has ${v.length} entries, expected ${n} (one per row of 'data')`);
  return v;
}

function names(v: PyValue, path: string, key: string, n: number | null): string[] {
  const l = list(v, path, key, null);
  if (n !== null && l.length !== n)
    fail(`${path}: key '${key}' has ${l.length} names, expected ${n}`);
  if (l.length === 0) fail(`${path}: key '${key}' is an empty list`);
  return l.map((x, i) => text(x, path, `${key}[${i}]`));
}

function labels(v: PyValue, path: string, key: string, n: number, classes: number): number[] {
  const l = list(v, path, key, n);
  for (let i = 0; i < n; i++) {
    const x = l[i];
    if (typeof x !== 'number' || x < 0 || x >= classes)
      fail(
        `${path}: key '${key}' entry ${i} is ${String(x)}, expected an integer 0..${classes - 1}`,
      );
  }
  return l as number[];
}

function pixels(v: PyValue, path: string): Uint8Array {
  if (!(v instanceof NdArray) || v.data === null)
    fail(`${path}: key 'data' is not a numpy uint8 array`);
  if (v.shape.length !== 2 || v.shape[1] !== PIXELS || v.shape[0] < 1)
    fail(
      `${path}: key 'data' has shape (${v.shape.join(', ')}), expected (N, ${PIXELS}) with N ≥ 1`,
    );
  return v.data;
}

interface Batch {
  path: string;
  data: Uint8Array;
  labels: number[];
  coarse: number[] | null;
}

async function readBatch(
  path: string,
  l: Layout,
  classes: number,
  coarseClasses: number,
  files: SourceFile[],
): Promise<Batch> {
  const bytes = await readInput(path, `${l.name} python batch`);
  files.push(sourceFile(path, bytes));
  const d = loadDict(path, bytes, batchKeys(l));
  const data = pixels(d.get('data') as PyValue, path);
  const n = data.length / PIXELS;
  text(d.get('batch_label') as PyValue, path, 'batch_label');
  names(d.get('filenames') as PyValue, path, 'filenames', n);
  return {
    path,
    data,
    labels: labels(d.get(l.labels) as PyValue, path, l.labels, n, classes),
    coarse: l.coarse
      ? labels(d.get('coarse_labels') as PyValue, path, 'coarse_labels', n, coarseClasses)
      : null,
  };
}

/** The batches of a split, decoded into one dataset in shared memory. */
function toDataset(batches: Batch[], classNames: string[], coarseClassNames?: string[]): Dataset {
  const n = batches.reduce((a, b) => a + b.labels.length, 0);
  const images = new Uint8Array(new SharedArrayBuffer(n * PIXELS));
  const labelArray = new Int32Array(new SharedArrayBuffer(n * 4));
  const coarse = coarseClassNames ? new Uint8Array(new SharedArrayBuffer(n)) : undefined;
  let i = 0;
  for (const b of batches)
    for (let r = 0; r < b.labels.length; r++, i++) {
      planesToPixels(b.data, r * PIXELS, images, i * PIXELS);
      labelArray[i] = b.labels[r];
      if (coarse && b.coarse) coarse[i] = b.coarse[r];
    }
  return {
    height: SIDE,
    width: SIDE,
    channels: 3,
    images,
    labels: labelArray,
    classNames,
    coarseLabels: coarse,
    coarseClassNames,
  };
}

/** A clear error when --data-dir is the archive's parent or the binary version. */
async function checkFolder(dir: string, l: Layout, binary: string): Promise<void> {
  const first = join(dir, l.train[0]);
  if (await isFile(first)) return;
  if (await isFile(join(dir, l.folder, l.train[0])))
    fail(`${first}: not found; the files are in ${join(dir, l.folder)}: pass that as --data-dir`);
  if (await isFile(join(dir, `${l.train[0]}.bin`)))
    fail(`${first}: not found; ${dir} holds the binary version: use --dataset ${binary}`);
  fail(`${first}: not found (${l.name} python version: ${[...l.train, l.meta].join(', ')})`);
}

async function readPython(dir: string, l: Layout, binary: string): Promise<DatasetSplits<Dataset>> {
  await checkFolder(dir, l, binary);
  const files: SourceFile[] = [];
  const metaPath = join(dir, l.meta);
  const metaBytes = await readInput(metaPath, `${l.name} class names`);
  files.push(sourceFile(metaPath, metaBytes));
  let classNames: string[];
  let coarseNames: string[] | undefined;
  if (l.coarse) {
    const m = loadDict(metaPath, metaBytes, ['fine_label_names', 'coarse_label_names']);
    classNames = names(m.get('fine_label_names') as PyValue, metaPath, 'fine_label_names', 100);
    coarseNames = names(
      m.get('coarse_label_names') as PyValue,
      metaPath,
      'coarse_label_names',
      null,
    );
  } else {
    const m = loadDict(metaPath, metaBytes, ['num_cases_per_batch', 'label_names', 'num_vis']);
    classNames = names(m.get('label_names') as PyValue, metaPath, 'label_names', 10);
    int(m.get('num_cases_per_batch') as PyValue, metaPath, 'num_cases_per_batch');
    if (int(m.get('num_vis') as PyValue, metaPath, 'num_vis') !== PIXELS)
      fail(`${metaPath}: key 'num_vis' is not ${PIXELS} (32×32×3 values per image)`);
  }
  const coarseCount = coarseNames?.length ?? 0;
  const train: Batch[] = [];
  for (const f of l.train)
    train.push(await readBatch(join(dir, f), l, classNames.length, coarseCount, files));
  const testPath = join(dir, l.test);
  const test = (await isFile(testPath))
    ? await readBatch(testPath, l, classNames.length, coarseCount, files)
    : null;
  return {
    format: l.coarse ? 'cifar100-python' : 'cifar10-python',
    dataDir: dir,
    train: toDataset(train, classNames, coarseNames),
    test: test ? toDataset([test], classNames, coarseNames) : null,
    files,
  };
}

/** CIFAR-10 python version: data_batch_1..5, test_batch (optional), batches.meta. */
export function readCifar10Python(dir: string): Promise<DatasetSplits<Dataset>> {
  return readPython(dir, C10, 'cifar10');
}

/** CIFAR-100 python version: train, test (optional), meta. */
export function readCifar100Python(dir: string): Promise<DatasetSplits<Dataset>> {
  return readPython(dir, C100, 'cifar100');
}

// ---------------------------------------------------------------------------------------------
// Writing

export function checkPythonShape(split: SplitToWrite, c100: boolean): void {
  const l = c100 ? C100 : C10;
  const s = split.stream;
  if (s.height !== SIDE || s.width !== SIDE || s.channels !== 3)
    fail(
      `the CIFAR python format holds 32×32 RGB images, these are ${s.height}×${s.width}×${s.channels}; ` +
        `use --format png or --format npy`,
    );
  if (s.classNames.length !== l.classes)
    fail(
      `the ${l.name} python format holds ${l.classes} classes, this dataset has ${s.classNames.length}; ` +
        `use --format png or --format npy`,
    );
  if (s.count * PIXELS > MAX_STRING_BYTES)
    fail(
      `the ${split.name} split's ${s.count} images are more than one CIFAR python file can hold`,
    );
}

/** A batch's pickle up to its pixels: the dict, the key 'data', the array header (count × 3072). */
function batchStart(count: number): PickleWriter {
  const p = new PickleWriter().dictStart();
  p.str('data').arrayStart([count, PIXELS]);
  return p;
}

/** A batch's pickle after its pixels: labels, batch_label, filenames (`<split>_<index>.png`). */
function batchEnd(
  p: PickleWriter,
  l: Layout,
  fine: Int32Array,
  coarse: Int32Array,
  batchLabel: string,
  firstIndex: number,
  split: { name: string; count: number },
): Uint8Array {
  p.arrayEnd().str(l.labels).intList(fine);
  if (l.coarse) p.str('coarse_labels').intList(coarse);
  const width = String(split.count - 1).length;
  const filenames = Array.from(
    { length: fine.length },
    (_, r) => `${split.name}_${String(firstIndex + r).padStart(width, '0')}.png`,
  );
  p.str('batch_label').str(batchLabel).str('filenames').strList(filenames).dictEnd();
  return p.take();
}

/** Writes the next `count` records as one pickled batch, the pixels streamed. */
async function writeBatch(
  path: string,
  records: AsyncIterator<ImageRecord>,
  count: number,
  l: Layout,
  batchLabel: string,
  firstIndex: number,
  split: SplitToWrite,
  onImage?: () => void,
): Promise<void> {
  const out = new ChunkedWriter(path);
  const p = batchStart(count);
  await out.write(p.take());
  const planes = new Uint8Array(PIXELS);
  const fine = new Int32Array(count);
  const coarse = new Int32Array(count);
  for (let r = 0; r < count; r++) {
    const next = await records.next();
    if (next.done) fail(`${split.name} split ended after fewer than ${split.stream.count} images`);
    pixelsToPlanes(next.value.image, planes, 0);
    await out.write(planes);
    fine[r] = next.value.label;
    coarse[r] = next.value.coarseLabel ?? 0;
    onImage?.();
  }
  const end = batchEnd(p, l, fine, coarse, batchLabel, firstIndex, {
    name: split.name,
    count: split.stream.count,
  });
  await out.write(end);
  await out.close();
}

/** One file of a split in the python layout: its name, its run of records, its batch label. */
export interface PythonBatch {
  name: string;
  first: number;
  count: number;
  label: string;
}

/** The files a split of `n` records is written to (the training split evenly over the batches). */
export function pythonBatches(c100: boolean, split: 'train' | 'test', n: number): PythonBatch[] {
  const l = c100 ? C100 : C10;
  const batches = split === 'train' ? l.train.length : 1;
  if (n < batches)
    fail(
      `the ${l.name} layout spreads training images over ${batches} files and needs at least ${batches}, got ${n}`,
    );
  return Array.from({ length: batches }, (_, b) => {
    // As even as possible: 10,000 each for CIFAR-10's 50,000, none empty.
    const first = Math.floor((b * n) / batches);
    const count = Math.floor(((b + 1) * n) / batches) - first;
    const name = split === 'train' ? l.train[b] : l.test;
    const label =
      split === 'train' ? `training batch ${b + 1} of ${batches}` : 'testing batch 1 of 1';
    return { name, first, count, label };
  });
}

/**
 * The bytes of a batch file before and after its pixel rows, for writers that put the rows in
 * place themselves (sharded protect): exactly what the writer writes around them.
 */
export function pythonBatchFrame(
  c100: boolean,
  b: PythonBatch,
  fine: Int32Array,
  coarse: Int32Array,
  split: { name: string; count: number },
): { head: Uint8Array; tail: Uint8Array } {
  const p = batchStart(b.count);
  const head = p.take();
  return { head, tail: batchEnd(p, c100 ? C100 : C10, fine, coarse, b.label, b.first, split) };
}

/** The meta file (name, bytes) of the python layout, as the writer writes it. */
export function pythonMeta(
  c100: boolean,
  firstBatch: number,
  classNames: string[],
  coarseClassNames: string[] | undefined,
): [string, Buffer] {
  const l = c100 ? C100 : C10;
  const meta = l.coarse
    ? pickleDict([
        ['fine_label_names', classNames],
        ['coarse_label_names', coarseClassNames ?? ['0']],
      ])
    : cifar10Meta(firstBatch, classNames);
  return [l.meta, meta];
}

function writerOf(l: Layout): DatasetWriter {
  return async (dir, splits, onImage) => {
    let perBatch = 0;
    for (const split of splits) {
      checkPythonShape(split, l.coarse);
      const n = split.stream.count;
      const records = split.stream.records()[Symbol.asyncIterator]();
      for (const b of pythonBatches(l.coarse, split.name, n)) {
        if (split.name === 'train' && b.first === 0) perBatch = b.count;
        await writeBatch(join(dir, b.name), records, b.count, l, b.label, b.first, split, onImage);
      }
      if (!(await records.next()).done)
        fail(`${split.name} split: more images than the ${n} it announced`);
    }
    const s = splits[0].stream;
    const [name, meta] = pythonMeta(
      l.coarse,
      perBatch || s.count,
      s.classNames,
      s.coarseClassNames,
    );
    await writeFile(join(dir, name), meta);
  };
}

/** batches.meta; for the full CIFAR-10 (10,000 a batch) the official file, byte for byte. */
export function cifar10Meta(perBatch: number, classNames: string[]): Buffer {
  return pickleDict([
    ['num_cases_per_batch', perBatch],
    ['label_names', classNames],
    ['num_vis', PIXELS],
  ]);
}

/** CIFAR-10 python layout: data_batch_1..5 (training split, evenly), test_batch, batches.meta. */
export const writeCifar10Python: DatasetWriter = writerOf(C10);

/** CIFAR-100 python layout: train, test (coarse labels kept), meta. */
export const writeCifar100Python: DatasetWriter = writerOf(C100);
