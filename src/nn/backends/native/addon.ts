/**
 * Loads the native addon (native/build/Release/onepixel_native.node, built by
 * scripts/build-native.mjs) lazily, once, and says why it is not there when it is not.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The addon's functions (native/src/addon.cc). Arrays are used in place, never copied. */
export interface NativeAddon {
  conv2d(
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | null,
    y: Float32Array,
    p: Int32Array,
    relu: boolean,
  ): void;
  conv2dBackpropInput(dy: Float32Array, w: Float32Array, dx: Float32Array, p: Int32Array): void;
  conv2dBackpropFilter(x: Float32Array, dy: Float32Array, dw: Float32Array, p: Int32Array): void;
  /** The implementation oneDNN runs (0 forward, 1 input gradient, 2 filter gradient), '… bf16' or '… f32'. */
  convImpl(p: Int32Array, which: 0 | 1 | 2): string;
  matMul(
    a: Float32Array,
    b: Float32Array,
    bias: Float32Array | null,
    c: Float32Array,
    p: Int32Array,
    relu: boolean,
  ): void;
  /** The implementation oneDNN runs for the product p in the current precision ('… bf16'). */
  matMulImpl(p: Int32Array): string;
  /**
   * Sets the precision of every bf16-capable kernel (convolutions, matrix products) when given;
   * returns the one in use. 'bf16' throws where the CPU has no native bf16.
   */
  precision(p?: 'fp32' | 'bf16'): 'fp32' | 'bf16';
  pool(x: Float32Array, y: Float32Array, p: Int32Array): void;
  /** GELU (erf form) of x into out, or with dy its gradient dy·gelu'(x) (native/src/gelu.cc). */
  gelu(x: Float32Array, dy: Float32Array | null, out: Float32Array): void;
  poolGrad(dy: Float32Array, x: Float32Array, dx: Float32Array, p: Int32Array): void;
  batchNorm(
    x: Float32Array,
    scale: Float32Array,
    shift: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    y: Float32Array,
    rows: number,
    channels: number,
    epsilon: number,
    training: boolean,
    relu: boolean,
  ): void;
  batchNormGrad(
    x: Float32Array,
    dy: Float32Array,
    y: Float32Array | null,
    scale: Float32Array,
    mean: Float32Array,
    variance: Float32Array,
    dx: Float32Array,
    dscale: Float32Array,
    dshift: Float32Array,
    rows: number,
    channels: number,
    epsilon: number,
  ): void;
  binary(
    op: number,
    a: Float32Array,
    aShape: Int32Array,
    b: Float32Array,
    bShape: Int32Array,
    out: Float32Array,
    outShape: Int32Array,
  ): void;
  unary(op: number, x: Float32Array, y: Float32Array, alpha: number): void;
  softmax(x: Float32Array, y: Float32Array, rows: number, cols: number, log: boolean): void;
  addN(xs: Float32Array[], y: Float32Array): void;
  reduce(
    op: number,
    x: Float32Array,
    y: Float32Array,
    outer: number,
    mid: number,
    inner: number,
  ): void;
  sgd(
    w: Float32Array,
    g: Float32Array,
    buf: Float32Array,
    lr: number,
    momentum: number,
    weightDecay: number,
    dampening: number,
    nesterov: boolean,
    first: boolean,
  ): void;
  pad(x: Float32Array, xShape: Int32Array, y: Float32Array, pads: Int32Array, value: number): void;
  slice(
    x: Float32Array,
    xShape: Int32Array,
    y: Float32Array,
    begin: Int32Array,
    size: Int32Array,
  ): void;
  reluGrad(dy: Float32Array, x: Float32Array, dx: Float32Array): void;
  /** Sets the thread count when given; returns the count in use. */
  threads(n?: number): number;
  info(): {
    onednn: string;
    cpuRuntime: string;
    isa: number;
    /** oneDNN's name of the ISA its kernels use here (as ONEDNN_VERBOSE prints it). */
    isaName: string;
    /** Whether oneDNN runs bf16 natively here (avx512_core_bf16 or AMX). */
    bf16: boolean;
    precision: 'fp32' | 'bf16';
    threads: number;
    cachedPrimitives: number;
  };
}

const here = path.dirname(fileURLToPath(import.meta.url));
/** The package root: this file is dist/src/nn/backends/native/addon.js there. */
export const PACKAGE_ROOT = path.resolve(here, '..', '..', '..', '..', '..');
/** The addon (ONEPIXEL_NATIVE_ADDON overrides the path: tests use it to simulate a missing one). */
export const ADDON_PATH =
  process.env.ONEPIXEL_NATIVE_ADDON ??
  path.join(PACKAGE_ROOT, 'native', 'build', 'Release', 'onepixel_native.node');

let loaded: NativeAddon | null | undefined;
let loadError = '';

/**
 * The addon, or null (see {@link nativeLoadError}). OpenMP's idle threads sleep instead of
 * spinning (unless OMP_WAIT_POLICY says otherwise), so they do not take a core from JavaScript
 * between kernels.
 */
export function loadNative(): NativeAddon | null {
  if (loaded !== undefined) return loaded;
  if (!existsSync(ADDON_PATH)) {
    loaded = null;
    loadError = `the addon is not built (${ADDON_PATH} is missing)`;
    return loaded;
  }
  process.env.OMP_WAIT_POLICY ??= 'PASSIVE';
  try {
    loaded = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  } catch (e) {
    loaded = null;
    loadError = `the addon does not load: ${(e as Error).message.split('\n')[0]}`;
  }
  return loaded;
}

/** Why {@link loadNative} returned null ('' when it did not). */
export function nativeLoadError(): string {
  loadNative();
  return loadError;
}

const LIBDNNL = [
  '/usr/lib/x86_64-linux-gnu/libdnnl.so.2',
  '/usr/lib/aarch64-linux-gnu/libdnnl.so.2',
];

/**
 * What the addon's build or load lacks on this machine (Debian package names with what each
 * provides), from scripts/native-prereqs.mjs, the install script's own check.
 */
export async function nativeMissing(): Promise<string[]> {
  const prereqs = (await import(
    pathToFileURL(path.join(PACKAGE_ROOT, 'scripts', 'native-prereqs.mjs')).href
  )) as { missingForNative(): string[] };
  const missing = prereqs.missingForNative();
  if (!LIBDNNL.some((f) => existsSync(f))) missing.push('libdnnl2 (the oneDNN library)');
  return missing;
}
