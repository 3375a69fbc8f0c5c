/**
 * Native Conv2D (and FusedConv2D with bias and ReLU), its two gradients, MatMul / BatchMatMul /
 * _FusedMatMul, and max / average pooling with their gradients. Anything these do not cover
 * (NCHW, other activations, odd broadcasts, non-float32) runs the cpu kernel.
 */
import {
  AvgPool,
  AvgPoolGrad,
  backend_util,
  BatchMatMul,
  Conv2D,
  Conv2DBackpropFilter,
  Conv2DBackpropInput,
  FusedConv2D,
  MaxPool,
  MaxPoolGrad,
  _FusedMatMul,
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

/**
 * FusedConv2D under another name, for a forward pass whose gradient will not want the filter's or
 * the bias's: its registered gradient (./fused-grads.ts) saves the filter only.
 */
export const CONV_INPUT_GRAD_ONLY = 'NativeFusedConv2DInputGradOnly';

type Args = Parameters<KernelFunc>[0];
/** The addon's conv geometry: N H W Ci kh kw Co Ho Wo sh sw dh dw pt pl pb pr. */
function convParams(c: backend_util.Conv2DInfo): Int32Array {
  const p = c.padInfo;
  return Int32Array.from([
    c.batchSize,
    c.inHeight,
    c.inWidth,
    c.inChannels,
    c.filterHeight,
    c.filterWidth,
    c.outChannels,
    c.outHeight,
    c.outWidth,
    c.strideHeight,
    c.strideWidth,
    c.dilationHeight,
    c.dilationWidth,
    p.top,
    p.left,
    p.bottom,
    p.right,
  ]);
}

function nhwc(attrs: Attrs): boolean {
  return attrs.dataFormat === undefined || attrs.dataFormat === 'NHWC';
}

function convInfo(xShape: number[], wShape: number[], a: Attrs): backend_util.Conv2DInfo {
  return backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    wShape as [number, number, number, number],
    a.strides as number | [number, number],
    (a.dilations as number | [number, number] | undefined) ?? 1,
    a.pad as Parameters<typeof backend_util.computeConv2DInfo>[4],
    a.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    false,
    'channelsLast',
  );
}

function convForward(args: Args, name: string): TensorInfo | TensorInfo[] {
  const { x, filter, bias, preluActivationWeights } = args.inputs as Ins;
  const a = (args.attrs ?? {}) as Attrs;
  const activation = (a.activation as string | undefined) ?? 'linear';
  const c = convInfo(x.shape, filter.shape, a);
  const biasOk = bias == null || bias.shape.reduce((p, q) => p * q, 1) === c.outChannels;
  if (
    !nhwc(a) ||
    preluActivationWeights != null ||
    (activation !== 'linear' && activation !== 'relu') ||
    !biasOk ||
    !allFloat32(x, filter, bias)
  )
    return cpuKernel(name, args);
  const b = args.backend as NativeBackend;
  const out = b.output([c.batchSize, c.outHeight, c.outWidth, c.outChannels]);
  b.addon.conv2d(
    b.f32(x),
    b.f32(filter),
    bias == null ? null : b.f32(bias),
    out.values,
    convParams(c),
    activation === 'relu',
  );
  return out.info;
}

const conv2dInput: KernelFunc = (args) => {
  const { dy, filter } = args.inputs as Ins;
  const a = (args.attrs ?? {}) as Attrs;
  if (!nhwc(a) || !allFloat32(dy, filter)) return cpuKernel(Conv2DBackpropInput, args);
  const c = convInfo(a.inputShape as number[], filter.shape, a);
  const b = args.backend as NativeBackend;
  const out = b.output([c.batchSize, c.inHeight, c.inWidth, c.inChannels]);
  b.addon.conv2dBackpropInput(b.f32(dy), b.f32(filter), out.values, convParams(c));
  return out.info;
};

const conv2dFilter: KernelFunc = (args) => {
  const { x, dy } = args.inputs as Ins;
  const a = (args.attrs ?? {}) as Attrs;
  if (!nhwc(a) || !allFloat32(x, dy)) return cpuKernel(Conv2DBackpropFilter, args);
  const shape = a.filterShape as number[];
  const c = convInfo(x.shape, shape, a);
  const b = args.backend as NativeBackend;
  const out = b.output(shape);
  b.addon.conv2dBackpropFilter(b.f32(x), b.f32(dy), out.values, convParams(c));
  return out.info;
};

