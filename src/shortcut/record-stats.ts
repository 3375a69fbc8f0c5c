/**
 * The OPS search's statistics (./stats.ts: per class, Σx and Σx² per position and channel, and
 * the channel cross products for the paper objective) gathered straight from channel-planar record
 * bytes, CIFAR's layout: [label bytes][plane of channel 0][plane 1][plane 2]. No image is turned
 * into pixel order; the sums are kept in plane order and put in H×W×C order once, at the end, so
 * the result is the same ClassStats, to the bit, as the pixel-order pass gives.
 */
import { Worker } from 'node:worker_threads';
import type { Shape } from '../data/dataset.js';
import { type SimdSums, simdSums } from './simd-sums.js';
import { addStats, channelPairs, type ClassStats } from './stats.js';

/** Where a record's label and planes are. */
export interface RecordLayout extends Shape {
  recordBytes: number;
  /** Offset of the (fine) label byte. */
  labelAt: number;
  /** Offset of the first plane. */
  pixelsAt: number;
}

/** Bytes of the SIMD kernel's memory that records are copied into, before its sums. */
const SIMD_ROWS = 1 << 20;

/** Integer partial sums flush to doubles before they could overflow 32 bits (255²·65536 < 2³²). */
const FLUSH_EVERY = 65536;

export class RecordStatsAccumulator {
  private readonly plane: number;
  private readonly size: number;
  private readonly counts: Float64Array;
  private readonly sum: Float64Array;
  private readonly sumSq: Float64Array;
  private readonly cross: Float64Array | null;
  private readonly pSum: Uint32Array;
  private readonly pSq: Uint32Array;
  private readonly pCross: Uint32Array | null;
  private readonly pending: Int32Array;
  /** The SIMD kernel (./simd-sums.ts), whose memory holds pSum and pSq; null: JavaScript. */
  private readonly simd: SimdSums | null;

  constructor(
    private readonly layout: RecordLayout,
    private readonly classes: number,
    withCross: boolean,
  ) {
    this.plane = layout.height * layout.width;
    this.size = this.plane * layout.channels;
    const pairs = channelPairs(layout.channels).length;
    const crossLen = withCross ? classes * this.plane * pairs : 0;
    this.counts = new Float64Array(classes);
    this.sum = new Float64Array(classes * this.size);
    this.sumSq = new Float64Array(classes * this.size);
    this.cross = withCross ? new Float64Array(crossLen) : null;
    const partial = classes * this.size * 4;
    this.simd = this.size % 16 === 0 ? simdSums(SIMD_ROWS + 2 * partial) : null;
    const mem = this.simd?.bytes.buffer;
    this.pSum = mem
      ? new Uint32Array(mem, SIMD_ROWS, classes * this.size)
      : new Uint32Array(classes * this.size);
    this.pSq = mem
      ? new Uint32Array(mem, SIMD_ROWS + partial, classes * this.size)
      : new Uint32Array(classes * this.size);
    this.pCross = withCross ? new Uint32Array(crossLen) : null;
    this.pending = new Int32Array(classes);
  }

  /** Whether the sums run on the SIMD kernel (rows a multiple of 16 bytes, SIMD available). */
  get usesSimd(): boolean {
    return this.simd !== null;
  }

  /** Adds every record of `bytes` (whole records; labels already checked). */
  addRecords(bytes: Uint8Array): void {
    const R = this.layout.recordBytes;
    const whole = bytes.length - (bytes.length % R);
    if (!this.simd) return this.addRecordsJs(bytes.subarray(0, whole));
    // Through the kernel's memory, as many records at a time as its row area holds.
    const per = Math.max(1, Math.floor(SIMD_ROWS / R)) * R;
    for (let at = 0; at < whole; at += per)
      this.addRecordsSimd(bytes.subarray(at, Math.min(whole, at + per)));
  }

  private addRecordsSimd(bytes: Uint8Array): void {
    const simd = this.simd as SimdSums;
    const { recordBytes, labelAt, pixelsAt } = this.layout;
    const size = this.size;
    simd.bytes.set(bytes, 0);
    const sums = this.pSum.byteOffset;
    const squares = this.pSq.byteOffset;
    for (let off = 0; off < bytes.length; off += recordBytes) {
      const label = bytes[off + labelAt];
      simd.acc(off + pixelsAt, sums + 4 * label * size, squares + 4 * label * size, size);
      this.counted(bytes.subarray(off + pixelsAt, off + pixelsAt + size), label);
    }
  }

  private addRecordsJs(bytes: Uint8Array): void {
    const { recordBytes, labelAt, pixelsAt } = this.layout;
    const size = this.size;
    for (let off = 0; off < bytes.length; off += recordBytes) {
      const label = bytes[off + labelAt];
      const base = label * size;
      const x = bytes.subarray(off + pixelsAt, off + pixelsAt + size);
      const s = this.pSum.subarray(base, base + size);
      const q = this.pSq.subarray(base, base + size);
      for (let j = 0; j < size; j++) {
        const v = x[j];
        s[j] += v;
        q[j] += v * v;
      }
      this.counted(x, label);
    }
  }

  /** The cross products (when gathered), the count, and a flush before 32 bits could overflow. */
  private counted(x: Uint8Array, label: number): void {
    if (this.pCross) this.addCross(x, label);
    this.counts[label]++;
    if (++this.pending[label] === FLUSH_EVERY) this.flush(label);
  }

