/**
 * The `native` tfjs backend: tfjs' cpu backend (tensors are plain TypedArrays in JavaScript memory)
 * whose heavy kernels run in the oneDNN addon on the same arrays, without copies.
 *
 * - Every kernel of the cpu backend is registered for `native` too (the fallback: it runs on the
 *   same memory); ./kernels-*.ts then replace the heavy ones.
 * - Outputs of native kernels come from a pool of Float32Arrays recycled when their tensors are
 *   disposed: fresh memory costs a page fault per 4 KB, and a training step allocates the same
 *   sizes every time.
 * - Pooled arrays never escape: `dataSync()` of a pooled or in-place-updated tensor returns a copy,
 *   and a fallback kernel whose output views an input's pooled array (a `Slice` that returns a
 *   `subarray`, say) gets its own copy.
 */
import {
  getKernel,
  getKernelsForBackend,
  registerBackend,
  registerKernel,
  type DataId,
  type DataType,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
  type backend_util,
} from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { NativeAddon } from './addon.js';

export const NATIVE = 'native';

/** A kernel's attributes, and its inputs (tfjs types them as possibly undefined). */
export type Attrs = Record<string, unknown>;
export type Ins = Record<string, TensorInfo>;

/**
 * Float32Arrays by length, for reuse. A request takes an array of its exact length if one is free,
 * else the shortest free one up to 1/8 longer (as a view of the first n elements), else a new one:
 * sizes that occur once (padded inputs, say) still get reused.
 */
class BufferPool {
  private readonly free = new Map<number, Float32Array[]>();
  /** Every pooled buffer's whole array. */
  private readonly whole = new WeakMap<ArrayBufferLike, Float32Array>();
  freeBytes = 0;
  /** Bytes of pooled arrays handed out and not yet given back, and the most there were. */
  usedBytes = 0;
  peakUsedBytes = 0;

  take(n: number): Float32Array {
    let list = this.free.get(n);
    if (list === undefined || list.length === 0) {
      let best = Infinity;
      for (const [len, l] of this.free)
        if (l.length > 0 && len > n && len <= n + n / 8 && len < best) {
          best = len;
          list = l;
        }
    }
    const a = list?.pop();
    const whole = a ?? new Float32Array(n);
    if (a === undefined) this.whole.set(whole.buffer, whole);
    else this.freeBytes -= whole.byteLength;
    this.usedBytes += whole.byteLength;
    this.peakUsedBytes = Math.max(this.peakUsedBytes, this.usedBytes);
    return whole.length === n ? whole : whole.subarray(0, n);
  }

  give(a: Float32Array): void {
    const whole = this.whole.get(a.buffer);
    if (whole === undefined) return;
    let list = this.free.get(whole.length);
    if (list === undefined) this.free.set(whole.length, (list = []));
    list.push(whole);
    this.freeBytes += whole.byteLength;
    this.usedBytes -= whole.byteLength;
  }

  owns(a: ArrayBufferView): boolean {
    return this.whole.has(a.buffer);
  }

  /** Drops every free array (the garbage collector takes them). */
  trim(): void {
    this.free.clear();
    this.freeBytes = 0;
  }
}

/** Per-kernel calls and wall time, kept while profiling (see {@link setNativeProfiling}). */
export interface KernelTime {
  calls: number;
  ms: number;
  /** A kernel of the addon (else the cpu backend's, registered as the fallback). */
  native: boolean;
  /**
   * Calls that ran a function of the addon: every call of a native kernel but those that fell
   * back to the cpu kernel (a case it does not cover) or had nothing to compute.
   */
  addonCalls: number;
}

export class NativeBackend extends MathBackendCPU {
  readonly pool = new BufferPool();
  /** Data updated in place (SGD): read back as copies, never shared. */
  private readonly mutable = new WeakSet<DataId>();
  readonly profile = new Map<string, KernelTime>();
  /** Calls of each addon function while profiling (SGD's too, which is no kernel). */
  readonly addonCalls = new Map<string, number>();
  /** The addon, each function noting its calls while profiling. */
  readonly addon: NativeAddon;

  constructor(addon: NativeAddon) {
    super();
    const counted: Record<string, unknown> = {};
    for (const [name, f] of Object.entries(addon))
      counted[name] =
        typeof f !== 'function'
          ? f
          : (...args: unknown[]): unknown => {
              if (profiling) {
                ranAddon = true;
                this.addonCalls.set(name, (this.addonCalls.get(name) ?? 0) + 1);
              }
              return (f as (...a: unknown[]) => unknown)(...args);
            };
    this.addon = counted as unknown as NativeAddon;
    // The cpu backend's first write prints an "install tfjs-node" banner; not for this one.
    (this as unknown as { firstUse: boolean }).firstUse = false;
  }

  /** A new float32 tensor of `shape` on pooled memory (contents undefined: the kernel writes it). */
  output(shape: number[]): { info: TensorInfo; values: Float32Array } {
    let n = 1;
    for (const d of shape) n *= d;
    const values = this.pool.take(n);
    return {
      info: { dataId: this.write(values, shape, 'float32'), shape, dtype: 'float32' },
      values,
    };
  }

