/**
 * Random noise, the classic control: δ uniform in [−ε, ε], independently per pixel, channel and
 * image, seeded, then clipped so that the noisy image stays in [0, 1].
 */
import { Rng } from '../nn/rng.js';
import { checkEpsilon } from './bounds.js';

function fill(
  clean: Uint8Array,
  noise: Float32Array,
  epsilon: number,
  rng: Rng,
  from: number,
  to: number,
) {
  for (let i = from; i < to; i++) {
    const x = clean[i] / 255;
    const d = (2 * rng.uniform() - 1) * epsilon;
    noise[i] = Math.min(Math.max(x + d, 0), 1) - x;
  }
}

/** Noise for `clean` (uint8 bytes, image after image): the same length, float32. */
export function randomNoise(clean: Uint8Array, epsilon: number, seed: number): Float32Array {
  checkEpsilon(epsilon);
  const noise = new Float32Array(clean.length);
  fill(clean, noise, epsilon, new Rng(seed), 0, clean.length);
  return noise;
}

/**
 * The same noise as `randomNoise`, made in chunks with `pause` awaited between them, so a long
 * generation lets a signal's handler run (and `pause` may throw to stop it).
 */
export async function randomNoiseChunked(
  clean: Uint8Array,
  epsilon: number,
  seed: number,
  pause: () => Promise<void>,
): Promise<Float32Array> {
  checkEpsilon(epsilon);
  const noise = new Float32Array(clean.length);
  const rng = new Rng(seed);
  const chunk = 1 << 20;
  for (let from = 0; from < clean.length; from += chunk) {
    fill(clean, noise, epsilon, rng, from, Math.min(from + chunk, clean.length));
    await pause();
  }
  return noise;
}
