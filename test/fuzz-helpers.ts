/**
 * Seeded byte mutations and small valid dataset files for the reader fuzz tests
 * (test/fuzz-readers.test.ts). Everything is built here from scratch, so the files are tiny and
 * each mutation is reproducible from its seed.
 */
import { writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import sharp from 'sharp';

/** mulberry32: a tiny seeded generator (independent of src/). */
export class Rand {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.int(256)));
  }
}

/** Values that break size fields: zero, one, sign bits, all ones, and random ones. */
const HUGE = [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x10000, 2_000_000_000];

/**
 * One seeded mutation of a file: truncation, byte flips (mostly in the first `header` bytes),
 * a 32-bit field overwritten with a huge or zero value, wrong magic, extra bytes, or doubling.
 */
export function mutate(r: Rand, b: Buffer, header: number): { bytes: Buffer; how: string } {
  const out = Buffer.from(b);
  const h = Math.max(1, Math.min(header, b.length));
  switch (r.int(8)) {
    case 0: {
      const n = r.int(b.length);
      return { bytes: out.subarray(0, n), how: `truncated to ${n}` };
    }
    case 1:
    case 2: {
      const at = r.int(h);
      out[at] ^= 1 + r.int(255);
      return { bytes: out, how: `header byte ${at} flipped` };
    }
    case 3: {
      const at = r.int(b.length);
      out[at] ^= 1 + r.int(255);
      return { bytes: out, how: `byte ${at} flipped` };
    }
    case 4: {
      if (b.length < 4) return { bytes: out, how: 'unchanged' };
      const at = 4 * r.int(Math.max(1, Math.floor(Math.min(h, b.length - 3) / 4)));
      const v = r.next() < 0.7 ? r.pick(HUGE) : r.int(2 ** 32);
      if (r.next() < 0.5) out.writeUInt32BE(v, at);
      else out.writeUInt32LE(v, at);
      return { bytes: out, how: `u32 at ${at} = ${v}` };
    }
    case 5:
      out.fill(r.int(256), 0, Math.min(4, out.length));
      return { bytes: out, how: 'wrong magic' };
    case 6: {
      const n = 1 + r.int(64);
      return { bytes: Buffer.concat([out, r.bytes(n)]), how: `${n} bytes appended` };
    }
    default:
      return { bytes: Buffer.concat([out, out]), how: 'doubled' };
  }
}

