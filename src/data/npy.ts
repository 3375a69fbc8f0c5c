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

interface NpyArray {
  descr: string;
  shape: number[];
  data: Uint8Array;
}

/** Parses an .npy file's header and returns a view on its data. */
export function parseNpy(path: string, b: Buffer): NpyArray {
  if (b.length < 10 || b.toString('latin1', 0, 6) !== '\x93NUMPY') fail(`${path}: not a .npy file`);
  const major = b[6];
  const headerLen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  if (start + headerLen > b.length)
    fail(
      `${path}: truncated .npy header (${headerLen} header bytes declared, file has ${b.length} bytes)`,
    );
  const header = b.toString('latin1', start, start + headerLen);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined)
    fail(`${path}: unreadable .npy header '${header.trim()}'`);
  if (fortran === 'True')
    fail(`${path}: Fortran-ordered arrays are not supported; save with C order`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const data = new Uint8Array(
    b.buffer,
    b.byteOffset + start + headerLen,
    b.length - start - headerLen,
  );
  return { descr, shape, data };
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

const LABEL_TYPES: Record<string, { bytes: number; read: (b: DataView, o: number) => number }> = {
  '|u1': { bytes: 1, read: (v, o) => v.getUint8(o) },
  '|i1': { bytes: 1, read: (v, o) => v.getInt8(o) },
  '<i2': { bytes: 2, read: (v, o) => v.getInt16(o, true) },
  '<u2': { bytes: 2, read: (v, o) => v.getUint16(o, true) },
  '<i4': { bytes: 4, read: (v, o) => v.getInt32(o, true) },
  '<u4': { bytes: 4, read: (v, o) => v.getUint32(o, true) },
  '<i8': { bytes: 8, read: (v, o) => Number(v.getBigInt64(o, true)) },
};

async function readSplit(
  dir: string,
  split: string,
  files: SourceFile[],
  classes: string[] | null,
) {
  const xPath = join(dir, `x_${split}.npy`);
  const yPath = join(dir, `y_${split}.npy`);
  if (!(await isFile(xPath))) return null;
  const xRaw = await readInput(xPath, 'images');
  const yRaw = await readInput(yPath, 'labels');
  files.push(sourceFile(xPath, xRaw), sourceFile(yPath, yRaw));
  const x = parseNpy(xPath, xRaw);
  if (x.descr !== '|u1') fail(`${xPath}: dtype '${x.descr}', expected uint8 ('|u1')`);
  if (x.shape.length !== 3 && x.shape.length !== 4)
    fail(`${xPath}: shape (${x.shape.join(', ')}), expected N×H×W or N×H×W×C`);
  const [n, height, width, channels = 1] = x.shape;
  if (channels !== 1 && channels !== 3) fail(`${xPath}: ${channels} channels, expected 1 or 3`);
  if (x.data.length !== n * height * width * channels)
    fail(
      `${xPath}: ${x.data.length} data bytes, expected ${n * height * width * channels} (truncated or over-long)`,
    );
  const y = parseNpy(yPath, yRaw);
  const type = LABEL_TYPES[y.descr];
  if (!type) fail(`${yPath}: dtype '${y.descr}', expected an integer type`);
  if (y.shape.length !== 1 || y.shape[0] !== n)
    fail(`${yPath}: shape (${y.shape.join(', ')}), expected (${n},) to match ${xPath}`);
  if (y.data.length !== n * type.bytes) fail(`${yPath}: truncated or over-long data`);
  const view = new DataView(y.data.buffer, y.data.byteOffset, y.data.length);
  const labels = new Int32Array(n);
  let max = -1;
  for (let i = 0; i < n; i++) {
    labels[i] = type.read(view, i * type.bytes);
    if (labels[i] < 0) fail(`${yPath} record ${i}: negative label ${labels[i]}`);
    max = Math.max(max, labels[i]);
  }
  return { height, width, channels, images: x.data, labels, max, classes };
}

/** Reads x_train/y_train (and x_test/y_test when present) from a folder. */
export async function readNpyFolder(dir: string): Promise<DatasetSplits<Dataset>> {
  const files: SourceFile[] = [];
  const namesPath = join(dir, 'classes.txt');
  const names = (await isFile(namesPath))
    ? (await readInput(namesPath, 'class names'))
        .toString('utf8')
        .split(/\r?\n/)
        .filter((s) => s.length > 0)
    : null;
  const train = await readSplit(dir, 'train', files, names);
  if (!train) fail(`${dir}: no x_train.npy (NumPy dataset: x_train.npy, y_train.npy)`);
  const test = await readSplit(dir, 'test', files, names);
  const classes = Math.max(train.max, test?.max ?? -1) + 1;
  const classNames = names ?? Array.from({ length: classes }, (_, i) => String(i));
  for (const [split, s] of [
    ['train', train],
    ['test', test],
  ] as const) {
    if (s && s.max >= classNames.length)
      fail(
        `${join(dir, `y_${split}.npy`)}: label ${s.max}, but ${namesPath} names ${classNames.length} classes`,
      );
  }
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
