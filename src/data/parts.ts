/**
 * A training split written in parts: each shard of a sharded protect writes the records it owns
 * straight into their final place, so the assembled folder is byte for byte what the format's
 * one-pass writer (formats.ts writerFor) writes. Fixed-size records (CIFAR, NumPy, IDX) go to
 * their offset in the shared file (positional writes: shards never write the same bytes, and the
 * header belongs to shard 0); PNGs are one file per record. IDX is gzipped: its shards write the
 * raw file under a parts folder and `finishParts` compresses it once, with the writer's own
 * sequence of writes.
 */
import { constants } from 'node:fs';
import { open, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, withPath } from '../errors.js';
import { checkCifarShape, CIFAR10_TRAIN_FILES, encodeRecord } from './cifar.js';
import { pixelsToPlanes } from './cifar-decode.js';
import { checkPythonShape, pythonBatches, pythonBatchFrame, pythonMeta } from './cifar-python.js';
import type { ImageRecord, ImageStream, Shape } from './dataset.js';
import { imageSize } from './dataset.js';
import { ChunkedWriter } from './files.js';
import { classFolderNames, writePngRun } from './folder.js';
import type { DatasetKind, OutputFormat } from './formats.js';
import { IMAGES_MAGIC, LABELS_MAGIC } from './idx.js';
import { npyHeader } from './npy.js';

/** What a training split looks like to its writer: shape, names, and the number of records. */
export interface SplitShape extends Shape {
  classNames: string[];
  coarseClassNames?: string[];
  count: number;
}

/** A file of fixed-size records: records [first, first + count) of the split, after a header. */
interface RecordFile {
  name: string;
  header: Uint8Array;
  first: number;
  count: number;
  recordBytes: number;
  encode: (rec: ImageRecord, out: Uint8Array) => void;
  /** IDX: written raw under the parts folder, gzipped by finishParts ('records': the writer fed
   * zlib the header then one record at a time; 'whole': one buffer). */
  gzip: 'records' | 'whole' | null;
  /** CIFAR python: what follows the records (their labels and names), written by finishParts. */
  tail?: (labels: SplitLabels) => Uint8Array;
}

/** Every label of the split (the protection leaves them as they are), for files that list them. */
export interface SplitLabels {
  fine: Int32Array;
  coarse: Int32Array;
}

function u32be(...values: number[]): Uint8Array {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeUInt32BE(v, 4 * i));
  return b;
}

/** The record files of a training split in `format`; empty for png (one file per image). */
function recordFiles(format: OutputFormat, kind: DatasetKind, s: SplitShape): RecordFile[] {
  const n = s.count;
  const size = imageSize(s);
  const copy = (rec: ImageRecord, out: Uint8Array) => out.set(rec.image);
  const checkLabel = (rec: ImageRecord, what: string) => {
    if (rec.label > 255) fail(`${rec.ref}: label ${rec.label} does not fit ${what}'s label byte`);
  };
  if (format === 'cifar') {
    const stream = { ...s, records: () => [] } as unknown as ImageStream;
    const coarse = kind === 'cifar100';
    checkCifarShape(
      { name: 'train', stream },
      coarse ? 100 : 10,
      coarse ? 'CIFAR-100' : 'CIFAR-10',
    );
    const encode = (rec: ImageRecord, out: Uint8Array) => {
      checkLabel(rec, 'CIFAR');
      encodeRecord(out, rec.image, rec.label, coarse ? (rec.coarseLabel ?? 0) : null);
    };
    const recordBytes = (coarse ? 2 : 1) + size;
    const none = new Uint8Array(0);
    if (coarse)
      return [
        { name: 'train.bin', header: none, first: 0, count: n, recordBytes, encode, gzip: null },
      ];
    if (n < 5)
      fail(
        `the CIFAR-10 layout spreads training images over 5 files and needs at least 5, got ${n}`,
      );
    return CIFAR10_TRAIN_FILES.map((name, b) => {
      const first = Math.floor((b * n) / 5);
      const count = Math.floor(((b + 1) * n) / 5) - first;
      return { name, header: none, first, count, recordBytes, encode, gzip: null };
    });
  }
  if (format === 'cifar-python') {
    const c100 = kind === 'cifar100' || kind === 'cifar100-python';
    const stream = { ...s, records: () => [] } as unknown as ImageStream;
    checkPythonShape({ name: 'train', stream }, c100);
    const encode = (rec: ImageRecord, out: Uint8Array) => pixelsToPlanes(rec.image, out, 0);
    const none = new Int32Array(0);
    return pythonBatches(c100, 'train', n).map((b) => ({
      name: b.name,
      header: pythonBatchFrame(c100, b, none, none, { name: 'train', count: n }).head,
      first: b.first,
      count: b.count,
      recordBytes: size,
      encode,
      gzip: null,
      tail: (labels: SplitLabels) =>
        pythonBatchFrame(
          c100,
          b,
          labels.fine.subarray(b.first, b.first + b.count),
          labels.coarse.subarray(b.first, b.first + b.count),
          { name: 'train', count: n },
        ).tail,
    }));
  }
  if (format === 'npy') {
    const x = npyHeader('|u1', [n, s.height, s.width, s.channels]);
    const y = npyHeader('<i8', [n]);
    const label = (rec: ImageRecord, out: Uint8Array) =>
      new DataView(out.buffer, out.byteOffset, 8).setBigInt64(0, BigInt(rec.label), true);
    return [
      {
        name: 'x_train.npy',
        header: x,
        first: 0,
        count: n,
        recordBytes: size,
        encode: copy,
        gzip: null,
      },
      {
        name: 'y_train.npy',
        header: y,
        first: 0,
        count: n,
        recordBytes: 8,
        encode: label,
        gzip: null,
      },
    ];
  }
  if (format === 'idx') {
    if (s.channels !== 1)
      fail(
        `the IDX format holds grayscale images, these have ${s.channels} channels; use --format npy or png`,
      );
    const label = (rec: ImageRecord, out: Uint8Array) => {
      checkLabel(rec, 'IDX');
      out[0] = rec.label;
    };
    return [
      {
        name: 'train-images-idx3-ubyte.gz',
        header: u32be(IMAGES_MAGIC, n, s.height, s.width),
        first: 0,
        count: n,
        recordBytes: size,
        encode: copy,
        gzip: 'records',
      },
      {
        name: 'train-labels-idx1-ubyte.gz',
        header: u32be(LABELS_MAGIC, n),
        first: 0,
        count: n,
        recordBytes: 1,
        encode: label,
        gzip: 'whole',
      },
    ];
  }
  return [];
}

