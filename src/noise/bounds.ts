/**
 * The L∞ budget ε and how noise meets uint8 images. Noise δ is float32 in pixel units of the
 * [0, 1] range (an image is x = byte / 255); the published image is the byte
 * clean + round(255·δ), with that integer step clamped to ±⌊255·ε⌋ and the result to [0, 255].
 * So every stored byte is within ε·255 of the clean byte (rounding never leaves the ball) and in
 * range, whatever ε is.
 */
import { fail } from '../errors.js';

/** The budget of the paper: 8/255. */
export const DEFAULT_EPSILON = 8 / 255;

/**
 * Parses `--epsilon`: a fraction of the pixel range (`0.0314`), a ratio (`8/255`), or an integer
 * of at least 1, read as that many 255ths (`8` means 8/255). The result must be in (0, 1).
 */
export function parseEpsilon(text: string, flag = '--epsilon'): number {
  const t = text.trim();
  let value: number;
  const ratio = /^([0-9]*\.?[0-9]+)\s*\/\s*([0-9]*\.?[0-9]+)$/.exec(t);
  if (ratio) value = Number(ratio[1]) / Number(ratio[2]);
  else if (/^[+-]?([0-9]*\.?[0-9]+)([eE][+-]?[0-9]+)?$/.test(t)) {
    value = Number(t);
    if (/^[0-9]+$/.test(t) && value >= 1) value /= 255;
  } else
    fail(
      `${flag} '${text}': expected a fraction of the pixel range (0.0314), 8/255, or 8 (= 8/255)`,
    );
  checkEpsilon(value, `${flag} ${text}`);
  return value;
}

/** Refuses a budget outside (0, 1): ε is a fraction of the pixel range. */
export function checkEpsilon(epsilon: number, what = 'epsilon'): void {
  if (!(epsilon > 0) || !(epsilon < 1))
    fail(
      `${what}: ε must be in (0, 1) as a fraction of the pixel range (8/255 ≈ 0.0314); ` +
        `got ${epsilon}${epsilon >= 1 ? ' (integers ≥ 1 are read as /255; 255 or more is the whole range)' : ''}`,
    );
}

/** The largest byte change the budget allows: ⌊255·ε⌋ (with a little slack for 8/255 itself). */
export function byteBudget(epsilon: number): number {
  return Math.floor(255 * epsilon + 1e-6);
}

/**
 * Writes clean + δ as bytes into `out` (same length as `clean`): the integer step round(255·δ)
 * clamped to ±⌊255·ε⌋, the result clamped to [0, 255].
 */
export function perturbBytes(
  clean: Uint8Array,
  noise: Float32Array,
  epsilon: number,
  out: Uint8Array,
): Uint8Array {
  const b = byteBudget(epsilon);
  for (let i = 0; i < clean.length; i++) {
    let d = Math.round(255 * noise[i]);
    d = d > b ? b : d < -b ? -b : d;
    const v = clean[i] + d;
    out[i] = v < 0 ? 0 : v > 255 ? 255 : v;
  }
  return out;
}

/**
 * Checks noise against clean bytes: |δ| ≤ ε (with float slack) everywhere. Clips, in place, the
 * noise so that clean/255 + δ stays in [0, 1]. Fails naming the first value out of the ball.
 */
export function checkNoise(
  clean: Uint8Array,
  noise: Float32Array,
  epsilon: number,
  where: string,
  pixelsPerImage: number,
): void {
  if (noise.length !== clean.length)
    fail(`${where}: ${noise.length} noise values for ${clean.length} pixel values`);
  const slack = 1e-6;
  for (let i = 0; i < noise.length; i++) {
    const d = noise[i];
    if (!(Math.abs(d) <= epsilon + slack))
      fail(
        `${where}: value ${d} at image ${Math.floor(i / pixelsPerImage)} (flat index ${i}) is ` +
          `outside ±ε = ±${epsilon}`,
      );
    const x = clean[i] / 255;
    if (x + d < 0) noise[i] = -x;
    else if (x + d > 1) noise[i] = 1 - x;
  }
}
