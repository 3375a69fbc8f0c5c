/**
 * The OPS search: per class, score every (position, corner colour) candidate from the class's
 * sufficient statistics and keep the best. See README "How the search decides" for the rules.
 */
import { fail } from '../errors.js';
import type { Dataset, Shape } from '../data/dataset.js';
import { type ClassStats, channelPairs, datasetStats } from './stats.js';

export type Objective = 'official' | 'paper';
export const OBJECTIVES: readonly Objective[] = ['official', 'paper'];

export interface ChosenPixel {
  row: number;
  col: number;
  /** The target colour in uint8 channel values, each 0 or 255. */
  value: number[];
  /** The candidate's score under the objective (Infinity: zero spread, see README). */
  score: number;
  /** True when a later pixel of the same class sits at the same position and overwrites this one. */
  overwritten?: boolean;
}

export interface ClassPixels {
  label: number;
  name: string;
  /** Images of the class the search saw. */
  count: number;
  pixels: ChosenPixel[];
}

export interface SearchOptions {
  objective?: Objective;
  /** Pixels per class, 1 ≤ k ≤ H·W. */
  pixels?: number;
}

export interface SearchResult extends Shape {
  objective: Objective;
  pixelsPerClass: number;
  classes: ClassPixels[];
}

/** Candidate flat index p·2^C + v ↔ (row, col, colour). */
export function colourValue(v: number, channels: number): number[] {
  const out: number[] = [];
  for (let c = 0; c < channels; c++) out.push(((v >> (channels - 1 - c)) & 1) * 255);
  return out;
}

/** Scores of every candidate of one class, indexed p·2^C + v. Taken candidates are not zeroed here. */
export function candidateScores(
  stats: ClassStats,
  label: number,
  objective: Objective,
): Float64Array {
  const C = stats.channels;
  const P = stats.height * stats.width;
  const colours = 1 << C;
  const n = stats.counts[label];
  const size = P * C;
  const base = label * size;
  const out = new Float64Array(P * colours);
  const pairs = channelPairs(C);
  const s1 = new Float64Array(C);
  const s2 = new Float64Array(C);
  const x = new Float64Array(pairs.length);
  const N = n * C;
  for (let p = 0; p < P; p++) {
    for (let c = 0; c < C; c++) {
      s1[c] = stats.sum[base + p * C + c];
      s2[c] = stats.sumSq[base + p * C + c];
    }
    if (objective === 'paper' && stats.cross) {
      const xb = (label * P + p) * pairs.length;
      for (let q = 0; q < pairs.length; q++) x[q] = stats.cross[xb + q];
    }
    for (let v = 0; v < colours; v++) {
      // In raw units a = x or 255 − x per channel (target bit 0 or 1).
      let A = 0;
      let A2 = 0;
      for (let c = 0; c < C; c++) {
        const hi = (v >> (C - 1 - c)) & 1;
        A += hi ? 255 * n - s1[c] : s1[c];
        A2 += hi ? 65025 * n - 510 * s1[c] + s2[c] : s2[c];
      }
      let score: number;
      if (objective === 'official') {
        // mean/std over the n·C deviations = A / sqrt(N·ΣA² − A²): the /255 scale cancels.
        const d = N * A2 - A * A;
        score = d > 0 ? A / Math.sqrt(d) : A > 0 ? Infinity : 0;
      } else {
        // s_i = Σ_c a_ic; Σ s_i² = ΣA2 + 2 Σ_{c<c'} Σ a_ic a_ic'; score = mean/var in [0,1] units.
        let Q = A2;
        for (let q = 0; q < pairs.length; q++) {
          const [a, b] = pairs[q];
          const ha = (v >> (C - 1 - a)) & 1;
          const hb = (v >> (C - 1 - b)) & 1;
          let prod: number;
          if (!ha && !hb) prod = x[q];
          else if (ha && !hb) prod = 255 * s1[b] - x[q];
          else if (!ha && hb) prod = 255 * s1[a] - x[q];
          else prod = 65025 * n - 255 * s1[a] - 255 * s1[b] + x[q];
          Q += 2 * prod;
        }
        const d = n * Q - A * A;
        score = d > 0 ? (255 * n * A) / d : A > 0 ? Infinity : 0;
      }
      out[p * colours + v] = score;
    }
  }
  return out;
}

