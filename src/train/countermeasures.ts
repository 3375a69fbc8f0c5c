/**
 * Countermeasures a trainer applies once to a (protected) training set before training, to test
 * how much protection survives them: the data owner's view of "what breaks it". Each is one
 * function of src/transforms/ (where its exact definition and its reference are documented):
 *
 * - `grayscale`: PIL's `convert('L')` luma copied to every channel (transforms/pixels.ts).
 * - `jpeg[:Q]`: a JPEG round trip at quality Q, 1–100, default 10, equal to PIL's (transforms/jpeg.ts).
 * - `bdr[:B]`: keep the B most significant bits of each value, 1–8, default 2 (PIL posterize).
 * - `median:K`, `mean:K`: per-channel K×K median / box filter, K odd 3–15, border replicated
 *   (OpenCV `medianBlur`, `blur`; transforms/filters.ts).
 * - `gaussian:S[:K]`: Gaussian blur with σ = S (0 < S ≤ 10), K×K (odd 1–31; default OpenCV's
 *   round(6σ+1)|1), OpenCV's 8-bit fixed point, border replicated.
 * - `orthogonal-projection`: Sandoval-Segura et al.'s projection of every image off the weights
 *   of a linear classifier fitted to the training set (transforms/projection.ts).
 *
 * Only the training split is changed; accuracy is still measured on the clean test split.
 * Every name is parsed here, and a malformed one is refused naming the flag.
 */
import { fail } from '../errors.js';
import { type Dataset, imageSize } from '../data/dataset.js';
import {
  boxFilter,
  gaussianFilter,
  gaussianKernelSize,
  medianFilter,
} from '../transforms/filters.js';
import { breathe, Stopped } from '../transforms/cooperate.js';
import { jpegRoundTrip } from '../transforms/jpeg.js';
import { bitDepth, grayscale } from '../transforms/pixels.js';
import { fitLinear, orthonormalRows, projectOut } from '../transforms/projection.js';

export type Countermeasure =
  | { kind: 'none' }
  | { kind: 'grayscale' }
  | { kind: 'jpeg'; quality: number }
  | { kind: 'bdr'; bits: number }
  | { kind: 'median'; size: number }
  | { kind: 'mean'; size: number }
  | { kind: 'gaussian'; sigma: number; size: number }
  | { kind: 'orthogonal-projection' };

export const COUNTERMEASURES = [
  'none',
  'grayscale',
  'jpeg[:quality]',
  'bdr[:bits]',
  'median:K',
  'mean:K',
  'gaussian:sigma[:K]',
  'orthogonal-projection',
] as const;

/**
 * Countermeasures that act at every epoch rather than once on the images: training strategies
 * (src/train/augment.ts). In an audit's `--countermeasures` such a name adds the row of that
 * strategy, which replaces the standard strategy's augmentation (UEraser-Lite is flip and crop,
 * then its own per-sample transforms), so it pairs with `--strategies standard` only.
 */
export const TRAINING_COUNTERMEASURES = ['ueraser'] as const;

export function isTrainingCountermeasure(name: string): boolean {
  return (TRAINING_COUNTERMEASURES as readonly string[]).includes(name);
}

/** An integer lo–hi (odd when asked) from `text`, or a one-line error naming the flag. */
function intIn(text: string, lo: number, hi: number, what: string, flag: string, odd = false) {
  const v = Number(text);
  if (!/^\d+$/.test(text) || v < lo || v > hi || (odd && v % 2 === 0))
    fail(`${flag}: ${what} must be ${odd ? 'an odd' : 'an'} integer ${lo}–${hi} (got '${text}')`);
  return v;
}

/**
 * Parses one countermeasure name: `none`, `grayscale`, `jpeg[:Q]`, `bdr[:B]`, `median:K`,
 * `mean:K`, `gaussian:S[:K]`, `orthogonal-projection`; errors name the flag.
 */
