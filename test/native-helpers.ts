/**
 * Helpers of the native-backend tests: whether the addon is there (in CI it must be: a missing
 * addon fails there, and is a skip with its reason elsewhere), and running the same computation on
 * two backends.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import {
  nativeCalls,
  nativeLoadError,
  resetNativeProfile,
  setNativeProfiling,
} from '../src/nn/backends/native/index.js';
import { on, random } from './helpers.js';

export { random };

/** False when the addon loads; otherwise why the native tests skip (never in CI). */
export function noNative(): false | string {
  const why = nativeLoadError();
  if (why === '') return false;
  if (process.env.CI === 'true')
    throw new Error(`CI must build the native backend, but ${why} (scripts/setup.sh installs it)`);
  return `native backend not built: ${why}`;
}

/** ‖actual − expected‖∞ / ‖expected‖∞. */
export function relativeError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length, 'lengths differ');
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    diff = Number.isNaN(d)
      ? Number.isNaN(actual[i]) && Number.isNaN(expected[i])
        ? diff
        : Infinity
      : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(expected[i]) || 0);
  }
  return diff / Math.max(scale, 1e-30);
}

/**
 * Runs `body` with the native profile on, then checks that each of `kernels` ran in the addon
 * (at least one call that reached a function of the addon, not only the cpu fallback); a name
 * written `!Name` must not have. Names `addon:fn` count calls of the addon's function `fn`.
 * Returns what `body` returns.
 */
export async function usingNative<T>(
  what: string,
  kernels: readonly string[],
  body: () => Promise<T> | T,
): Promise<T> {
  setNativeProfiling(true);
  resetNativeProfile();
  let out: T;
  let calls: Map<string, number>;
  try {
    out = await body();
  } finally {
    calls = nativeCalls();
    setNativeProfiling(false);
  }
  const ran = [...calls.keys()].sort().join(', ');
  for (const k of kernels) {
    if (k.startsWith('!'))
      assert.ok(!calls.has(k.slice(1)), `${what}: ${k.slice(1)} ran natively (ran: ${ran})`);
    else assert.ok((calls.get(k) ?? 0) > 0, `${what}: native ${k} did not run (ran: ${ran})`);
  }
  return out;
}

/**
 * `compute` on cpu and on native agree within `tolerance` (relative, per output), and on native
 * the addon ran each of `kernels` (see {@link usingNative}).
 */
export async function agree(
  what: string,
  compute: () => tf.Tensor[],
  tolerance: number,
  kernels: readonly string[],
): Promise<void> {
  assert.ok(kernels.length > 0, `${what}: name the native kernels under test`);
  const expected = await on('cpu', compute);
  const actual = await usingNative(what, kernels, () => on('native', compute));
  assert.equal(actual.length, expected.length, `${what}: number of outputs`);
  for (let i = 0; i < expected.length; i++) {
    const err = relativeError(actual[i], expected[i]);
    assert.ok(
      err <= tolerance,
      `${what}, output ${i}: relative error ${err.toExponential(2)} > ${tolerance}`,
    );
  }
}

/** A tensor of deterministic values in [-1, 1). */
export function rand(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(
    random(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
    shape,
  );
}