/** Buffered writes at increasing offsets of one file opened without truncation. */
class PositionalWriter {
  private readonly buf = Buffer.allocUnsafe(4 << 20);
  private used = 0;
  private constructor(
    private readonly fh: Awaited<ReturnType<typeof open>>,
    private pos: number,
    private readonly path: string,
  ) {}

  static async open(path: string, pos: number): Promise<PositionalWriter> {
    return new PositionalWriter(
      await open(path, constants.O_WRONLY | constants.O_CREAT, 0o644),
      pos,
      path,
    );
  }

  /** Writes; a failure (a full disk) names the file. */
  async write(bytes: Uint8Array): Promise<void> {
    try {
      await this.buffered(bytes);
    } catch (e) {
      throw withPath(e, this.path);
    }
  }

  private async buffered(bytes: Uint8Array): Promise<void> {
    if (this.used + bytes.length > this.buf.length) await this.flush();
    if (bytes.length > this.buf.length) {
      await this.fh.write(bytes, 0, bytes.length, this.pos);
      this.pos += bytes.length;
      return;
    }
    this.buf.set(bytes, this.used);
    this.used += bytes.length;
  }

  private async flush(): Promise<void> {
    let off = 0;
    while (off < this.used)
      off += (await this.fh.write(this.buf, off, this.used - off, this.pos + off)).bytesWritten;
    this.pos += this.used;
    this.used = 0;
  }

  async close(): Promise<void> {
    try {
      await this.flush();
    } catch (e) {
      throw withPath(e, this.path);
    } finally {
      await this.fh.close();
    }
  }
}

export interface PartOptions {
  format: OutputFormat;
  kind: DatasetKind;
  /** The whole split: its shape, names and record count. */
  split: SplitShape;
  /** The output folder, shared by every shard. */
  out: string;
  /** A folder of the shards' own (for IDX's raw files), shared by every shard. */
  partsDir: string;
  /** The split index of the part's first record. */
  first: number;
  /** Shard 0 writes the headers. */
  headers: boolean;
  onImage?: () => void;
}