export function parseCountermeasure(text: string, flag = '--countermeasure'): Countermeasure {
  const t = text.trim().toLowerCase();
  const [name, ...args] = t.split(':');
  const nargs = (min: number, max: number) => {
    if (args.length < min || args.length > max)
      fail(
        `${flag}: '${text}' takes ${min === max ? min : `${min}–${max}`} parameter(s) after ` +
          `'${name}'; valid: ${COUNTERMEASURES.join(', ')}`,
      );
  };
  switch (name) {
    case 'none':
    case 'orthogonal-projection':
      nargs(0, 0);
      return { kind: name };
    case 'grayscale':
    case 'greyscale':
      nargs(0, 0);
      return { kind: 'grayscale' };
    case 'jpeg':
      nargs(0, 1);
      return { kind: 'jpeg', quality: args[0] ? intIn(args[0], 1, 100, 'JPEG quality', flag) : 10 };
    case 'bdr':
      nargs(0, 1);
      return { kind: 'bdr', bits: args[0] ? intIn(args[0], 1, 8, 'bdr bits', flag) : 2 };
    case 'median':
    case 'mean':
      nargs(1, 1);
      return { kind: name, size: intIn(args[0], 3, 15, `${name} window`, flag, true) };
    case 'gaussian': {
      nargs(1, 2);
      const sigma = Number(args[0]);
      if (!/^\d*\.?\d+(e-?\d+)?$/.test(args[0]) || !(sigma > 0 && sigma <= 10))
        fail(`${flag}: gaussian σ must be a number in (0, 10] (got '${args[0]}')`);
      const size = args[1]
        ? intIn(args[1], 1, 31, 'gaussian kernel size', flag, true)
        : gaussianKernelSize(sigma);
      return { kind: 'gaussian', sigma, size };
    }
  }
  return fail(`unknown countermeasure '${text}' (${flag}); valid: ${COUNTERMEASURES.join(', ')}`);
}

/** The countermeasure's name as results and tables show it (parses back to the same). */
export function countermeasureName(c: Countermeasure): string {
  switch (c.kind) {
    case 'jpeg':
      return `jpeg:${c.quality}`;
    case 'bdr':
      return `bdr:${c.bits}`;
    case 'median':
    case 'mean':
      return `${c.kind}:${c.size}`;
    case 'gaussian':
      return c.size === gaussianKernelSize(c.sigma)
        ? `gaussian:${c.sigma}`
        : `gaussian:${c.sigma}:${c.size}`;
    default:
      return c.kind;
  }
}

/** Runs a per-image transform over every image of `ds` into a new dataset. */
async function perImage(
  ds: Dataset,
  f: (src: Uint8Array, dst: Uint8Array) => void,
  onImage?: (done: number, total: number) => void,
  shouldStop?: () => boolean,
): Promise<Dataset> {
  const size = imageSize(ds);
  const n = ds.labels.length;
  const out = new Uint8Array(n * size);
  for (let i = 0; i < n; i++) {
    if (i % 500 === 499) await breathe(shouldStop);
    f(ds.images.subarray(i * size, (i + 1) * size), out.subarray(i * size, (i + 1) * size));
    if (onImage && (i % 1000 === 999 || i === n - 1)) onImage(i + 1, n);
  }
  return { ...ds, images: out };
}

/**
 * Applies `c` to a copy of the training set (the input is not modified). The work gives the
 * event loop a turn every few hundred images (a signal's handler runs at once) and asks
 * `shouldStop`: when it says yes, the result is null.
 */
export async function applyCountermeasure(
  ds: Dataset,
  c: Countermeasure,
  onImage?: (done: number, total: number) => void,
  shouldStop?: () => boolean,
): Promise<Dataset | null> {
  try {
    return await transformed(ds, c, onImage, shouldStop);
  } catch (e) {
    if (e instanceof Stopped) return null;
    throw e;
  }
}

async function transformed(
  ds: Dataset,
  c: Countermeasure,
  onImage?: (done: number, total: number) => void,
  shouldStop?: () => boolean,
): Promise<Dataset> {
  switch (c.kind) {
    case 'none':
      return ds;
    case 'grayscale':
      return perImage(ds, (s, d) => grayscale(s, d, ds.channels), onImage, shouldStop);
    case 'bdr':
      return perImage(ds, (s, d) => bitDepth(s, d, c.bits), onImage, shouldStop);
    case 'median':
      return perImage(ds, (s, d) => medianFilter(s, d, ds, c.size), onImage, shouldStop);
    case 'mean':
      return perImage(ds, (s, d) => boxFilter(s, d, ds, c.size), onImage, shouldStop);
    case 'gaussian':
      return perImage(ds, (s, d) => gaussianFilter(s, d, ds, c.sigma, c.size), onImage, shouldStop);
    case 'jpeg': {
      const out = new Uint8Array(ds.images.length);
      const n = ds.labels.length;
      await jpegRoundTrip(ds.images, out, ds, n, c.quality, onImage, shouldStop);
      return { ...ds, images: out };
    }
    case 'orthogonal-projection': {
      const n = ds.labels.length;
      const w = await fitLinear(ds.images, ds.labels, ds, ds.classNames.length, { shouldStop });
      const out = new Uint8Array(ds.images.length);
      await projectOut(ds.images, out, orthonormalRows(w, ds.classNames.length), n, shouldStop);
      onImage?.(n, n);
      return { ...ds, images: out };
    }
  }
}