/** An .npy file laid out as NumPy writes it; `header` replaces the dict text when given. */
export function npy(descr: string, shape: number[], data: Uint8Array, header?: string): Buffer {
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  let dict = header ?? `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  dict += ' '.repeat((64 - ((10 + dict.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.from('\x93NUMPY\x01\x00\x00\x00', 'latin1');
  head.writeUInt16LE(dict.length, 8);
  return Buffer.concat([head, Buffer.from(dict, 'latin1'), data]);
}

export function int64(values: Array<number | bigint>): Uint8Array {
  return new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer);
}

/** A small valid dataset in one format: its files (name → bytes) and the header size of each. */
export interface Fixture {
  files: Map<string, Buffer>;
  header: (name: string) => number;
}

export async function writeFixture(dir: string, f: Fixture): Promise<void> {
  for (const [name, bytes] of f.files) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), bytes);
  }
}

function pixels(r: Rand, n: number): Buffer {
  return r.bytes(n);
}

/** CIFAR-10 (labelBytes 1) or CIFAR-100 (2): two records a file. */
export function cifarFixture(labelBytes: 1 | 2): Fixture {
  const r = new Rand(labelBytes);
  const record = (i: number) =>
    Buffer.concat([Buffer.from(labelBytes === 1 ? [i % 10] : [i % 20, i % 100]), pixels(r, 3072)]);
  const file = (first: number) => Buffer.concat([record(first), record(first + 1)]);
  const files = new Map<string, Buffer>();
  if (labelBytes === 1) {
    for (let b = 1; b <= 5; b++) files.set(`data_batch_${b}.bin`, file(2 * b));
    files.set('test_batch.bin', file(0));
    files.set('batches.meta.txt', Buffer.from('a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n'));
  } else {
    files.set('train.bin', Buffer.concat([file(0), file(2), file(4)]));
    files.set('test.bin', file(7));
    const names = (n: number) => Array.from({ length: n }, (_, i) => `c${i}`).join('\n') + '\n';
    files.set('fine_label_names.txt', Buffer.from(names(100)));
    files.set('coarse_label_names.txt', Buffer.from(names(20)));
  }
  return { files, header: (name) => (name.endsWith('.txt') ? 64 : 2 * (labelBytes + 3072)) };
}

function idxImages(n: number, side: number, r: Rand): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32BE(0x803, 0);
  h.writeUInt32BE(n, 4);
  h.writeUInt32BE(side, 8);
  h.writeUInt32BE(side, 12);
  return Buffer.concat([h, pixels(r, n * side * side)]);
}

function idxLabels(labels: number[]): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt32BE(0x801, 0);
  h.writeUInt32BE(labels.length, 4);
  return Buffer.concat([h, Buffer.from(labels)]);
}

/** Fashion-MNIST style IDX, 6 training and 4 test images of 4×4; gzipped or not. */
export function idxFixture(gz: boolean): Fixture {
  const r = new Rand(3);
  const files = new Map<string, Buffer>();
  const put = (name: string, b: Buffer) =>
    files.set(gz ? `${name}.gz` : name, gz ? gzipSync(b) : b);
  put('train-images-idx3-ubyte', idxImages(6, 4, r));
  put('train-labels-idx1-ubyte', idxLabels([0, 1, 2, 0, 1, 2]));
  put('t10k-images-idx3-ubyte', idxImages(4, 4, r));
  put('t10k-labels-idx1-ubyte', idxLabels([2, 1, 0, 9]));
  return { files, header: () => (gz ? 24 : 16) };
}

/** The plain IDX bytes of idxFixture(false), to be mutated before gzipping. */
export const plainIdx = (): Fixture => idxFixture(false);

/** NumPy: x_train 6×4×4×3, y_train int64, x_test 2×4×4×3, y_test, classes.txt. */
export function npyFixture(): Fixture {
  const r = new Rand(4);
  const files = new Map<string, Buffer>();
  files.set('x_train.npy', npy('|u1', [6, 4, 4, 3], pixels(r, 6 * 48)));
  files.set('y_train.npy', npy('<i8', [6], int64([0, 1, 2, 0, 1, 2])));
  files.set('x_test.npy', npy('|u1', [2, 4, 4, 3], pixels(r, 2 * 48)));
  files.set('y_test.npy', npy('<i8', [2], int64([2, 0])));
  files.set('classes.txt', Buffer.from('cat\ndog\nfox\n'));
  return { files, header: (name) => (name.endsWith('.txt') ? 16 : 128) };
}

/** Class folders: train/{a,b}/ and test/{a,b}/ with 6×6 PNGs and one JPEG. */
export async function folderFixture(): Promise<Fixture> {
  const r = new Rand(5);
  const image = (format: 'png' | 'jpeg') => {
    const img = sharp(pixels(r, 6 * 6 * 3), { raw: { width: 6, height: 6, channels: 3 } });
    return (format === 'png' ? img.png() : img.jpeg()).toBuffer();
  };
  const files = new Map<string, Buffer>();
  for (const split of ['train', 'test'])
    for (const cls of ['a', 'b']) {
      files.set(`${split}/${cls}/0.png`, await image('png'));
      files.set(`${split}/${cls}/1.png`, await image('png'));
    }
  files.set('train/b/2.jpg', await image('jpeg'));
  return { files, header: () => 64 };
}

/** A PNG whose header declares `width`×`height` (valid CRCs, next to no pixel data). */
export function pngDeclaring(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const sum = Buffer.alloc(4);
    sum.writeUInt32BE(crc(body));
    return Buffer.concat([len, body, sum]);
  };
  const ihdr = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 8, 2, 0, 0, 0]);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  return Buffer.concat([
    Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]),
    chunk('IHDR', ihdr),
    chunk('IDAT', gzipSync(Buffer.alloc(64)).subarray(10)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A valid manifest of a 2-class, 4×4 RGB cifar10s run (with its noise record). */
export function validManifest(): Record<string, unknown> {
  return {
    method: 'cifar10s',
    objective: 'official',
    pixelsPerClass: 1,
    height: 4,
    width: 4,
    channels: 3,
    classes: [
      {
        label: 0,
        name: 'cat',
        count: 3,
        pixels: [{ row: 1, col: 2, value: [0, 255, 0], score: 1.5 }],
      },
      {
        label: 1,
        name: 'dog',
        count: 3,
        pixels: [{ row: 3, col: 3, value: [255, 255, 255], score: 'Infinity' }],
      },
    ],
    source: {
      dataset: 'npy',
      dataDir: '/nowhere/onepixel-fuzz',
      files: [{ path: 'x_train.npy', bytes: 416, sha256: 'ab'.repeat(32) }],
    },
    output: { format: 'npy', train: 6, test: 2 },
    noise: {
      file: 'noise.npy',
      shape: [6, 4, 4, 3],
      epsilon: 8 / 255,
      generator: 'em',
      seed: 0,
      em: {
        config: { mode: 'samplewise', epsilon: 8 / 255, steps: 20, model: 'lenet5' },
        rounds: 1,
        finalAccuracy: 0.5,
        stoppedBy: 'max-rounds',
        seconds: 1.5,
        backend: 'cpu',
        workers: 1,
        history: [{ round: 1, trainLoss: 1.2, loss: 1.1, accuracy: 0.5, seconds: 1.5 }],
      },
    },
    version: '0.1.0',
  };
}

/** Every path to a value in a JSON tree (keys and indices). */
export function jsonPaths(
  v: unknown,
  at: Array<string | number> = [],
): Array<Array<string | number>> {
  const out: Array<Array<string | number>> = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...jsonPaths(x, [...at, i])));
  else if (typeof v === 'object' && v !== null)
    for (const [k, x] of Object.entries(v)) out.push(...jsonPaths(x, [...at, k]));
  return out;
}

/** Replacement values for a manifest field: wrong types, out of range, NaN-like, huge. */
export const JSON_VALUES: unknown[] = [
  null,
  -1,
  0,
  1.5,
  1e308,
  2 ** 53,
  'NaN',
  'Infinity',
  '',
  'x',
  true,
  [],
  {},
  [0, 255, 0],
  { row: -1 },
];