/** Writes records [first, first + part.count) of the training split into their final place. */
export async function writePart(o: PartOptions, part: ImageStream): Promise<void> {
  const files = recordFiles(o.format, o.kind, o.split);
  const pathOf = (f: RecordFile) => join(f.gzip ? o.partsDir : o.out, f.gzip ? rawName(f) : f.name);
  if (o.headers)
    for (const f of files) {
      const w = await PositionalWriter.open(pathOf(f), 0);
      await w.write(f.header);
      await w.close();
    }
  if (o.format === 'png') return writePngPart(o, part);
  const writers = new Map<RecordFile, PositionalWriter>();
  const scratch = new Map(files.map((f) => [f, new Uint8Array(f.recordBytes)]));
  let i = o.first;
  try {
    for await (const rec of part.records()) {
      for (const f of files) {
        if (i < f.first || i >= f.first + f.count) continue;
        let w = writers.get(f);
        if (!w) {
          w = await PositionalWriter.open(
            pathOf(f),
            f.header.length + (i - f.first) * f.recordBytes,
          );
          writers.set(f, w);
        }
        const buf = scratch.get(f) as Uint8Array;
        f.encode(rec, buf);
        await w.write(buf);
      }
      i++;
      o.onImage?.();
    }
  } finally {
    for (const w of writers.values()) await w.close();
  }
  if (i !== o.first + part.count)
    fail(`the part of records ${o.first}… gave ${i - o.first} images, expected ${part.count}`);
}

function rawName(f: RecordFile): string {
  return f.name.replace(/\.gz$/, '') + '.raw';
}

/** The PNG folder's part: `train/<label>_<class>/<index>.png` for each record it owns. */
async function writePngPart(o: PartOptions, part: ImageStream): Promise<void> {
  const s = o.split;
  await writePngRun(
    {
      splitDir: join(o.out, 'train'),
      folders: classFolderNames(s.classNames, 'train split'),
      shape: s,
      first: o.first,
      indexWidth: String(s.count).length,
      onImage: o.onImage,
    },
    part.records(),
  );
}

/**
 * Once every part is written: compresses IDX's raw files into place, as writeIdx does, and ends
 * CIFAR python batches with their labels and names.
 */
export async function finishParts(
  o: Omit<PartOptions, 'first' | 'headers'>,
  labels: () => Promise<SplitLabels>,
): Promise<void> {
  for (const f of recordFiles(o.format, o.kind, o.split)) {
    if (f.tail) {
      const fh = await open(join(o.out, f.name), constants.O_WRONLY);
      try {
        const tail = f.tail(await labels());
        await fh.write(tail, 0, tail.length, f.header.length + f.count * f.recordBytes);
      } finally {
        await fh.close();
      }
    }
    if (!f.gzip) continue;
    const raw = join(o.partsDir, rawName(f));
    const fh = await open(raw, 'r');
    const out = new ChunkedWriter(join(o.out, f.name), { gzip: true });
    try {
      if (f.gzip === 'whole') {
        await out.write(await fh.readFile());
      } else {
        const header = Buffer.alloc(f.header.length);
        await fh.read(header, 0, header.length, 0);
        await out.write(header);
        const per = Math.max(1, Math.floor((4 << 20) / f.recordBytes));
        const block = Buffer.alloc(per * f.recordBytes);
        for (let r = 0; r < f.count; r += per) {
          const take = Math.min(per, f.count - r) * f.recordBytes;
          const pos = f.header.length + r * f.recordBytes;
          const { bytesRead } = await fh.read(block, 0, take, pos);
          if (bytesRead !== take)
            fail(`${raw}: a shard's records are missing (short read at ${pos})`);
          for (let o2 = 0; o2 < take; o2 += f.recordBytes)
            await out.write(block.subarray(o2, o2 + f.recordBytes));
        }
      }
    } finally {
      await fh.close();
    }
    await out.close();
    await rm(raw);
  }
}

/**
 * The files a format's writer adds beside the splits (class names; CIFAR python's meta, which
 * also counts the images of a training batch), as the writer writes them from the whole copy.
 */
export async function writeMetadata(
  format: OutputFormat,
  kind: DatasetKind,
  s: SplitShape,
  out: string,
): Promise<void> {
  const c100 = kind === 'cifar100' || kind === 'cifar100-python';
  if (format === 'cifar-python') {
    const [first] = pythonBatches(c100, 'train', s.count);
    const [name, meta] = pythonMeta(c100, first.count, s.classNames, s.coarseClassNames);
    await writeFile(join(out, name), meta);
  } else if (format === 'cifar' && c100) {
    await writeFile(join(out, 'fine_label_names.txt'), s.classNames.join('\n') + '\n');
    const coarse = s.coarseClassNames ?? ['0'];
    await writeFile(join(out, 'coarse_label_names.txt'), coarse.join('\n') + '\n');
  } else if (format === 'cifar') {
    await writeFile(join(out, 'batches.meta.txt'), s.classNames.join('\n') + '\n\n');
  } else if (format === 'npy') {
    await writeFile(join(out, 'classes.txt'), s.classNames.join('\n') + '\n');
  }
}