  /**
   * The float32 values of a tensor, in place. (The cpu backend's Cast from bool to float32 keeps
   * the Uint8Array: such data is converted once, here.)
   */
  f32(t: TensorInfo): Float32Array {
    const d = this.data.get(t.dataId);
    if (!(d.values instanceof Float32Array))
      d.values = Float32Array.from(d.values as ArrayLike<number>);
    return d.values as Float32Array;
  }

  /** Marks data that is about to be updated in place (reads of it return copies from now on). */
  markMutable(dataId: DataId): void {
    this.mutable.add(dataId);
  }

  isMutable(dataId: DataId): boolean {
    return this.mutable.has(dataId);
  }

  override disposeData(dataId: DataId, force = false): boolean {
    const values = this.data.has(dataId) ? this.data.get(dataId).values : undefined;
    const gone = super.disposeData(dataId, force);
    if (gone && values instanceof Float32Array && !this.data.has(dataId)) this.pool.give(values);
    return gone;
  }

  override readSync(dataId: DataId): backend_util.BackendValues {
    const v = super.readSync(dataId);
    if (v instanceof Float32Array && (this.pool.owns(v) || this.mutable.has(dataId)))
      return v.slice();
    return v;
  }

  /** After a fallback kernel: outputs that alias an input's pooled array get their own copy. */
  unalias(outputs: TensorInfo[], inputs: TensorInfo[]): void {
    for (const out of outputs) {
      if (inputs.some((i) => i.dataId === out.dataId)) continue; // reshape-like: shared id, counted
      const d = this.data.get(out.dataId);
      const v = d?.values;
      if (v instanceof Float32Array && this.pool.owns(v)) d.values = v.slice();
    }
  }
}

/** Whether kernels are being profiled: from ONEPIXEL_NATIVE_PROFILE=1, or set by a test. */
let profiling = process.env.ONEPIXEL_NATIVE_PROFILE === '1';
/** Set whenever a function of the addon runs (while profiling). */
let ranAddon = false;

/**
 * Turns the per-kernel profile on or off (ONEPIXEL_NATIVE_PROFILE=1 turns it on from the start).
 * Tests use it to prove which native kernels ran.
 */
export function setNativeProfiling(on: boolean): void {
  profiling = on;
}

/**
 * Kernel functions, wrapped for the profile: while profiling, each call is counted and timed, and
 * so are the calls that ran a function of the addon. Otherwise the wrapper only checks the flag.
 */
function profiled(name: string, f: KernelFunc, native: boolean): KernelFunc {
  return (args) => {
    if (!profiling) return f(args);
    const outer = ranAddon;
    ranAddon = false;
    const t0 = performance.now();
    try {
      const out = f(args);
      const backend = args.backend as NativeBackend;
      const rec = backend.profile.get(name) ?? { calls: 0, ms: 0, native, addonCalls: 0 };
      rec.calls++;
      if (ranAddon) rec.addonCalls++;
      rec.ms += performance.now() - t0;
      backend.profile.set(name, rec);
      return out;
    } finally {
      ranAddon = outer || ranAddon;
    }
  };
}

/** Registers a native kernel (replacing the fallback of the same name). */
export function nativeKernel(kernelName: string, kernelFunc: KernelFunc): KernelConfig {
  return { kernelName, backendName: NATIVE, kernelFunc: profiled(kernelName, kernelFunc, true) };
}

let registered = false;

/**
 * Registers the `native` backend and its kernels: every cpu kernel as the fallback, then
 * `kernels` on top. Idempotent.
 */
export function registerNativeBackend(addon: NativeAddon, kernels: KernelConfig[]): void {
  if (registered) return;
  registered = true;
  registerBackend(NATIVE, () => new NativeBackend(addon), 0);
  const mine = new Set(kernels.map((k) => k.kernelName));
  for (const k of getKernelsForBackend('cpu')) {
    if (mine.has(k.kernelName)) continue;
    const cpu = k.kernelFunc;
    const guarded: KernelFunc = (args) => {
      const out = cpu(args);
      const inputs = Object.values(args.inputs).filter((t): t is TensorInfo => t != null);
      (args.backend as NativeBackend).unalias(Array.isArray(out) ? out : [out], inputs);
      return out;
    };
    registerKernel({
      ...k,
      backendName: NATIVE,
      kernelFunc: profiled(k.kernelName, guarded, false),
    });
  }
  for (const k of kernels) registerKernel(k);
}

/** A float32 tensor info check used by kernels to decide between native and fallback. */
export function allFloat32(...ts: (TensorInfo | null | undefined)[]): boolean {
  return ts.every((t) => t == null || t.dtype === ('float32' as DataType));
}

/** Runs the cpu backend's kernel `name` (for cases a native kernel does not cover). */
export function cpuKernel(
  name: string,
  args: Parameters<KernelFunc>[0],
): TensorInfo | TensorInfo[] {
  const k = getKernel(name, 'cpu');
  if (k === undefined) throw new Error(`the cpu backend has no '${name}' kernel`);
  const out = k.kernelFunc(args);
  const inputs = Object.values(args.inputs).filter((t): t is TensorInfo => t != null);
  (args.backend as NativeBackend).unalias(Array.isArray(out) ? out : [out], inputs);
  return out;
}