function matMul(args: Args, name: string): TensorInfo | TensorInfo[] {
  const { a, b: bIn, bias, preluActivationWeights } = args.inputs as Ins;
  const at = (args.attrs ?? {}) as Attrs;
  const activation = (at.activation as string | undefined) ?? 'linear';
  const tA = at.transposeA === true;
  const tB = at.transposeB === true;
  const ra = a.shape.length;
  const rb = bIn.shape.length;
  const M = tA ? a.shape[ra - 1] : a.shape[ra - 2];
  const K = tA ? a.shape[ra - 2] : a.shape[ra - 1];
  const N = tB ? bIn.shape[rb - 2] : bIn.shape[rb - 1];
  const batchDims = (s: number[]) => s.slice(0, -2);
  const bA = batchDims(a.shape).reduce((p, q) => p * q, 1);
  const bB = batchDims(bIn.shape).reduce((p, q) => p * q, 1);
  const outBatch = backend_util.assertAndGetBroadcastShape(
    batchDims(a.shape),
    batchDims(bIn.shape),
  );
  const sameBatch =
    bA === bB ? batchDims(a.shape).join() === batchDims(bIn.shape).join() : bA === 1 || bB === 1;
  const biasOk = bias == null || bias.shape.reduce((p, q) => p * q, 1) === N;
  if (
    ra < 2 ||
    rb < 2 ||
    !sameBatch ||
    preluActivationWeights != null ||
    (activation !== 'linear' && activation !== 'relu') ||
    !biasOk ||
    !allFloat32(a, bIn, bias)
  )
    return cpuKernel(name, args);
  const be = args.backend as NativeBackend;
  const out = be.output([...outBatch, M, N]);
  const p = Int32Array.from([bA, bB, M, K, N, tA ? 1 : 0, tB ? 1 : 0]);
  be.addon.matMul(
    be.f32(a),
    be.f32(bIn),
    bias == null ? null : be.f32(bias),
    out.values,
    p,
    activation === 'relu',
  );
  return out.info;
}

/** The addon's pooling geometry: N H W C kh kw Ho Wo sh sw pt pl pb pr isMax. */
function poolParams(xShape: number[], a: Attrs, isMax: boolean): Int32Array {
  const c = backend_util.computePool2DInfo(
    xShape as [number, number, number, number],
    a.filterSize as number | [number, number],
    a.strides as number | [number, number],
    1,
    a.pad as Parameters<typeof backend_util.computeConv2DInfo>[4],
    a.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
  const p = c.padInfo;
  return Int32Array.from([
    c.batchSize,
    c.inHeight,
    c.inWidth,
    c.inChannels,
    c.filterHeight,
    c.filterWidth,
    c.outHeight,
    c.outWidth,
    c.strideHeight,
    c.strideWidth,
    p.top,
    p.left,
    p.bottom,
    p.right,
    isMax ? 1 : 0,
  ]);
}

function pool(name: string, isMax: boolean): KernelFunc {
  return (args) => {
    const { x } = args.inputs as Ins;
    if (x.shape.length !== 4 || !allFloat32(x)) return cpuKernel(name, args);
    const b = args.backend as NativeBackend;
    const p = poolParams(x.shape, args.attrs as Attrs, isMax);
    const out = b.output([p[0], p[6], p[7], p[3]]);
    b.addon.pool(b.f32(x), out.values, p);
    return out.info;
  };
}

function poolGrad(name: string, isMax: boolean): KernelFunc {
  return (args) => {
    const { dy, input } = args.inputs as Ins;
    if (input.shape.length !== 4 || !allFloat32(dy, input)) return cpuKernel(name, args);
    const b = args.backend as NativeBackend;
    const out = b.output(input.shape);
    b.addon.poolGrad(
      b.f32(dy),
      b.f32(input),
      out.values,
      poolParams(input.shape, args.attrs as Attrs, isMax),
    );
    return out.info;
  };
}

export const CONV_KERNELS: KernelConfig[] = [
  nativeKernel(Conv2D, (args) => convForward(args, Conv2D)),
  nativeKernel(FusedConv2D, (args) => convForward(args, FusedConv2D)),
  nativeKernel(CONV_INPUT_GRAD_ONLY, (args) => convForward(args, FusedConv2D)),
  nativeKernel(Conv2DBackpropInput, conv2dInput),
  nativeKernel(Conv2DBackpropFilter, conv2dFilter),
  nativeKernel(BatchMatMul, (args) => matMul(args, BatchMatMul)),
  nativeKernel(_FusedMatMul, (args) => matMul(args, _FusedMatMul)),
  nativeKernel(MaxPool, pool(MaxPool, true)),
  nativeKernel(AvgPool, pool(AvgPool, false)),
  nativeKernel(MaxPoolGrad, poolGrad(MaxPoolGrad, true)),
  nativeKernel(AvgPoolGrad, poolGrad(AvgPoolGrad, false)),
];
