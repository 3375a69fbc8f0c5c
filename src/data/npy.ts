/**
 * NumPy `.npy` (format 1.0/2.0): `x_train.npy` uint8 N×H×W×C, `y_train.npy` int64, the same for
 * test, plus `classes.txt` (one name a line) so labels keep their names.
 */
import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { fail } from '../errors.js';
import type { Dataset, DatasetSplits, SourceFile } from './dataset.js';
import { ChunkedWriter, isFile, readInput, sourceFile } from './files.js';
import type { DatasetWriter } from './write.js';

/** Dtypes onepixel reads: uint8 images, integer labels, float32 noise (little-endian). */
const DTYPES: Record<string, number> = {
  '|u1': 1,
  '|i1': 1,
  '<u2': 2,
  '<i2': 2,
  '<u4': 4,
  '<i4': 4,
  '<u8': 8,
  '<i8': 8,
  '<f4': 4,
  '<f8': 8,
};

export interface NpyArray {
  /** The dtype, with one-byte types written `|u1`/`|i1` whatever byte order the file gave. */
  descr: string;
  /** Non-negative safe integers; their product times the item size is the data's length. */
  shape: number[];
  data: Uint8Array;
}

type HeaderValue = string | boolean | number[];

/**
 * Parses the header's Python dict literal (`{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }`)
 * strictly: string keys, and string, True/False or tuple-of-integers values. Returns null when the
 * text is not such a dict.
 */
function parseHeaderDict(text: string): Map<string, HeaderValue> | null {
  const tokens = /\s*(?:'([^'\\]*)'|"([^"\\]*)"|(True|False)|(-?\d+)L?|([{}():,]))/y;
  const out = new Map<string, HeaderValue>();
  let pos = 0;
  const next = (): { kind: string; value: string } | null => {
    tokens.lastIndex = pos;
    const m = tokens.exec(text);
    if (!m) return null;
    pos = tokens.lastIndex;
    if (m[1] !== undefined || m[2] !== undefined) return { kind: 'str', value: m[1] ?? m[2] };
    if (m[3] !== undefined) return { kind: 'bool', value: m[3] };
    if (m[4] !== undefined) return { kind: 'int', value: m[4] };
    return { kind: m[5], value: m[5] };
  };
  if (next()?.kind !== '{') return null;
  for (;;) {
    let t = next();
    if (t?.kind === '}') break;
    if (t?.kind !== 'str' || out.has(t.value)) return null;
    const key = t.value;
    if (next()?.kind !== ':') return null;
    t = next();
    if (t?.kind === 'str') out.set(key, t.value);
    else if (t?.kind === 'bool') out.set(key, t.value === 'True');
    else if (t?.kind === '(') {
      const dims: number[] = [];
      for (;;) {
        t = next();
        if (t?.kind === ')') break;
        if (t?.kind !== 'int') return null;
        dims.push(Number(t.value));
        t = next();
        if (t?.kind === ')') break;
        if (t?.kind !== ',') return null;
      }
      out.set(key, dims);
    } else return null;
    t = next();
    if (t?.kind === '}') break;
    if (t?.kind !== ',') return null;
  }
  return /^\s*$/.test(text.slice(pos)) ? out : null;
}

/**
 * Parses an .npy file's header and returns a view on its data. Every field is checked: the magic
 * and version, the header length against the file, a known dtype, C order, a shape of
 * non-negative integers, and a data length of exactly shape × item size bytes.
 */