  private addCross(x: Uint8Array, label: number): void {
    const P = this.plane;
    const pCross = this.pCross as Uint32Array;
    const pairs = channelPairs(this.layout.channels);
    let o = label * P * pairs.length;
    for (let p = 0; p < P; p++)
      for (const [a, b] of pairs) pCross[o++] += x[a * P + p] * x[b * P + p];
  }

  private flush(label: number): void {
    const lo = label * this.size;
    for (let j = lo; j < lo + this.size; j++) {
      this.sum[j] += this.pSum[j];
      this.sumSq[j] += this.pSq[j];
      this.pSum[j] = 0;
      this.pSq[j] = 0;
    }
    if (this.cross && this.pCross) {
      const span = this.cross.length / this.classes;
      for (let j = label * span; j < (label + 1) * span; j++) {
        this.cross[j] += this.pCross[j];
        this.pCross[j] = 0;
      }
    }
    this.pending[label] = 0;
  }

  /** The statistics in H×W×C order (cross products are per position already). */
  finish(): ClassStats {
    for (let k = 0; k < this.classes; k++) if (this.pending[k] > 0) this.flush(k);
    const { height, width, channels } = this.layout;
    const P = this.plane;
    const hwc = (planar: Float64Array) => {
      const out = new Float64Array(planar.length);
      for (let k = 0; k < this.classes; k++) {
        const b = k * this.size;
        for (let c = 0; c < channels; c++)
          for (let p = 0; p < P; p++) out[b + p * channels + c] = planar[b + c * P + p];
      }
      return out;
    };
    return {
      height,
      width,
      channels,
      classes: this.classes,
      counts: this.counts,
      sum: hwc(this.sum),
      sumSq: hwc(this.sumSq),
      cross: this.cross,
    };
  }
}

/**
 * Statistics of record chunks gathered beside the thread that reads them. With two or more
 * threads, a worker sums every other chunk while the caller hashes and sums the others (hashing
 * costs the caller about a third of what summing does): the chunks are read into a few shared
 * buffers (`buffer()`), and a buffer is handed out again once it has been summed. With one
 * thread, every chunk is summed in the caller's thread.
 */
export class RecordStatsPool {
  private readonly worker: Worker | null = null;
  private readonly local: RecordStatsAccumulator;
  private turn = 0;
  private readonly result: Promise<ClassStats> | null = null;
  private readonly slots: Uint8Array[];
  private readonly free: number[];
  private readonly waiting: Array<(slot: number) => void> = [];

  constructor(
    layout: RecordLayout,
    classes: number,
    withCross: boolean,
    threads: number,
    chunkBytes: number,
  ) {
    this.local = new RecordStatsAccumulator(layout, classes, withCross);
    if (threads < 2) {
      this.slots = [new Uint8Array(chunkBytes)];
      this.free = [0];
      return;
    }
    this.slots = [0, 1, 2].map(() => new Uint8Array(new SharedArrayBuffer(chunkBytes)));
    this.free = [0, 1, 2];
    const worker = new Worker(new URL('./record-stats-worker.js', import.meta.url), {
      workerData: { layout, classes, withCross, slots: this.slots },
    });
    this.worker = worker;
    this.result = new Promise<ClassStats>((resolve, reject) => {
      worker.on('message', (m: { done?: number; stats?: ClassStats }) => {
        if (m.done !== undefined) this.release(m.done);
        if (m.stats) {
          resolve(m.stats);
          void worker.terminate();
        }
      });
      worker.once('error', reject);
    });
    // Not awaited until finish(): a worker error then is the one reported.
    this.result.catch(() => undefined);
  }

  private release(slot: number): void {
    const next = this.waiting.shift();
    if (next) next(slot);
    else this.free.push(slot);
  }

  /** A free buffer of `chunkBytes` to read the next chunk into. */
  buffer(): Uint8Array | Promise<Uint8Array> {
    if (!this.worker) return this.slots[0];
    const slot = this.free.shift();
    if (slot !== undefined) return this.slots[slot];
    return new Promise((resolve) => this.waiting.push((s) => resolve(this.slots[s])));
  }

  /** Sums a chunk read into a buffer from `buffer()`, or (`sum` false) only gives it back. */
  add(chunk: Uint8Array, sum = true): void {
    const worker = this.worker;
    if (!worker) {
      if (sum) this.local.addRecords(chunk);
      return;
    }
    const slot = this.slots.findIndex((s) => s.buffer === chunk.buffer);
    if (slot < 0) throw new Error('RecordStatsPool.add: a chunk not read into one of its buffers');
    if (sum && this.turn++ % 2 === 1) {
      worker.postMessage({ slot, length: chunk.length });
      return;
    }
    if (sum) this.local.addRecords(chunk);
    this.release(slot);
  }

  async finish(): Promise<ClassStats> {
    const mine = this.local.finish();
    if (!this.worker) return mine;
    this.worker.postMessage({ finish: true });
    return addStats(mine, await (this.result as Promise<ClassStats>));
  }

  /** Stops the worker (after a failed read). */
  async close(): Promise<void> {
    await this.worker?.terminate();
  }
}
