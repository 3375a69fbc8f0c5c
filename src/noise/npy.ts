/** noise.npy: float32 N×H×W×C (`<f4`), readable by numpy.load. */
import { stat, writeFile } from 'node:fs/promises';
import { fail } from '../errors.js';
import { readInput } from '../data/files.js';
import { npyHeader, parseNpy } from '../data/npy.js';

export const NOISE_FILE = 'noise.npy';

export async function writeNoiseNpy(path: string, noise: Float32Array, shape: number[]) {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== noise.length)
    throw new RangeError(`noise: ${noise.length} values for shape [${shape}]`);
  const body = Buffer.from(noise.buffer, noise.byteOffset, noise.byteLength);
  await writeFile(path, Buffer.concat([npyHeader('<f4', shape), body]));
}

/** Room for an .npy header: NumPy pads to 64 bytes; a few KB is already generous. */
const MAX_HEADER_BYTES = 1 << 20;

/**
 * Reads a float32 .npy and checks its shape against `shape` (the dataset's N, H, W, C). The file's
 * size is checked before it is read: a noise file cannot be much larger than its data.
 */
export async function readNoiseNpy(path: string, shape: number[]): Promise<Float32Array> {
  const n = shape.reduce((a, b) => a * b, 1);
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    fail(`${path}: not found (noise file)`);
  }
  if (size > 4 * n + MAX_HEADER_BYTES)
    fail(
      `${path}: ${size} bytes, more than a float32 noise of shape [${shape.join(', ')}] ` +
        `(the dataset's training split, N×H×W×C) can take`,
    );
  const npy = parseNpy(path, await readInput(path, 'noise file'));
  if (npy.descr !== '<f4') fail(`${path}: noise must be float32 ('<f4'), got '${npy.descr}'`);
  if (npy.shape.join() !== shape.join())
    fail(
      `${path}: noise shape [${npy.shape.join(', ')}] does not match the dataset's training ` +
        `split [${shape.join(', ')}] (N, H, W, C)`,
    );
  // parseNpy checked that the data is exactly 4 bytes a value of this shape.
  // A copy: the file's bytes need not be 4-byte aligned in memory.
  const out = new Float32Array(n);
  new Uint8Array(out.buffer).set(npy.data);
  return out;
}
