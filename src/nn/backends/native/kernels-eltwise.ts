/**
 * Native element-wise kernels on float32: binary ops with broadcasting, Relu / Step and a few unary
 * ops, Sum / Mean / Max over contiguous axes, Softmax over the last axis, and AddN.
 */
import {
  Add,
  AddN,
  backend_util,
  Exp,
  Log,
  Max,
  Maximum,
  Mean,
  Minimum,
  Multiply,
  Neg,
  RealDiv,
  Relu,
  Softmax,
  Sqrt,
  Square,
  SquaredDifference,
  Step,
  Sub,
  Sum,
  util,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import {
  allFloat32,
  cpuKernel,
  nativeKernel,
  type NativeBackend,
  type Attrs,
  type Ins,
} from './backend.js';

/** Op codes of native/src/kernels.h. */
const BINARY: Record<string, number> = {
  [Add]: 0,
  [Sub]: 1,
  [Multiply]: 2,
  [RealDiv]: 3,
  [Maximum]: 4,
  [Minimum]: 5,
  [SquaredDifference]: 6,
};
const UNARY: Record<string, number> = {
  [Relu]: 0,
  [Step]: 1,
  [Exp]: 2,
  [Log]: 3,
  [Neg]: 4,
  [Square]: 5,
  [Sqrt]: 6,
};
const REDUCE: Record<string, number> = { [Sum]: 0, [Mean]: 1, [Max]: 2 };

function padded(shape: number[], rank: number): Int32Array {
  const out = new Int32Array(rank).fill(1);
  out.set(shape, rank - shape.length);
  return out;
}

function binary(name: string): KernelFunc {
  const op = BINARY[name];
  return (args) => {
    const { a, b } = args.inputs as Ins;
    if (!allFloat32(a, b)) return cpuKernel(name, args);
    const shape = backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const be = args.backend as NativeBackend;
    const out = be.output(shape);
    const rank = Math.max(1, shape.length);
    be.addon.binary(
      op,
      be.f32(a),
      padded(a.shape, rank),
      be.f32(b),
      padded(b.shape, rank),
      out.values,
      padded(shape, rank),
    );
    return out.info;
  };
}

function unary(name: string): KernelFunc {
  const op = UNARY[name];
  return (args) => {
    const { x } = args.inputs as Ins;
    if (!allFloat32(x)) return cpuKernel(name, args);
    const be = args.backend as NativeBackend;
    const out = be.output(x.shape);
    const alpha = (((args.attrs ?? {}) as Attrs).alpha as number | undefined) ?? 0;
    be.addon.unary(op, be.f32(x), out.values, alpha);
    return out.info;
  };
}

function reduce(name: string): KernelFunc {
  const op = REDUCE[name];
  return (args) => {
    const { x } = args.inputs as Ins;
    const a = (args.attrs ?? {}) as Attrs;
    if (!allFloat32(x)) return cpuKernel(name, args);
    const axisAttr = (name === Max ? a.reductionIndices : a.axis) as number | number[];
    const axes = util.parseAxisParam(axisAttr, x.shape).sort((p, q) => p - q);
    const contiguous = axes.every((v, i) => i === 0 || v === axes[i - 1] + 1);
    const count = axes.reduce((p, ax) => p * x.shape[ax], 1);
    if (!contiguous || (count === 0 && name === Max)) return cpuKernel(name, args);
    const outer = x.shape.slice(0, axes[0] ?? 0).reduce((p, q) => p * q, 1);
    const inner = x.shape.slice((axes[axes.length - 1] ?? -1) + 1).reduce((p, q) => p * q, 1);
    const kept = x.shape.map((d, i) => (axes.includes(i) ? 1 : d));
    const shape = a.keepDims === true ? kept : x.shape.filter((_, i) => !axes.includes(i));
    const be = args.backend as NativeBackend;
    const out = be.output(shape);
    if (axes.length === 0) out.values.set(be.f32(x));
    else be.addon.reduce(op, be.f32(x), out.values, outer, count, inner);
    return out.info;
  };
}

const softmax: KernelFunc = (args) => {
  const { logits } = args.inputs as Ins;
  const dim = ((args.attrs ?? {}) as Attrs).dim as number;
  const rank = logits.shape.length;
  if (!allFloat32(logits) || rank === 0 || (dim !== -1 && dim !== rank - 1))
    return cpuKernel(Softmax, args);
  const be = args.backend as NativeBackend;
  const cols = logits.shape[rank - 1];
  const out = be.output(logits.shape);
  be.addon.softmax(
    be.f32(logits),
    out.values,
    util.sizeFromShape(logits.shape) / cols,
    cols,
    false,
  );
  return out.info;
};

const addN: KernelFunc = (args) => {
  const tensors = args.inputs as unknown as TensorInfo[];
  if (!allFloat32(...tensors)) return cpuKernel(AddN, args);
  const be = args.backend as NativeBackend;
  const out = be.output(tensors[0].shape);
  be.addon.addN(
    tensors.map((t) => be.f32(t)),
    out.values,
  );
  return out.info;
};

export const ELTWISE_KERNELS: KernelConfig[] = [
  ...Object.keys(BINARY).map((n) => nativeKernel(n, binary(n))),
  ...Object.keys(UNARY).map((n) => nativeKernel(n, unary(n))),
  ...Object.keys(REDUCE).map((n) => nativeKernel(n, reduce(n))),
  nativeKernel(Softmax, softmax),
  nativeKernel(AddN, addN),
];
