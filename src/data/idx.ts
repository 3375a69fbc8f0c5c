/**
 * MNIST-style IDX files (Fashion-MNIST, MNIST), gzipped or not: `train-images-idx3-ubyte[.gz]`,
 * `train-labels-idx1-ubyte[.gz]`, and `t10k-…` for the test split. Images are 28×28×1 uint8.
 */
import { join } from 'node:path';
import { fail } from '../errors.js';
import type { Dataset, DatasetSplits, SourceFile } from './dataset.js';
import { ChunkedWriter, gunzipBounded, isFile, isGzip, readInput, sourceFile } from './files.js';
import type { DatasetWriter } from './write.js';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top',
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
export const MNIST_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

export const IMAGES_MAGIC = 0x00000803;
export const LABELS_MAGIC = 0x00000801;

async function findFile(dir: string, stem: string): Promise<string | null> {
  for (const name of [`${stem}.gz`, stem])
    if (await isFile(join(dir, name))) return join(dir, name);
  return null;
}

/**
 * An IDX file's plain bytes. A gzipped one is inflated to exactly the size its header implies
 * (`plainSize`), never further; a plain one is read as it is (its size is checked by the parser).
 */
async function readIdx(
  path: string,
  what: string,
  files: SourceFile[],
  headerBytes: number,
  plainSize: (header: Buffer) => number,
): Promise<Buffer> {
  const raw = await readInput(path, what);
  files.push(sourceFile(path, raw));
  return isGzip(raw) ? gunzipBounded(path, raw, headerBytes, plainSize) : raw;
}

/** The images file's header: magic, then N, rows, cols (big-endian uint32); its whole size. */
function imagesHeader(path: string, b: Buffer) {
  if (b.length < 16 || b.readUInt32BE(0) !== IMAGES_MAGIC)
    fail(`${path}: not an IDX image file (expected magic 0x00000803, a uint8 N×rows×cols array)`);
  const [n, rows, cols] = [b.readUInt32BE(4), b.readUInt32BE(8), b.readUInt32BE(12)];
  if (n < 1 || rows < 1 || cols < 1)
    fail(`${path}: header declares ${n} images of ${rows}×${cols}, expected at least one of 1×1`);
  return { n, rows, cols, bytes: 16 + n * rows * cols };
}

function labelsHeader(path: string, b: Buffer) {
  if (b.length < 8 || b.readUInt32BE(0) !== LABELS_MAGIC)
    fail(`${path}: not an IDX label file (expected magic 0x00000801)`);
  const n = b.readUInt32BE(4);
  return { n, bytes: 8 + n };
}

function parseImages(path: string, b: Buffer) {
  const { n, rows, cols, bytes: want } = imagesHeader(path, b);
  if (b.length !== want)
    fail(
      `${path}: ${b.length} bytes, expected ${want} for ${n} images of ${rows}×${cols} (truncated or over-long)`,
    );
  return { n, rows, cols, pixels: new Uint8Array(b.buffer, b.byteOffset + 16, n * rows * cols) };
}

function parseLabels(path: string, b: Buffer, classes: number): Int32Array {
  const { n } = labelsHeader(path, b);
  if (b.length !== 8 + n) fail(`${path}: ${b.length} bytes, expected ${8 + n} for ${n} labels`);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = b[8 + i];
    if (labels[i] >= classes)
      fail(`${path} record ${i}: label ${labels[i]}, expected 0..${classes - 1}`);
  }
  return labels;
}

async function readSplit(dir: string, prefix: string, classNames: string[], files: SourceFile[]) {
  const imgPath = await findFile(dir, `${prefix}-images-idx3-ubyte`);
  const lblPath = await findFile(dir, `${prefix}-labels-idx1-ubyte`);
  if (!imgPath && !lblPath) return null;
  if (!imgPath || !lblPath)
    fail(
      `${dir}: ${prefix}-${imgPath ? 'labels-idx1' : 'images-idx3'}-ubyte[.gz] is missing ` +
        `(found ${imgPath ?? lblPath}; IDX splits need both files)`,
    );
  const imgBytes = await readIdx(
    imgPath,
    'IDX images',
    files,
    16,
    (h) => imagesHeader(imgPath, h).bytes,
  );
  const img = parseImages(imgPath, imgBytes);
  // The label count must be the image count: checked on the header, before inflating.
  const countLabels = (b: Buffer) => {
    const h = labelsHeader(lblPath, b);
    if (h.n !== img.n) fail(`${lblPath}: ${h.n} labels for ${img.n} images in ${imgPath}`);
    return h.bytes;
  };
  const lblBytes = await readIdx(lblPath, 'IDX labels', files, 8, countLabels);
  const labels = parseLabels(lblPath, lblBytes, classNames.length);
  if (labels.length !== img.n)
    fail(`${lblPath}: ${labels.length} labels for ${img.n} images in ${imgPath}`);
  const ds: Dataset = {
    height: img.rows,
    width: img.cols,
    channels: 1,
    images: img.pixels,
    labels,
    classNames,
  };
  return ds;
}

/** Reads an IDX folder; `classNames` defaults to Fashion-MNIST's. */
export async function readIdxFolder(
  dir: string,
  classNames: string[] = FASHION_MNIST_CLASSES,
): Promise<DatasetSplits<Dataset>> {
  const files: SourceFile[] = [];
  const train = await readSplit(dir, 'train', classNames, files);
  if (!train)
    fail(`${dir}: no train-images-idx3-ubyte[.gz] with train-labels-idx1-ubyte[.gz] (IDX dataset)`);
  const test = await readSplit(dir, 't10k', classNames, files);
  if (test && (test.height !== train.height || test.width !== train.width))
    fail(
      `${join(dir, 't10k-images-idx3-ubyte')}[.gz]: images are ${test.height}×${test.width}, ` +
        `training images ` +
        `${train.height}×${train.width} (expected one size)`,
    );
  return { format: 'idx', dataDir: dir, train, test, files };
}

/** Writes gzipped IDX files with the standard names (grayscale images only). */
export const writeIdx: DatasetWriter = async (dir, splits, onImage) => {
  for (const split of splits) {
    const s = split.stream;
    if (s.channels !== 1)
      fail(
        `the IDX format holds grayscale images, these have ${s.channels} channels; use --format npy or png`,
      );
    const prefix = split.name === 'train' ? 'train' : 't10k';
    const images = new ChunkedWriter(join(dir, `${prefix}-images-idx3-ubyte.gz`), { gzip: true });
    const header = Buffer.alloc(16);
    header.writeUInt32BE(IMAGES_MAGIC, 0);
    header.writeUInt32BE(s.count, 4);
    header.writeUInt32BE(s.height, 8);
    header.writeUInt32BE(s.width, 12);
    await images.write(header);
    const labels = Buffer.alloc(8 + s.count);
    labels.writeUInt32BE(LABELS_MAGIC, 0);
    labels.writeUInt32BE(s.count, 4);
    let i = 0;
    for await (const rec of s.records()) {
      if (rec.label > 255) fail(`${rec.ref}: label ${rec.label} does not fit IDX's label byte`);
      labels[8 + i++] = rec.label;
      await images.write(rec.image);
      onImage?.();
    }
    await images.close();
    const out = new ChunkedWriter(join(dir, `${prefix}-labels-idx1-ubyte.gz`), { gzip: true });
    await out.write(labels);
    await out.close();
  }
};
