/**
 * The native (oneDNN) backend: {@link startNative} registers it (once) and makes it current.
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadNative, nativeLoadError, type NativeAddon } from './addon.js';
import {
  NATIVE,
  registerNativeBackend,
  setNativeProfiling,
  type KernelTime,
  type NativeBackend,
} from './backend.js';
import { BATCHNORM_KERNELS } from './batchnorm.js';
import { CONV_KERNELS } from './kernels-conv.js';
import { ELTWISE_KERNELS } from './kernels-eltwise.js';
import { GELU_KERNELS } from './gelu.js';
import { LAYOUT_KERNELS } from './kernels-layout.js';

export { loadNative, nativeLoadError, NATIVE, setNativeProfiling };

const KERNELS = [
  ...CONV_KERNELS,
  ...ELTWISE_KERNELS,
  ...LAYOUT_KERNELS,
  ...BATCHNORM_KERNELS,
  ...GELU_KERNELS,
];

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

/**
 * Per-kernel times gathered while profiling (ONEPIXEL_NATIVE_PROFILE=1 or
 * {@link setNativeProfiling}), slowest first.
 */
export function nativeProfile(): [string, KernelTime][] {
  if (tf.getBackend() !== NATIVE) return [];
  return [...(tf.backend() as NativeBackend).profile.entries()].sort((a, b) => b[1].ms - a[1].ms);
}

function nativeBackend(): NativeBackend | null {
  return tf.engine().registryFactory[NATIVE] === undefined
    ? null
    : (tf.findBackend(NATIVE) as NativeBackend | null);
}

/** Forgets the profile gathered so far (the native backend's, when it is registered). */
export function resetNativeProfile(): void {
  nativeBackend()?.profile.clear();
  nativeBackend()?.addonCalls.clear();
}

/**
 * While profiling, since the last {@link resetNativeProfile}: the calls of each kernel that ran a
 * function of the addon (kernels with none left out: the cpu kernels, and native kernels that
 * only fell back to them), and the calls of each addon function (`addon:sgd`, ...).
 */
export function nativeCalls(): Map<string, number> {
  const out = new Map<string, number>();
  const b = nativeBackend();
  for (const [name, t] of b?.profile ?? []) if (t.addonCalls > 0) out.set(name, t.addonCalls);
  for (const [name, n] of b?.addonCalls ?? []) out.set(`addon:${name}`, n);
  return out;
}

/** Float32 arrays kept for reuse by the native backend, in bytes. */
export function nativePoolBytes(): number {
  return tf.getBackend() === NATIVE ? (tf.backend() as NativeBackend).pool.freeBytes : 0;
}
