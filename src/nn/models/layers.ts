/**
 * Building blocks shared by the model zoo: PyTorch-style convolutions, batch norms and linear layers
 * for tfjs-layers (NHWC), with PyTorch's default initialisation and names taken from the PyTorch
 * module paths of the reference implementations (so `layer1.0.conv1` here is `layer1.0.conv1` in the
 * reference's `state_dict`).
 *
 * Initialisation (PyTorch 1.x/2.x defaults, reproduced exactly rather than approximated):
 * - Conv2d / Linear weight: `kaiming_uniform_(a=√5)`, i.e. U(−1/√fan_in, 1/√fan_in) with
 *   fan_in = in_channels·k·k (conv) or in_features (linear);
 * - Conv2d / Linear bias (where present): U(−1/√fan_in, 1/√fan_in);
 * - BatchNorm2d: weight (gamma) 1, bias (beta) 0, running mean 0, running variance 1 (tfjs defaults);
 * - the WRN reference overrides conv weights with `kaiming_normal_(mode='fan_out', relu)`, i.e.
 *   N(0, 2/(out_channels·k·k)), and zeroes the linear bias (see {@link Init.convKaimingNormal}).
 */
import * as tf from '@tensorflow/tfjs-layers';
import type { SymbolicTensor } from '@tensorflow/tfjs-layers';
import { fail } from '../../errors.js';

export type Sym = SymbolicTensor;
type Initializer = ReturnType<typeof tf.initializers.randomUniform>;
/** Anything with tfjs' `apply` (every layer). */
interface Applicable {
  apply(x: Sym | Sym[]): unknown;
}

/** Input shape of a model, NHWC without the batch dimension. */
export interface InputShape {
  height: number;
  width: number;
  channels: number;
}

/** Options every model builder takes. */
export interface BuildOptions {
  /** WRN widening factor k (default 10); ignored by the other families. */
  widen?: number;
  /** Seed for the weight initialisers; same seed, same initial weights. Omit for random ones. */
  seed?: number;
}

/**
 * PyTorch `BatchNorm2d` defaults: eps 1e-5; PyTorch's momentum 0.1 weights the *new* batch
 * statistic, tfjs/Keras momentum weights the *old* moving value, so 0.1 there is 0.9 here.
 */
export const BN_EPSILON = 1e-5;
export const BN_MOMENTUM = 0.9;

/**
 * Hands out initialisers; with a seed every layer gets its own derived seed (positive: tfjs' seeded
 * normal generator treats 0 as "no seed"), so a seeded build is reproducible.
 */
export class Init {
  private count = 0;
  constructor(private readonly seed?: number) {}

  private next(): number | undefined {
    this.count += 1;
    if (this.seed === undefined) return undefined;
    return Math.abs(Math.trunc(this.seed)) * 100_003 + this.count;
  }

  /** PyTorch's default weight and bias initialiser for a layer with this fan-in: U(±1/√fan_in). */
  uniform(fanIn: number): Initializer {
    const bound = 1 / Math.sqrt(fanIn);
    return tf.initializers.randomUniform({ minval: -bound, maxval: bound, seed: this.next() });
  }

  /** `kaiming_normal_(mode='fan_out', nonlinearity='relu')`: N(0, 2/fan_out) (not truncated). */
  convKaimingNormal(fanOut: number): Initializer {
    return tf.initializers.randomNormal({
      mean: 0,
      stddev: Math.sqrt(2 / fanOut),
      seed: this.next(),
    });
  }
}

/** Applies a layer to one symbolic tensor. */
export function ap(layer: Applicable, x: Sym | Sym[]): Sym {
  return layer.apply(x) as Sym;
}

export interface ConvOptions {
  stride?: number;
  /** PyTorch `padding` (zeros on every side); default (k−1)/2, which keeps the size at stride 1. */
  padding?: number;
  /** PyTorch `bias`; default false (every conv here but VGG's and LeNet's is followed by BN). */
  bias?: boolean;
  /** Weight init: PyTorch's default, or WRN's `kaiming_normal_(fan_out, relu)` when true. */
  kaiming?: boolean;
}

