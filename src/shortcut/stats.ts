/**
 * Per-class sufficient statistics of the OPS search, gathered in one pass over the images:
 * for every class, (position, channel): Σx and Σx² (raw uint8 units), and for the paper objective
 * the cross products Σx_c·x_c' per position. Memory is O(classes·H·W·C), whatever the image count.
 */
import { fail } from '../errors.js';
import type { Dataset, ImageStream, Shape } from '../data/dataset.js';
import { imageSize } from '../data/dataset.js';

export interface ClassStats extends Shape {
  classes: number;
  /** Images per class. */
  counts: Float64Array;
  /** [class][h·w·c] Σx, raw 0..255 units. */
  sum: Float64Array;
  /** [class][h·w·c] Σx². */
  sumSq: Float64Array;
  /** [class][h·w][pair] Σx_c·x_c' for channel pairs c<c' (0,1),(0,2),(1,2); null when not gathered. */
  cross: Float64Array | null;
}

/** Integer partial sums are flushed to doubles before they can overflow 32 bits (255²·66051 < 2³²). */
const FLUSH_EVERY = 65536;

export function channelPairs(channels: number): Array<[number, number]> {
  const pairs: Array<[number, number]> = [];
  for (let a = 0; a < channels; a++) for (let b = a + 1; b < channels; b++) pairs.push([a, b]);
  return pairs;
}

/** Streaming accumulator: `add` one image at a time, then `finish`. */
export class StatsAccumulator {
  private readonly size: number;
  private readonly positions: number;
  private readonly pairs: Array<[number, number]>;
  private readonly stats: ClassStats;
  // 32-bit partial sums, exact while fewer than FLUSH_EVERY images of a class are pending.
  private readonly pSum: Uint32Array;
  private readonly pSq: Uint32Array;
  private readonly pCross: Uint32Array | null;
  private readonly pending: Int32Array;

  constructor(shape: Shape, classes: number, withCross: boolean) {
    this.size = imageSize(shape);
    this.positions = shape.height * shape.width;
    this.pairs = channelPairs(shape.channels);
    const crossLen =
      withCross && this.pairs.length > 0 ? classes * this.positions * this.pairs.length : 0;
    this.stats = {
      ...shape,
      classes,
      counts: new Float64Array(classes),
      sum: new Float64Array(classes * this.size),
      sumSq: new Float64Array(classes * this.size),
      cross: withCross ? new Float64Array(crossLen) : null,
    };
    this.pSum = new Uint32Array(classes * this.size);
    this.pSq = new Uint32Array(classes * this.size);
    this.pCross = withCross ? new Uint32Array(crossLen) : null;
    this.pending = new Int32Array(classes);
  }

  add(image: Uint8Array, label: number): void {
    const size = this.size;
    const base = label * size;
    const pSum = this.pSum;
    const pSq = this.pSq;
    for (let j = 0; j < size; j++) {
      const v = image[j];
      pSum[base + j] += v;
      pSq[base + j] += v * v;
    }
    if (this.pCross) this.addCross(image, label);
    this.stats.counts[label]++;
    if (++this.pending[label] === FLUSH_EVERY) this.flush(label);
  }

  private addCross(image: Uint8Array, label: number): void {
    const pCross = this.pCross as Uint32Array;
    const c = this.stats.channels;
    const np = this.pairs.length;
    if (c === 3) {
      // The only multi-channel case: pairs (R,G), (R,B), (G,B), unrolled.
      let o = label * this.positions * 3;
      for (let p = 0, j = 0; p < this.positions; p++, j += 3, o += 3) {
        const r = image[j];
        const g = image[j + 1];
        const b = image[j + 2];
        pCross[o] += r * g;
        pCross[o + 1] += r * b;
        pCross[o + 2] += g * b;
      }
      return;
    }
    let o = label * this.positions * np;
    for (let p = 0; p < this.positions; p++) {
      for (const [a, b] of this.pairs) pCross[o++] += image[p * c + a] * image[p * c + b];
    }
  }

  private flush(label: number): void {
    const { sum, sumSq, cross } = this.stats;
    const lo = label * this.size;
    for (let j = lo; j < lo + this.size; j++) {
      sum[j] += this.pSum[j];
      sumSq[j] += this.pSq[j];
      this.pSum[j] = 0;
      this.pSq[j] = 0;
    }
    if (cross && this.pCross) {
      const span = this.positions * this.pairs.length;
      for (let j = label * span; j < (label + 1) * span; j++) {
        cross[j] += this.pCross[j];
        this.pCross[j] = 0;
      }
    }
    this.pending[label] = 0;
  }

  finish(): ClassStats {
    for (let k = 0; k < this.stats.classes; k++) if (this.pending[k] > 0) this.flush(k);
    return this.stats;
  }
}

/** Adds `part`'s sums into `total` (two passes over parts of the same data); returns `total`. */
export function addStats(total: ClassStats, part: ClassStats): ClassStats {
  const add = (a: Float64Array, b: Float64Array) => {
    for (let i = 0; i < a.length; i++) a[i] += b[i];
  };
  add(total.counts, part.counts);
  add(total.sum, part.sum);
  add(total.sumSq, part.sumSq);
  if (total.cross && part.cross) add(total.cross, part.cross);
  return total;
}

/** Statistics of an in-memory dataset. */
export function datasetStats(ds: Dataset, withCross: boolean): ClassStats {
  const acc = new StatsAccumulator(ds, ds.classNames.length, withCross);
  const size = imageSize(ds);
  const n = ds.labels.length;
  for (let i = 0; i < n; i++) acc.add(ds.images.subarray(i * size, (i + 1) * size), ds.labels[i]);
  return acc.finish();
}

/** Statistics of a stream, read once; `onImage` reports progress. */
export async function streamStats(
  stream: ImageStream,
  withCross: boolean,
  onImage?: (done: number) => void,
): Promise<ClassStats> {
  const acc = new StatsAccumulator(stream, stream.classNames.length, withCross);
  const size = imageSize(stream);
  let done = 0;
  for await (const rec of stream.records()) {
    if (rec.image.length !== size)
      fail(
        `${rec.ref}: ${rec.image.length} bytes, expected ${size} (${stream.height}×${stream.width}×${stream.channels})`,
      );
    acc.add(rec.image, rec.label);
    onImage?.(++done);
  }
  return acc.finish();
}