export function parseNpy(path: string, b: Buffer): NpyArray {
  if (b.length < 10 || b.toString('latin1', 0, 6) !== '\x93NUMPY') fail(`${path}: not a .npy file`);
  const major = b[6];
  if (major < 1 || major > 3 || b[7] !== 0)
    fail(`${path}: .npy format version ${major}.${b[7]}, expected 1.0, 2.0 or 3.0`);
  const start = major === 1 ? 10 : 12;
  if (b.length < start) fail(`${path}: truncated .npy header (file has ${b.length} bytes)`);
  const headerLen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  if (start + headerLen > b.length)
    fail(
      `${path}: truncated .npy header (${headerLen} header bytes declared, file has ${b.length} bytes)`,
    );
  const header = b.toString(major === 3 ? 'utf8' : 'latin1', start, start + headerLen);
  const shown = JSON.stringify(header.trim().slice(0, 200));
  const dict = parseHeaderDict(header);
  if (!dict) fail(`${path}: unreadable .npy header ${shown}`);
  const descr = dict.get('descr');
  const fortran = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (typeof descr !== 'string' || typeof fortran !== 'boolean' || !Array.isArray(shape))
    fail(`${path}: .npy header ${shown} lacks 'descr', 'fortran_order' or 'shape'`);
  if (dict.size !== 3) fail(`${path}: .npy header ${shown} has unknown keys`);
  if (fortran && shape.filter((d) => d !== 1).length > 1)
    fail(`${path}: Fortran-ordered arrays are not supported; save with C order`);
  const dtype = /^[<>=|]([iu]1)$/.exec(descr) ? `|${descr.slice(1)}` : descr;
  const itemBytes = DTYPES[dtype];
  if (itemBytes === undefined)
    fail(
      `${path}: dtype '${descr}' is not supported (expected little-endian integers, uint8 or float32)`,
    );
  for (const d of shape)
    if (!Number.isSafeInteger(d) || d < 0)
      fail(`${path}: shape (${shape.join(', ')}): dimensions must be integers from 0 to 2^53`);
  const dataBytes = b.length - start - headerLen;
  const want = shape.reduce((a, d) => a * BigInt(d), BigInt(itemBytes));
  if (BigInt(dataBytes) !== want)
    fail(
      `${path}: ${dataBytes} data bytes, expected ${want} (truncated or over-long), for shape ` +
        `(${shape.join(', ')}) of '${descr}'`,
    );
  const data = new Uint8Array(b.buffer, b.byteOffset + start + headerLen, dataBytes);
  return { descr: dtype, shape, data };
}

export function npyHeader(descr: string, shape: number[]): Buffer {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let text = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const total = 10 + text.length + 1;
  text += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head[6] = 1;
  head[7] = 0;
  head.writeUInt16LE(text.length, 8);
  return Buffer.concat([head, Buffer.from(text, 'latin1')]);
}

/** At most this many classes without a classes.txt (and with one): far beyond any dataset. */
export const MAX_CLASSES = 100_000;

/** Label readers by dtype; 64-bit labels are read exactly (as BigInt) and bounded before use. */
const LABEL_TYPES: Record<
  string,
  { bytes: number; read: (v: DataView, o: number) => number | bigint }
> = {
  '|u1': { bytes: 1, read: (v, o) => v.getUint8(o) },
  '|i1': { bytes: 1, read: (v, o) => v.getInt8(o) },
  '<i2': { bytes: 2, read: (v, o) => v.getInt16(o, true) },
  '<u2': { bytes: 2, read: (v, o) => v.getUint16(o, true) },
  '<i4': { bytes: 4, read: (v, o) => v.getInt32(o, true) },
  '<u4': { bytes: 4, read: (v, o) => v.getUint32(o, true) },
  '<i8': { bytes: 8, read: (v, o) => v.getBigInt64(o, true) },
  '<u8': { bytes: 8, read: (v, o) => v.getBigUint64(o, true) },
};

/** Which labels a split may hold: 0..limit-1, and why (for the error). */
interface LabelLimit {
  limit: number;
  why: string;
}

function readImages(xPath: string, xRaw: Buffer) {
  const x = parseNpy(xPath, xRaw);
  if (x.descr !== '|u1') fail(`${xPath}: dtype '${x.descr}', expected uint8 ('|u1')`);
  if (x.shape.length !== 3 && x.shape.length !== 4)
    fail(`${xPath}: shape (${x.shape.join(', ')}), expected N×H×W or N×H×W×C`);
  const [n, height, width, channels = 1] = x.shape;
  if (channels !== 1 && channels !== 3) fail(`${xPath}: ${channels} channels, expected 1 or 3`);
  if (n < 1 || height < 1 || width < 1)
    fail(`${xPath}: shape (${x.shape.join(', ')}), expected at least one image of at least 1×1`);
  return { n, height, width, channels, images: x.data };
}

function readLabels(yPath: string, yRaw: Buffer, n: number, xPath: string, bound: LabelLimit) {
  const y = parseNpy(yPath, yRaw);
  const type = LABEL_TYPES[y.descr];
  if (!type) fail(`${yPath}: dtype '${y.descr}', expected an integer type`);
  if (y.shape.length !== 1 || y.shape[0] !== n)
    fail(`${yPath}: shape (${y.shape.join(', ')}), expected (${n},) to match ${xPath}`);
  const view = new DataView(y.data.buffer, y.data.byteOffset, y.data.length);
  const labels = new Int32Array(n);
  let max = -1;
  for (let i = 0; i < n; i++) {
    const v = type.read(view, i * type.bytes);
    if (v < 0) fail(`${yPath} record ${i}: negative label ${v}`);
    if (v >= bound.limit)
      fail(`${yPath} record ${i}: label ${v}, expected 0..${bound.limit - 1} (${bound.why})`);
    labels[i] = Number(v);
    if (labels[i] > max) max = labels[i];
  }
  return { labels, max };
}

