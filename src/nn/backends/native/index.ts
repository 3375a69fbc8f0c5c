/**
 * The native (oneDNN) backend: {@link startNative} registers it (once) and makes it current.
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadNative, nativeLoadError, type NativeAddon } from './addon.js';
import { NATIVE, registerNativeBackend, type KernelTime, type NativeBackend } from './backend.js';
import { BATCHNORM_KERNELS } from './batchnorm.js';
import { CONV_KERNELS } from './kernels-conv.js';
import { ELTWISE_KERNELS } from './kernels-eltwise.js';
import { LAYOUT_KERNELS } from './kernels-layout.js';

export { loadNative, nativeLoadError, NATIVE };

const KERNELS = [...CONV_KERNELS, ...ELTWISE_KERNELS, ...LAYOUT_KERNELS, ...BATCHNORM_KERNELS];

/** Kernels the native backend runs in the addon (every other one is the cpu backend's). */
export const NATIVE_KERNELS: readonly string[] = KERNELS.map((k) => k.kernelName);

/**
 * Registers the backend if the addon loads; returns the addon or null. Its tfjs patches are
 * applied by engine.ts (../patches.ts).
 */
export function registerNative(): NativeAddon | null {
  const addon = loadNative();
  if (addon === null) return null;
  registerNativeBackend(addon, KERNELS);
  return addon;
}

/**
 * Makes `native` the current backend; returns false when the addon is missing (see
 * {@link nativeLoadError}). ONEPIXEL_NATIVE_THREADS sets oneDNN's thread count (default: every
 * core OpenMP sees).
 */
export async function startNative(): Promise<boolean> {
  const addon = registerNative();
  if (addon === null) return false;
  const threads = Number(process.env.ONEPIXEL_NATIVE_THREADS);
  if (Number.isInteger(threads) && threads > 0) addon.threads(threads);
  if (!(await tf.setBackend(NATIVE))) return false;
  await tf.ready();
  return true;
}

/** Per-kernel times gathered with ONEPIXEL_NATIVE_PROFILE=1, slowest first. */
export function nativeProfile(): [string, KernelTime][] {
  if (tf.getBackend() !== NATIVE) return [];
  return [...(tf.backend() as NativeBackend).profile.entries()].sort((a, b) => b[1].ms - a[1].ms);
}

/** Float32 arrays kept for reuse by the native backend, in bytes. */
export function nativePoolBytes(): number {
  return tf.getBackend() === NATIVE ? (tf.backend() as NativeBackend).pool.freeBytes : 0;
}
