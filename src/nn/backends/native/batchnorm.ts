/**
 * Batch normalisation on the native backend:
 *
 * - `FusedBatchNorm` (tfjs' inference-style kernel: given mean and variance) runs natively when the
 *   statistics, scale and offset are per channel (last axis).
 * - Training mode gets its own kernel, `NativeBatchNormTrain` (batch statistics, normalisation,
 *   scale and offset in one pass; outputs y, mean and biased variance), whose registered gradient
 *   is one native call, `NativeBatchNormGrad`, instead of the dozen small ops tfjs differentiates
 *   through `moments`.
 * - {@link useFusedBatchNorm} routes tfjs-layers' BatchNormalization layer to it in training mode
 *   while the backend is native, keeping the layer's moving-average update as it is; on any other
 *   backend, or for a layer it does not fit, the layer runs unchanged. Model code stays the same.
 */
import * as tf from '@tensorflow/tfjs-core';
import {
  FusedBatchNorm,
  getGradient,
  registerGradient,
  type KernelConfig,
  type KernelFunc,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import {
  allFloat32,
  cpuKernel,
  NATIVE,
  nativeKernel,
  type NativeBackend,
  type Attrs,
  type Ins,
} from './backend.js';
import { gradientUnwanted } from './backprop.js';
import { RELU_GRAD } from './kernels-layout.js';

export const BN_TRAIN = 'NativeBatchNormTrain';
/** The same kernel with a ReLU fused: its gradient needs the output too. */
export const BN_TRAIN_RELU = 'NativeBatchNormReluTrain';
export const BN_GRAD = 'NativeBatchNormGrad';
/**
 * FusedBatchNorm (given statistics) under other names, optionally with a ReLU fused, for a forward
 * pass whose gradient will want the input's only (PGD): it saves the variance and scale (and the
 * output, for the ReLU), not the input.
 */
export const BN_INFER = 'NativeBatchNormInputGradOnly';
export const BN_INFER_RELU = 'NativeBatchNormReluInputGradOnly';

function channelsOf(x: TensorInfo): number {
  return x.shape[x.shape.length - 1];
}

function perChannel(t: TensorInfo | null | undefined, c: number): boolean {
  return t == null || t.shape.reduce((p, q) => p * q, 1) === c;
}

/** A float32 array of `c` copies of `v`, for an absent scale (1) or offset (0). */
function filled(c: number, v: number): Float32Array {
  return new Float32Array(c).fill(v);
}

const inference: KernelFunc = (args) => {
  const { x, mean, variance, offset, scale } = args.inputs as Ins;
  const eps = ((args.attrs ?? {}) as Attrs).varianceEpsilon as number;
  const c = channelsOf(x);
  if (
    !allFloat32(x, mean, variance, offset, scale) ||
    ![mean, variance, offset, scale].every((t) => perChannel(t, c))
  )
    return cpuKernel(FusedBatchNorm, args);
  const b = args.backend as NativeBackend;
  const out = b.output(x.shape);
  const rows = out.values.length / c;
  b.addon.batchNorm(
    b.f32(x),
    scale == null ? filled(c, 1) : b.f32(scale),
    offset == null ? filled(c, 0) : b.f32(offset),
    b.f32(mean),
    b.f32(variance),
    out.values,
    rows,
    c,
    eps,
    false,
    ((args.attrs ?? {}) as Attrs).relu === true,
  );
  return out.info;
};

/**
 * Inputs x, scale, offset; attrs epsilon, relu (a ReLU fused after). Outputs y, batch mean, batch
 * (biased) variance.
 */
const train: KernelFunc = (args) => {
  const { x, scale, offset } = args.inputs as Ins;
  const attrs = (args.attrs ?? {}) as Attrs;
  const eps = attrs.epsilon as number;
  const b = args.backend as NativeBackend;
  const c = channelsOf(x);
  const y = b.output(x.shape);
  const mean = b.output([c]);
  const variance = b.output([c]);
  b.addon.batchNorm(
    b.f32(x),
    b.f32(scale),
    b.f32(offset),
    mean.values,
    variance.values,
    y.values,
    y.values.length / c,
    c,
    eps,
    true,
    attrs.relu === true,
  );
  return [y.info, mean.info, variance.info];
};

/**
 * Inputs x, dy, scale, mean, variance, and y when a ReLU was fused; attrs epsilon. Outputs dx,
 * dscale, doffset.
 */
const grad: KernelFunc = (args) => {
  const { x, dy, y, scale, mean, variance } = args.inputs as Ins;
  const eps = ((args.attrs ?? {}) as Attrs).epsilon as number;
  const b = args.backend as NativeBackend;
  const c = channelsOf(x);
  const dx = b.output(x.shape);
  const dscale = b.output([c]);
  const doffset = b.output([c]);
  b.addon.batchNormGrad(
    b.f32(x),
    b.f32(dy),
    y === undefined ? null : b.f32(y),
    b.f32(scale),
    b.f32(mean),
    b.f32(variance),
    dx.values,
    dscale.values,
    doffset.values,
    dx.values.length / c,
    c,
    eps,
  );
  return [dx.info, dscale.info, doffset.info];
};

export const BATCHNORM_KERNELS: KernelConfig[] = [
  nativeKernel(FusedBatchNorm, inference),
  nativeKernel(BN_INFER, inference),
  nativeKernel(BN_INFER_RELU, inference),
  nativeKernel(BN_TRAIN, train),
  nativeKernel(BN_TRAIN_RELU, train),
  nativeKernel(BN_GRAD, grad),
];

let inferenceGradRegistered = false;

/**
 * The input gradient of FusedBatchNorm (inference mode: what PGD differentiates) as one broadcast
 * product dy · scale/√(variance + ε) on the native backend, instead of tfjs' gradient, which
 * builds five full-size tensors (a Tile among them) before it knows which gradients are wanted.
 * The other inputs' gradients, and other backends, use tfjs' own function, run only when asked.
 */
function registerInferenceGradient(): void {
  if (inferenceGradRegistered) return;
  inferenceGradRegistered = true;
  const original = getGradient(FusedBatchNorm);
  if (original === undefined) return;
  registerGradient({
    ...original,
    gradFunc: (dy, saved, attrs) => {
      const [x, mean, variance, scale] = saved;
      const d = dy as tf.Tensor;
      const c = x.shape[x.rank - 1];
      const perChannel = [mean, variance, scale].every((t) => t == null || t.size === c);
      if (tf.getBackend() !== NATIVE || !perChannel || d.dtype !== 'float32')
        return original.gradFunc(dy, saved, attrs);
      const eps = (attrs as Attrs).varianceEpsilon as number;
      // (tfjs' function makes its shared terms eagerly, inside the calling thunk's tidy: call it
      // afresh for each gradient wanted.)
      const other = (name: string) => () => original.gradFunc(dy, saved, attrs)[name]();
      return {
        x: () =>
          tf.tidy(() => {
            const k = tf.rsqrt(tf.add(tf.reshape(variance, [c]), eps));
            return tf.mul(d, scale == null ? k : tf.mul(tf.reshape(scale, [c]), k));
          }),
        mean: other('mean'),
        variance: other('variance'),
        scale: other('scale'),
        offset: other('offset'),
      };
    },
  });
}

let inputGradRegistered = false;

/** Gradients of {@link BN_INFER} and {@link BN_INFER_RELU}: the input's only. */
function registerInputGradOnly(): void {
  if (inputGradRegistered) return;
  inputGradRegistered = true;
  for (const relu of [false, true])
    registerGradient({
      kernelName: relu ? BN_INFER_RELU : BN_INFER,
      inputsToSave: ['variance', 'scale'],
      outputsToSave: [relu],
      gradFunc: (dy, saved, attrs) => {
        const [variance, scale, y] = saved;
        const eps = (attrs as Attrs).varianceEpsilon as number;
        const d = dy as tf.Tensor;
        return {
          x: () =>
            tf.tidy(() => {
              const k = tf.mul(scale, tf.rsqrt(tf.add(variance, eps)));
              const g = relu ? (tf.engine().runKernel(RELU_GRAD, { dy: d, x: y }) as tf.Tensor) : d;
              return tf.mul(g, k);
            }),
        };
      },
    });
}

let gradientRegistered = false;

function registerTrainGradient(): void {
  if (gradientRegistered) return;
  gradientRegistered = true;
  for (const relu of [false, true])
    registerGradient({
      kernelName: relu ? BN_TRAIN_RELU : BN_TRAIN,
      inputsToSave: ['x', 'scale'],
      outputsToSave: [relu, true, true],
      gradFunc: (dys, saved, attrs) => {
        const dy = Array.isArray(dys) ? dys[0] : dys;
        const [x, scale, ...rest] = saved;
        const [mean, variance] = relu ? rest.slice(1) : rest;
        const inputs: tf.NamedTensorMap = { x, dy, scale, mean, variance };
        if (relu) inputs.y = rest[0];
        const outs = tf.engine().runKernel(BN_GRAD, inputs, attrs) as tf.Tensor[];
        return { x: () => outs[0], scale: () => outs[1], offset: () => outs[2] };
      },
    });
}

/**
 * Batch norm over the last axis with batch statistics, optionally followed by a ReLU:
 * [y, mean, biased variance].
 */
export function batchNormTrain(
  x: tf.Tensor,
  scale: tf.Tensor,
  offset: tf.Tensor,
  epsilon: number,
  relu = false,
): [tf.Tensor, tf.Tensor, tf.Tensor] {
  registerTrainGradient();
  const kernel = relu ? BN_TRAIN_RELU : BN_TRAIN;
  return tf.engine().runKernel(kernel, { x, scale, offset }, { epsilon, relu }) as unknown as [
    tf.Tensor,
    tf.Tensor,
    tf.Tensor,
  ];
}

interface LayerLike {
  getClassName(): string;
  maxValue?: number | null;
  outboundNodes?: { outboundLayer?: LayerLike }[];
  call(inputs: tf.Tensor | tf.Tensor[], kwargs: Record<string, unknown>): tf.Tensor | tf.Tensor[];
}

/** Outputs of batch norms with the ReLU already applied (the ReLU layer then passes them on). */
const reluApplied = new WeakSet<tf.Tensor>();

/** Whether every layer that consumes `layer`'s output is a plain ReLU. */
function onlyReluAfter(layer: LayerLike): boolean {
  const next = (layer.outboundNodes ?? []).map((n) => n.outboundLayer);
  return (
    next.length > 0 &&
    next.every((l) => l !== undefined && l.getClassName() === 'ReLU' && l.maxValue == null)
  );
}

interface BatchNormLayer extends LayerLike {
  axis: number;
  momentum: number;
  epsilon: number;
  center: boolean;
  scale: boolean;
  gamma: { read(): tf.Tensor };
  beta: { read(): tf.Tensor };
  movingMean: { read(): tf.Tensor; write(t: tf.Tensor): void };
  movingVariance: { read(): tf.Tensor; write(t: tf.Tensor): void };
}

let patched = false;

/**
 * Makes tfjs-layers' BatchNormalization use {@link batchNormTrain} in training mode on the native
 * backend (idempotent). The moving averages are updated exactly as the layer does:
 * moving ← moving − (moving − batch)·(1 − momentum). When the layer's only consumers are ReLU
 * layers, the ReLU is fused into the batch norm and the ReLU layer passes the result on (relu is
 * idempotent): one tensor and one pass fewer each way.
 */
export function useFusedBatchNorm(): void {
  if (patched) return;
  patched = true;
  registerInferenceGradient();
  registerInputGradOnly();
  const proto = Object.getPrototypeOf(tfl.layers.batchNormalization({})) as BatchNormLayer;
  const original = proto.call;
  proto.call = function (this: BatchNormLayer, inputs, kwargs) {
    const input = Array.isArray(inputs) ? inputs[0] : inputs;
    const last = this.axis === -1 || this.axis === input.rank - 1;
    if (kwargs?.training !== true) {
      const plain =
        tf.getBackend() === NATIVE &&
        last &&
        this.center &&
        this.scale &&
        input.dtype === 'float32' &&
        !(Array.isArray(inputs) && inputs.length !== 1);
      const params = [this.gamma, this.beta, this.movingMean, this.movingVariance].map((p) =>
        p.read(),
      );
      if (!plain || !gradientUnwanted(...params)) return original.call(this, inputs, kwargs);
      const fuse = onlyReluAfter(this);
      const [scale, offset, mean, variance] = params;
      const out = tf
        .engine()
        .runKernel(
          fuse ? BN_INFER_RELU : BN_INFER,
          { x: input, mean, variance, offset, scale },
          { varianceEpsilon: this.epsilon, relu: fuse },
        ) as tf.Tensor;
      if (fuse) reluApplied.add(out);
      return out;
    }
    if (
      tf.getBackend() !== NATIVE ||
      !last ||
      !this.center ||
      !this.scale ||
      input.dtype !== 'float32' ||
      (Array.isArray(inputs) && inputs.length !== 1)
    )
      return original.call(this, inputs, kwargs);
    const fuse = onlyReluAfter(this);
    const out = tf.tidy(() => {
      const [y, mean, variance] = batchNormTrain(
        input,
        this.gamma.read(),
        this.beta.read(),
        this.epsilon,
        fuse,
      );
      const decay = 1 - this.momentum;
      for (const [v, value] of [
        [this.movingMean, mean],
        [this.movingVariance, variance],
      ] as const) {
        tf.tidy(() => {
          const orig = v.read();
          v.write(tf.sub(orig, tf.mul(tf.sub(orig, value), decay)));
        });
      }
      return y;
    });
    if (fuse) reluApplied.add(out);
    return out;
  };
  const reluProto = Object.getPrototypeOf(tfl.layers.reLU({})) as LayerLike;
  const reluCall = reluProto.call;
  reluProto.call = function (this: LayerLike, inputs, kwargs) {
    const input = Array.isArray(inputs) && inputs.length === 1 ? inputs[0] : inputs;
    if (!Array.isArray(input) && reluApplied.has(input) && this.maxValue == null)
      return tf.clone(input);
    return reluCall.call(this, inputs, kwargs);
  };
}