async function readSplit(
  dir: string,
  split: string,
  files: SourceFile[],
  bound: (n: number) => LabelLimit,
) {
  const xPath = join(dir, `x_${split}.npy`);
  const yPath = join(dir, `y_${split}.npy`);
  if (!(await isFile(xPath))) return null;
  const xRaw = await readInput(xPath, 'images');
  const yRaw = await readInput(yPath, 'labels');
  files.push(sourceFile(xPath, xRaw), sourceFile(yPath, yRaw));
  const x = readImages(xPath, xRaw);
  return { ...x, ...readLabels(yPath, yRaw, x.n, xPath, bound(x.n)) };
}

/**
 * Reads x_train/y_train (and x_test/y_test when present) from a folder. Class count: the lines of
 * classes.txt, else the largest label + 1; either way at most the training image count (a class
 * without training images is refused by the search anyway) and MAX_CLASSES, so that a stray label
 * can never make the per-class statistics huge.
 */
export async function readNpyFolder(dir: string): Promise<DatasetSplits<Dataset>> {
  const files: SourceFile[] = [];
  const namesPath = join(dir, 'classes.txt');
  const names = (await isFile(namesPath))
    ? (await readInput(namesPath, 'class names'))
        .toString('utf8')
        .split(/\r?\n/)
        .filter((s) => s.length > 0)
    : null;
  if (names && (names.length === 0 || names.length > MAX_CLASSES))
    fail(`${namesPath}: ${names.length} class names, expected 1 to ${MAX_CLASSES} (one a line)`);
  let trainCount = 0;
  const bound = (n: number): LabelLimit => {
    trainCount ||= n;
    if (names && names.length > trainCount)
      fail(
        `${namesPath}: ${names.length} class names for ${trainCount} training images ` +
          `(every class needs training images)`,
      );
    if (names) return { limit: names.length, why: `${namesPath} names ${names.length} classes` };
    const limit = Math.min(trainCount, MAX_CLASSES);
    return {
      limit,
      why:
        `without classes.txt the classes are 0..largest label, each with training images: ` +
        `at most ${limit} for ${trainCount} training images`,
    };
  };
  const train = await readSplit(dir, 'train', files, bound);
  if (!train) fail(`${dir}: no x_train.npy (NumPy dataset: x_train.npy, y_train.npy)`);
  const test = await readSplit(dir, 'test', files, bound);
  if (
    test &&
    (test.height !== train.height || test.width !== train.width || test.channels !== train.channels)
  )
    fail(
      `${join(dir, 'x_test.npy')}: images are ${test.height}×${test.width}×${test.channels}, ` +
        `x_train.npy's ${train.height}×${train.width}×${train.channels}`,
    );
  const classes = Math.max(train.max, test?.max ?? -1) + 1;
  const classNames = names ?? Array.from({ length: classes }, (_, i) => String(i));
  const toDataset = (s: NonNullable<typeof train>): Dataset => ({
    height: s.height,
    width: s.width,
    channels: s.channels,
    images: s.images,
    labels: s.labels,
    classNames,
  });
  return {
    format: 'npy',
    dataDir: dir,
    train: toDataset(train),
    test: test ? toDataset(test) : null,
    files,
  };
}

/** Writes x_<split>.npy (uint8 N×H×W×C), y_<split>.npy (int64) and classes.txt. */
export const writeNpy: DatasetWriter = async (dir, splits, onImage) => {
  for (const split of splits) {
    const s = split.stream;
    const x = new ChunkedWriter(join(dir, `x_${split.name}.npy`));
    await x.write(npyHeader('|u1', [s.count, s.height, s.width, s.channels]));
    const labels = new BigInt64Array(s.count);
    let i = 0;
    for await (const rec of s.records()) {
      labels[i++] = BigInt(rec.label);
      await x.write(rec.image);
      onImage?.();
    }
    await x.close();
    const y = npyHeader('<i8', [s.count]);
    await writeFile(
      join(dir, `y_${split.name}.npy`),
      Buffer.concat([y, Buffer.from(labels.buffer)]),
    );
  }
  await writeFile(join(dir, 'classes.txt'), splits[0].stream.classNames.join('\n') + '\n');
};