/** The k best candidate indices: score descending, ties to the lowest flat index. */
export function topCandidates(scores: Float64Array, k: number): number[] {
  if (k <= 16) {
    const picked: number[] = [];
    const used = new Uint8Array(scores.length);
    for (let t = 0; t < k; t++) {
      let best = -1;
      for (let i = 0; i < scores.length; i++) {
        if (!used[i] && (best < 0 || scores[i] > scores[best])) best = i;
      }
      used[best] = 1;
      picked.push(best);
    }
    return picked;
  }
  const idx = Array.from(scores.keys());
  idx.sort((a, b) => scores[b] - scores[a] || a - b || 0);
  return idx.slice(0, k);
}

function checkPixels(k: number, shape: Shape): void {
  const max = shape.height * shape.width;
  if (!Number.isInteger(k) || k < 1 || k > max)
    fail(`pixels per class must be an integer from 1 to H×W = ${max} (got ${k})`);
}

/** Runs the selection over classes in label order, excluding pairs taken by earlier classes. */
export function selectPixels(
  stats: ClassStats,
  classNames: string[],
  options: SearchOptions = {},
): SearchResult {
  const objective = options.objective ?? 'official';
  const k = options.pixels ?? 1;
  if (!OBJECTIVES.includes(objective))
    fail(`unknown objective '${objective}'; valid: ${OBJECTIVES.join(', ')}`);
  checkPixels(k, stats);
  if (objective === 'paper' && stats.channels > 1 && !stats.cross)
    fail('the paper objective needs cross-channel statistics (gather them with withCross)');
  for (let label = 0; label < stats.classes; label++) {
    const n = stats.counts[label];
    const name = classNames[label] ?? String(label);
    if (n === 0) fail(`class '${name}' (label ${label}) has no images`);
    if (n === 1)
      fail(
        `class '${name}' (label ${label}) has a single image; the search needs at least 2 per class`,
      );
  }
  const colours = 1 << stats.channels;
  const taken = new Uint8Array(stats.height * stats.width * colours);
  const classes: ClassPixels[] = [];
  for (let label = 0; label < stats.classes; label++) {
    const scores = candidateScores(stats, label, objective);
    for (let i = 0; i < taken.length; i++) if (taken[i]) scores[i] = 0;
    const picked = topCandidates(scores, k);
    const pixels: ChosenPixel[] = picked.map((i) => {
      const p = Math.floor(i / colours);
      return {
        row: Math.floor(p / stats.width),
        col: p % stats.width,
        value: colourValue(i % colours, stats.channels),
        score: scores[i],
      };
    });
    for (let a = 0; a < pixels.length; a++) {
      for (let b = a + 1; b < pixels.length; b++) {
        if (pixels[a].row === pixels[b].row && pixels[a].col === pixels[b].col)
          pixels[a].overwritten = true;
      }
    }
    for (const i of picked) taken[i] = 1;
    classes.push({
      label,
      name: classNames[label] ?? String(label),
      count: stats.counts[label],
      pixels,
    });
  }
  return {
    height: stats.height,
    width: stats.width,
    channels: stats.channels,
    objective,
    pixelsPerClass: k,
    classes,
  };
}

/** Search an in-memory dataset in one pass. */
export function searchDataset(ds: Dataset, options: SearchOptions = {}): SearchResult {
  const objective = options.objective ?? 'official';
  return selectPixels(datasetStats(ds, objective === 'paper'), ds.classNames, options);
}
