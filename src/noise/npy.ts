/** noise.npy: float32 N×H×W×C (`<f4`), readable by numpy.load. */
import { writeFile } from 'node:fs/promises';
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

/** Reads a float32 .npy and checks its shape against `shape` (the dataset's N, H, W, C). */
export async function readNoiseNpy(path: string, shape: number[]): Promise<Float32Array> {
  const npy = parseNpy(path, await readInput(path, 'noise file'));
  if (npy.descr !== '<f4') fail(`${path}: noise must be float32 ('<f4'), got '${npy.descr}'`);
  if (npy.shape.join() !== shape.join())
    fail(
      `${path}: noise shape [${npy.shape.join(', ')}] does not match the dataset's training ` +
        `split [${shape.join(', ')}] (N, H, W, C)`,
    );
  const n = shape.reduce((a, b) => a * b, 1);
  if (npy.data.length !== 4 * n)
    fail(`${path}: ${npy.data.length} data bytes, expected ${4 * n} for shape [${shape}]`);
  // A copy: the file's bytes need not be 4-byte aligned in memory.
  const out = new Float32Array(n);
  new Uint8Array(out.buffer).set(npy.data);
  return out;
}
