/**
 * The `webgpu` engine: tfjs' WebGPU backend on Dawn (the `webgpu` npm package), for GPUs.
 *
 * Dawn finds a GPU through Vulkan (a hardware adapter: the fast path). Where there is none, it can
 * run in OpenGL ES "compatibility" mode over EGL, which on a machine without a GPU is Mesa's
 * llvmpipe: correct and far too slow for training, but it runs the very same WGSL shaders, so the
 * tests exercise the WebGPU code path on any Linux machine with Mesa's EGL.
 *
 * tfjs-backend-webgpu asks `navigator.gpu` for a default adapter itself, which fails in
 * compatibility mode; so the adapter and device are made here and the backend is registered with
 * them.
 */
import {
  closeSync,
  existsSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { isMainThread } from 'node:worker_threads';
import { fail } from '../../../errors.js';
import { isVerbose } from '../../../verbose.js';
import { registerWebgpuTrainingKernels } from './kernels.js';

/** Which adapter the engine runs on. */
export interface WebgpuInfo {
  /** 'vulkan' (hardware) or 'opengl' (compatibility mode; llvmpipe where there is no GPU). */
  api: 'vulkan' | 'opengl';
  /** The adapter, as Dawn describes it. */
  adapter: string;
  /** True for a software rasteriser (llvmpipe, lavapipe, SwiftShader): correct, slow. */
  software: boolean;
}

type Dawn = typeof import('webgpu');

let dawn: Dawn | null = null;
let current: WebgpuInfo | null = null;

async function loadDawn(): Promise<Dawn> {
  if (dawn) return dawn;
  try {
    dawn = await import('webgpu');
  } catch (e) {
    fail(
      `the webgpu backend needs the 'webgpu' package (Dawn for Node), which did not load: ` +
        `${(e as Error).message.split('\n')[0]}; reinstall with 'npm ci'`,
    );
  }
  // Dawn's OpenGL path needs a runtime folder for its EGL sockets, and no display server.
  if (!process.env.XDG_RUNTIME_DIR || !existsSync(process.env.XDG_RUNTIME_DIR))
    process.env.XDG_RUNTIME_DIR = mkdtempSync(path.join(os.tmpdir(), 'onepixel-xdg-'));
  process.env.EGL_PLATFORM ??= 'surfaceless';
  Object.assign(globalThis, dawn.globals);
  return dawn;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|softpipe/i;

function describe(adapter: GPUAdapter): string {
  const i = adapter.info;
  return [i.vendor, i.architecture, i.device, i.description].filter((s) => s).join(' / ');
}

/**
 * Whether a Vulkan driver other than a software one is installed: a cheap look at the driver
 * manifests, so that `auto` does not load Dawn (and its warnings) on machines without a GPU.
 */
export function vulkanDriverListed(): boolean {
  if (process.env.VK_DRIVER_FILES || process.env.VK_ICD_FILENAMES) return true;
  const dirs = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];
  return dirs.some(
    (d) => existsSync(d) && readdirSync(d).some((f) => f.endsWith('.json') && !/lvp_/.test(f)),
  );
}

async function requestAdapter(
  api: 'vulkan' | 'opengl',
): Promise<{ adapter: GPUAdapter; gpu: GPU } | null> {
  const { create } = await loadDawn();
  // ONEPIXEL_DAWN_TOGGLES: extra Dawn options, space-separated (bench/gpu.ts --profile uses it).
  const extra = process.env.ONEPIXEL_DAWN_TOGGLES?.split(' ').filter((t) => t) ?? [];
  const gpu = create([...(api === 'opengl' ? ['backend=opengl'] : []), ...extra]);
  // Dawn prints its adapter diagnostics (Vulkan drivers it skips, limits it lowers) to stderr
  // while requestAdapter runs, before it returns its promise.
  const { value, captured } = quietStderr(() =>
    gpu.requestAdapter(
      api === 'opengl'
        ? ({ featureLevel: 'compatibility' } as GPURequestAdapterOptions)
        : { powerPreference: 'high-performance' },
    ),
  );
  if (captured) dawnMessages.push(captured);
  const adapter = await value;
  return adapter ? { adapter, gpu } : null;
}

/** What Dawn printed while onepixel looked for an adapter (shown with --verbose instead). */
const dawnMessages: string[] = [];

/**
 * Runs `f` with file descriptor 2 on a temporary file, unless --verbose: native code (Dawn) writes
 * to fd 2 directly. Node has no dup2, so fd 2's target is first reopened through /proc (a second
 * descriptor on the same terminal, pipe or file), fd 2 is closed and the capture file opened,
 * which gets the lowest free number, 2; then the same in reverse. Only on the main thread (worker
 * threads share the descriptor table) and only where /proc gives fd 2 back (not for a socket, which
 * is what Node gives its children as pipes): elsewhere `f` simply runs and its messages stay visible.
 */
function quietStderr<T>(f: () => T): { value: T; captured: string } {
  if (isVerbose() || !isMainThread || !existsSync('/proc/self/fd/2'))
    return { value: f(), captured: '' };
  let saved: number;
  try {
    saved = openSync('/proc/self/fd/2', 'a');
  } catch {
    return { value: f(), captured: '' }; // a socket, or no /proc
  }
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'onepixel-dawn-')), 'stderr.txt');
  let value: T;
  closeSync(2);
  const fd = openSync(file, 'w+');
  if (fd !== 2) {
    // Another thread opened a file in between and got number 2: leave the table as it is.
    closeSync(fd);
    closeSync(saved);
    rmSync(path.dirname(file), { recursive: true, force: true });
    return { value: f(), captured: '' };
  }
  try {
    value = f();
  } finally {
    closeSync(fd);
    openSync(`/proc/self/fd/${saved}`, 'a'); // fd 2 again
    closeSync(saved);
  }
  const captured = readFileSync(file, 'utf8');
  rmSync(path.dirname(file), { recursive: true, force: true });
  return { value, captured };
}

