/**
 * Backend choice for training: which tfjs engine runs the tensors.
 *
 * - `wasm`: tfjs' WebAssembly backend (XNNPACK, SIMD, one thread in Node), loaded from the local
 *   `@tensorflow/tfjs-backend-wasm/dist/` folder (never a CDN), with the training kernels it lacks
 *   registered by ./backends/wasm/kernels.ts.
 * - `cpu`: tfjs' pure-JS backend — very slow; a reference for tests.
 * - `native`: tfjs' cpu backend with its heavy kernels in onepixel's oneDNN addon (./backends/native/),
 *   built by `npm ci` when libdnnl-dev and a C++ compiler are installed.
 * - `webgpu`: tfjs' WebGPU backend on Dawn, for GPUs (./backends/webgpu/); without a GPU it runs on
 *   Mesa's software OpenGL (slow, for tests).
 * - `auto`: `native` when its addon loads, else `webgpu` on a hardware GPU adapter, else `wasm`.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { fail } from '../errors.js';
import { registerWasmTrainingKernels } from './backends/wasm/kernels.js';
import { patchTfjs, patchTfjsForNative } from './backends/patches.js';
import { loadNative, nativeLoadError, startNative } from './backends/native/index.js';
import { nativeMissing } from './backends/native/addon.js';
import { startWebgpu, vulkanDriverListed } from './backends/webgpu/index.js';

import { BACKENDS, type BackendName, type Precision, type PrecisionName } from './names.js';
export {
  BACKENDS,
  type BackendName,
  PRECISIONS,
  type Precision,
  type PrecisionName,
} from './names.js';

/** The names this build can run (`native` only where its addon is built). */
export const AVAILABLE_BACKENDS: readonly BackendName[] = [
  'auto',
  'wasm',
  'cpu',
  'webgpu',
  'native',
];

/** The command that installs what the native backend needs and builds it (in the repository). */
export const NATIVE_FIX = 'apt-get install -y libdnnl-dev g++ make python3 && npm run build:native';

const require = createRequire(import.meta.url);

/** The folder holding tfjs-backend-wasm's .wasm binaries, with a trailing separator. */
export function wasmDir(): string {
  const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
  return path.join(path.dirname(pkg), 'dist') + path.sep;
}

/** Whether the native (oneDNN) addon is built and loads (loaded lazily, once). */
export function nativeAvailable(): boolean {
  return loadNative() !== null;
}

async function useNative(): Promise<string> {
  if (!(await startNative())) {
    const missing = await nativeMissing();
    const lacks = missing.length ? `; missing: ${missing.join(', ')}` : '';
    fail(
      `backend 'native' is not available: ${nativeLoadError()}${lacks}; to build it: ${NATIVE_FIX}`,
    );
  }
  patchTfjsForNative();
  return tf.getBackend();
}

/**
 * The precision `requested` resolves to on the backend `engine` started: `auto` is bf16 on the
 * native backend where the CPU runs bf16 natively (oneDNN's ISA avx512_core_bf16 or AMX), else
 * fp32; `bf16` anywhere else is refused (one line naming --precision).
 */
export function resolvePrecision(requested: PrecisionName, engine: string): Precision {
  if (requested === 'fp32') return 'fp32';
  const addon = engine === 'native' ? loadNative() : null;
  const native = addon?.info();
  if (requested === 'auto') return native?.bf16 ? 'bf16' : 'fp32';
  if (native === undefined)
    fail(
      `--precision bf16 needs the native backend (this run uses '${engine}'); use --backend native`,
    );
  if (!native.bf16)
    fail(
      `--precision bf16: this CPU has no native bf16 (oneDNN runs ${native.isaName}; bf16 needs ` +
        'avx512_core_bf16 or AMX); use --precision fp32 or auto',
    );
  return 'bf16';
}

/**
 * Makes the current backend compute in `precision` (the native backend's setting, which every
 * bf16-capable kernel reads); fp32 is every backend's own arithmetic.
 */
export function usePrecision(precision: Precision): void {
  const addon = currentNative();
  if (addon) addon.precision(precision);
  else if (precision !== 'fp32')
    fail(`precision ${precision} needs the native backend (this run uses '${tf.getBackend()}')`);
}

/**
 * The native backend's thread count when it is the current backend (else null). oneDNN adds its
 * reductions in an order that depends on it, so a run repeats bit for bit only at the same count.
 */
export function nativeThreads(): number | null {
  return currentNative()?.threads() ?? null;
}

/** The addon when native is the current backend, else null. */
function currentNative(): ReturnType<typeof loadNative> {
  return tf.getBackend() === 'native' ? loadNative() : null;
}

/**
 * Worker threads a training run uses by default on backend `name`: one where the backend already
 * uses every core (native: oneDNN's threads; webgpu: the GPU) or the attack runs in one
 * thread (adversarial training), else one wasm engine per core.
 */
export function defaultWorkers(name: BackendName, adversarial: boolean): number {
  if (adversarial || name === 'native' || (name === 'auto' && nativeAvailable())) return 1;
  return name === 'wasm' || name === 'auto' ? os.availableParallelism() : 1;
}

let wasmPathsSet = false;

async function useWasm(): Promise<string> {
  registerWasmTrainingKernels();
  if (!wasmPathsSet) {
    setWasmPaths(wasmDir());
    wasmPathsSet = true;
  }
  const ok = await tf.setBackend('wasm');
  if (!ok) fail(`could not start the wasm backend from ${wasmDir()}; try --backend cpu (slow)`);
  await tf.ready();
  return tf.getBackend();
}

async function useCpu(): Promise<string> {
  const ok = await tf.setBackend('cpu');
  if (!ok) fail('could not start the cpu backend');
  await tf.ready();
  // Its first write prints an "install tfjs-node" banner, which cannot install offline anyway.
  (tf.backend() as unknown as { firstUse?: boolean }).firstUse = false;
  return tf.getBackend();
}

function listed(names: readonly string[]): string {
  return names.map((n) => `'${n}'`).join(', ');
}

/**
 * Sets up the tfjs backend `name` and makes it current; returns the backend's real name
 * ('native', 'wasm', 'cpu' or 'webgpu'). Calling it again (with the same or another name) is fine.
 */
export async function initEngine(name: BackendName = 'auto'): Promise<string> {
  patchTfjs();
  switch (name) {
    case 'auto':
      if (nativeAvailable()) return useNative();
      if (vulkanDriverListed() && (await startWebgpu(true))) {
        patchTfjs();
        return tf.getBackend();
      }
      return useWasm();
    case 'wasm':
      return useWasm();
    case 'cpu':
      return useCpu();
    case 'native':
      return useNative();
    case 'webgpu':
      await startWebgpu();
      patchTfjs(); // the webgpu kernels register when its module loads
      return tf.getBackend();
    default:
      return fail(
        `unknown backend '${String(name)}'; valid backends: ${listed(BACKENDS)} ` +
          `(available in this build: ${listed(AVAILABLE_BACKENDS)})`,
      );
  }
}
