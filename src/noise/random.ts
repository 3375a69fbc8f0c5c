/**
 * Random noise, the classic control: δ uniform in [−ε, ε], independently per pixel, channel and
 * image, seeded, then clipped so that the noisy image stays in [0, 1].
 */
import { Rng } from '../nn/rng.js';
import { checkEpsilon } from './bounds.js';

/** Noise for `clean` (uint8 bytes, image after image): the same length, float32. */
export function randomNoise(clean: Uint8Array, epsilon: number, seed: number): Float32Array {
  checkEpsilon(epsilon);
  const rng = new Rng(seed);
  const noise = new Float32Array(clean.length);
  for (let i = 0; i < clean.length; i++) {
    const x = clean[i] / 255;
    const d = (2 * rng.uniform() - 1) * epsilon;
    noise[i] = Math.min(Math.max(x + d, 0), 1) - x;
  }
  return noise;
}