/** Dawn's own messages so far (empty with --verbose: they went to the terminal). */
export function dawnDiagnostics(): string {
  return dawnMessages.join('');
}

/**
 * Finds an adapter: Vulkan first, then (unless `hardwareOnly`) OpenGL compatibility mode. Returns
 * null where there is none.
 */
async function findAdapter(
  hardwareOnly: boolean,
): Promise<{ adapter: GPUAdapter; gpu: GPU; info: WebgpuInfo } | null> {
  const forced = process.env.ONEPIXEL_WEBGPU_API;
  // Vulkan only where a driver is listed: elsewhere Dawn would just print that it found none.
  const vulkan = forced === 'vulkan' || (forced !== 'opengl' && vulkanDriverListed());
  const apis: ('vulkan' | 'opengl')[] = [
    ...(vulkan ? (['vulkan'] as const) : []),
    ...(hardwareOnly || forced === 'vulkan' ? [] : (['opengl'] as const)),
  ];
  for (const api of apis) {
    const found = await requestAdapter(api);
    if (!found) continue;
    const adapter = describe(found.adapter);
    const software = SOFTWARE.test(adapter);
    if (hardwareOnly && software) continue;
    return { ...found, info: { api, adapter, software } };
  }
  return null;
}

/** The device limits tfjs-backend-webgpu asks for: the adapter's own maxima. */
function limitsOf(adapter: GPUAdapter): Record<string, number> {
  const l = adapter.limits;
  return {
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
  };
}

/**
 * Starts tfjs' WebGPU backend on the best adapter and makes it current. With `hardwareOnly`
 * (what `auto` uses), returns null instead of starting on a software adapter or none.
 */
export async function startWebgpu(hardwareOnly = false): Promise<WebgpuInfo | null> {
  if (current && tf.findBackend('webgpu')) {
    if (hardwareOnly && current.software) return null;
    if (!(await tf.setBackend('webgpu'))) fail('could not restart the webgpu backend');
    return current;
  }
  const found = await findAdapter(hardwareOnly);
  if (!found) {
    if (hardwareOnly) return null;
    return fail(
      'webgpu: Dawn found no GPU adapter, neither through Vulkan nor OpenGL ES (EGL). On a GPU ' +
        'machine install the Vulkan loader (apt-get install libvulkan1) and the GPU driver; ' +
        'without a GPU, Mesa (apt-get install libegl1 libegl-mesa0 libgl1-mesa-dri) gives a slow ' +
        'software adapter. Other backends: wasm, native. (onepixel --verbose shows what Dawn said.)',
    );
  }
  const { adapter, gpu, info } = found;
  const features: GPUFeatureName[] = adapter.features.has('timestamp-query')
    ? ['timestamp-query']
    : [];
  const device = await adapter.requestDevice({
    requiredFeatures: features,
    requiredLimits: limitsOf(adapter),
  });
  // tfjs-backend-webgpu reads navigator.gpu when it loads; Node 20 has no navigator.
  Object.defineProperty(globalThis, 'navigator', {
    value: { gpu, userAgent: 'node' },
    configurable: true,
    writable: true,
  });
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  registerWebgpuTrainingKernels();
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => new WebGPUBackend(device, adapter.info), 3);
  if (!(await tf.setBackend('webgpu')))
    fail(`could not start the webgpu backend on ${info.adapter}`);
  await tf.ready();
  current = info;
  return info;
}

/** The adapter the webgpu backend runs on, once started. */
export function webgpuInfo(): WebgpuInfo | null {
  return current;
}
