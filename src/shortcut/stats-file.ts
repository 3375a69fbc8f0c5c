/**
 * Exact statistics on disk, and their merge. Every sum of ClassStats is an integer (Σx, Σx², Σx·x'
 * of uint8 values) held in a float64, exact below 2^53; JSON writes such numbers digit for digit,
 * so a saved and re-read ClassStats equals the original bit for bit, and merged shards equal one
 * pass over all the images (sums are associative while exact). Merging refuses sums that reach
 * 2^53 rather than rounding them.
 */
import { fail } from '../errors.js';
import type { ClassStats } from './stats.js';

export interface StatsJson {
  height: number;
  width: number;
  channels: number;
  classes: number;
  counts: number[];
  sum: number[];
  sumSq: number[];
  cross: number[] | null;
}

export function statsToJson(s: ClassStats): StatsJson {
  return {
    height: s.height,
    width: s.width,
    channels: s.channels,
    classes: s.classes,
    counts: Array.from(s.counts),
    sum: Array.from(s.sum),
    sumSq: Array.from(s.sumSq),
    cross: s.cross ? Array.from(s.cross) : null,
  };
}

function exactArray(v: unknown, length: number, what: string): Float64Array {
  if (!Array.isArray(v) || v.length !== length)
    fail(`${what}: expected ${length} numbers, got ${Array.isArray(v) ? v.length : typeof v}`);
  const out = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    const x: unknown = v[i];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || x < 0)
      fail(`${what}[${i}]: ${String(x)} is not an exact non-negative integer sum`);
    out[i] = x;
  }
  return out;
}

/** Reads back statsToJson's output, checking every sum is an exact integer; `what` names the file. */
export function statsFromJson(j: StatsJson, what: string): ClassStats {
  const { height, width, channels, classes } = j;
  for (const [k, v] of Object.entries({ height, width, channels, classes }))
    if (!Number.isSafeInteger(v) || v < 1)
      fail(`${what}: ${k} ${String(v)} is not a positive size`);
  const size = height * width * channels;
  const pairs = (channels * (channels - 1)) / 2;
  return {
    height,
    width,
    channels,
    classes,
    counts: exactArray(j.counts, classes, `${what} counts`),
    sum: exactArray(j.sum, classes * size, `${what} sum`),
    sumSq: exactArray(j.sumSq, classes * size, `${what} sumSq`),
    cross:
      j.cross === null
        ? null
        : exactArray(j.cross, classes * height * width * pairs, `${what} cross`),
  };
}

function addExact(into: Float64Array, from: Float64Array, what: string): void {
  for (let i = 0; i < into.length; i++) {
    const s = into[i] + from[i];
    if (!Number.isSafeInteger(s))
      fail(`${what}[${i}]: the merged sum reaches 2^53 and would no longer be exact`);
    into[i] = s;
  }
}

/** The statistics of all the images of `parts` (each named for errors), summed exactly. */
export function mergeStats(parts: Array<{ stats: ClassStats; name: string }>): ClassStats {
  if (parts.length === 0) fail('no statistics to merge');
  const first = parts[0].stats;
  const out: ClassStats = {
    ...first,
    counts: new Float64Array(first.counts.length),
    sum: new Float64Array(first.sum.length),
    sumSq: new Float64Array(first.sumSq.length),
    cross: first.cross ? new Float64Array(first.cross.length) : null,
  };
  for (const { stats: s, name } of parts) {
    if (
      s.height !== first.height ||
      s.width !== first.width ||
      s.channels !== first.channels ||
      s.classes !== first.classes ||
      (s.cross === null) !== (first.cross === null)
    )
      fail(
        `${name}: statistics of ${s.classes} classes of ${s.height}×${s.width}×${s.channels}` +
          `${s.cross ? ' with' : ' without'} cross products, but ${parts[0].name} has ` +
          `${first.classes} classes of ${first.height}×${first.width}×${first.channels}` +
          `${first.cross ? ' with' : ' without'}; they do not come from one search`,
      );
    addExact(out.counts, s.counts, `${name} counts`);
    addExact(out.sum, s.sum, `${name} sum`);
    addExact(out.sumSq, s.sumSq, `${name} sumSq`);
    if (out.cross && s.cross) addExact(out.cross, s.cross, `${name} cross`);
  }
  return out;
}
