/** Per-pixel transforms of uint8 H×W×C images. */
import { luma, posterize } from './pil.js';

/**
 * Grayscale kept in every channel: each pixel becomes its ITU-R 601 luma exactly as PIL's
 * `convert('L')` computes it, (19595 R + 38470 G + 7471 B + 2^15) >> 16, copied to the three
 * channels so a model's input shape is unchanged. One-channel images are copied as they are.
 */
export function grayscale(src: Uint8Array, dst: Uint8Array, channels: number): void {
  if (channels !== 3) {
    dst.set(src);
    return;
  }
  for (let i = 0; i < src.length; i += 3) dst[i] = dst[i + 1] = dst[i + 2] = luma(src, i, 3);
}

/**
 * Bit-depth reduction: keep the `bits` most significant bits of every channel value
 * (v & ~(2^(8−bits) − 1)), PIL's `ImageOps.posterize(img, bits)`.
 */
export function bitDepth(src: Uint8Array, dst: Uint8Array, bits: number): void {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8)
    throw new RangeError(`bitDepth: ${bits} bits must be an integer 1–8`);
  dst.set(src);
  posterize(dst, bits);
}