/**
 * A PyTorch `Conv2d` (k×k, symmetric zero padding). Stride 1 with padding (k−1)/2 is tfjs `same`;
 * any other padded conv gets an explicit ZeroPadding2D and `valid`, because tfjs `same` with stride 2
 * on an even size pads only bottom/right and would sample other pixels than PyTorch.
 */
export function conv(
  x: Sym,
  name: string,
  filters: number,
  k: number,
  init: Init,
  options: ConvOptions = {},
): Sym {
  const { stride = 1, padding = (k - 1) / 2, bias = false, kaiming = false } = options;
  const fanIn = (x.shape[x.shape.length - 1] as number) * k * k;
  const kernelInitializer = kaiming ? init.convKaimingNormal(filters * k * k) : init.uniform(fanIn);
  let tfPadding: 'same' | 'valid' = 'valid';
  if (padding > 0) {
    if (stride === 1 && 2 * padding === k - 1) tfPadding = 'same';
    else x = ap(tf.layers.zeroPadding2d({ padding, name: `${name}.pad` }), x);
  }
  const layer = tf.layers.conv2d({
    name,
    filters,
    kernelSize: k,
    strides: stride,
    padding: tfPadding,
    useBias: bias,
    kernelInitializer,
    biasInitializer: bias ? init.uniform(fanIn) : undefined,
  });
  return ap(layer, x);
}

/** A PyTorch `BatchNorm2d` (eps 1e-5, momentum 0.1) on the channel (last) axis. */
export function bn(x: Sym, name: string): Sym {
  return ap(
    tf.layers.batchNormalization({ name, axis: -1, epsilon: BN_EPSILON, momentum: BN_MOMENTUM }),
    x,
  );
}

export function relu(x: Sym, name: string): Sym {
  return ap(tf.layers.reLU({ name }), x);
}

/**
 * A PyTorch `Linear` on a flat input (default init; `zeroBias` for WRN, whose reference zeroes it).
 */
export function linear(x: Sym, name: string, units: number, init: Init, zeroBias = false): Sym {
  const fanIn = x.shape[x.shape.length - 1] as number;
  const kernelInitializer = init.uniform(fanIn);
  const biasInitializer = zeroBias ? tf.initializers.zeros() : init.uniform(fanIn);
  return ap(tf.layers.dense({ name, units, kernelInitializer, biasInitializer }), x);
}

/**
 * A 2×2, stride-2 pooling that works for any size: tfjs `same`, which on even sizes is exactly
 * PyTorch's `max_pool2d(2)` / `avg_pool2d(2)` and on odd sizes is PyTorch's `ceil_mode=True` (the
 * last row/column is pooled alone; for the average it is divided by the pixels present).
 */
export function pool2(x: Sym, name: string, kind: 'max' | 'avg'): Sym {
  const args = { name, poolSize: 2, strides: 2, padding: 'same' as const };
  return ap(kind === 'max' ? tf.layers.maxPooling2d(args) : tf.layers.averagePooling2d(args), x);
}

/** Global average pooling: the references' final `avg_pool2d(out, 4 or 8)` at 32×32, any size else. */
export function gap(x: Sym, name: string): Sym {
  return ap(tf.layers.globalAveragePooling2d({ name }), x);
}

/** Checks the input and class count and returns the model's input tensor. */
export function modelInput(input: InputShape, classes: number): Sym {
  for (const key of ['height', 'width', 'channels'] as const) {
    const v = input[key];
    if (!Number.isInteger(v) || v < 1)
      fail(`model input ${key} must be a positive integer, got ${v}`);
  }
  if (!Number.isInteger(classes) || classes < 1) {
    fail(`number of classes must be a positive integer, got ${classes}`);
  }
  return tf.input({ shape: [input.height, input.width, input.channels], name: 'input' });
}
