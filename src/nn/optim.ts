/**
 * SGD with momentum and weight decay, with the exact semantics of PyTorch's
 * `torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov)` (the paper's
 * optimiser: lr 0.1, momentum 0.9, weight decay 5e-4, no Nesterov, no dampening). Per parameter w
 * with gradient g, in float32:
 *
 *     g ← g + wd·w
 *     buf ← g                          (first step)
 *     buf ← μ·buf + (1 − dampening)·g  (later steps)
 *     g ← g + μ·buf  if nesterov, else g ← buf
 *     w ← w − lr·g
 *
 * The variables are updated in place (`Variable.assign`), the momentum buffers are kept as
 * non-trainable variables owned by the optimiser. A parameter with no gradient in a step is left
 * alone, its buffer untouched (as PyTorch does for `grad is None`).
 */
import * as tf from '@tensorflow/tfjs-core';
import { currentNative, sgdInPlace } from './backends/native/sgd.js';

export interface SGDOptions {
  /** Momentum μ. Default 0.9. */
  momentum?: number;
  /** L2 weight decay added to the gradient. Default 5e-4. */
  weightDecay?: number;
  /** Dampening of the momentum (not applied at the first step, as in PyTorch). Default 0. */
  dampening?: number;
  /** Nesterov momentum. Default false. */
  nesterov?: boolean;
  /**
   * Decay every parameter, biases and batch-norm scales and offsets too (the paper's code does).
   * When false, parameters of rank ≤ 1 (biases, batch-norm γ and β) are not decayed. Default true.
   */
  decayBiasAndBn?: boolean;
}

/** A checkpoint of the optimiser: plain numbers only (JSON-safe). */
export interface SGDState {
  /** Steps taken. */
  step: number;
  /** Momentum buffers by parameter name, flattened row-major, with their shapes. */
  buffers: Record<string, { shape: number[]; values: number[] }>;
}

export class SGD {
  readonly momentum: number;
  readonly weightDecay: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly decayBiasAndBn: boolean;
  private readonly params = new Map<string, tf.Variable>();
  private readonly buffers = new Map<string, tf.Variable>();
  private steps = 0;

  /**
   * @param params the variables to optimise, keyed by the names their gradients will have: an
   *   array is keyed by `Variable.name` (the keys of `tf.variableGrads(...).grads`), a record by
   *   its keys.
   */
  constructor(params: tf.Variable[] | Record<string, tf.Variable>, opts: SGDOptions = {}) {
    this.momentum = opts.momentum ?? 0.9;
    this.weightDecay = opts.weightDecay ?? 5e-4;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.decayBiasAndBn = opts.decayBiasAndBn ?? true;
    if (!(this.momentum >= 0)) throw new RangeError(`SGD: invalid momentum ${this.momentum}`);
    if (!(this.weightDecay >= 0))
      throw new RangeError(`SGD: invalid weight decay ${this.weightDecay}`);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0))
      throw new RangeError('SGD: Nesterov momentum requires a momentum and zero dampening');
    const entries = Array.isArray(params)
      ? params.map((v) => [v.name, v] as const)
      : Object.entries(params);
    for (const [name, v] of entries) {
      if (this.params.has(name)) throw new RangeError(`SGD: parameter '${name}' given twice`);
      if (v.dtype !== 'float32')
        throw new RangeError(`SGD: parameter '${name}' is ${v.dtype}, not float32`);
      this.params.set(name, v);
    }
  }

  /** The names of the parameters, in the order given. */
  get names(): string[] {
    return [...this.params.keys()];
  }

  /** Steps taken so far. */
  get stepCount(): number {
    return this.steps;
  }

  private decays(v: tf.Variable): boolean {
    return this.weightDecay !== 0 && (this.decayBiasAndBn || v.rank > 1);
  }

  /**
   * One update with learning rate `lr`. `grads` maps parameter names to gradients of the same
   * shape; parameters without a gradient are skipped. The gradients are not disposed.
   */
  step(grads: Record<string, tf.Tensor> | tf.NamedTensorMap, lr: number): void {
    if (!Number.isFinite(lr) || lr < 0) throw new RangeError(`SGD.step: invalid lr ${lr}`);
    // Check everything before updating anything.
    for (const [name, g] of Object.entries(grads)) {
      const w = this.params.get(name);
      if (!w) throw new RangeError(`SGD.step: gradient for unknown '${name}'`);
      if (g && !tf.util.arraysEqual(g.shape, w.shape))
        throw new RangeError(
          `SGD.step: gradient of '${name}' has shape [${g.shape}], parameter [${w.shape}]`,
        );
    }
    const native = currentNative();
    if (native !== null) {
      this.stepInPlace(native, grads, lr);
      this.steps++;
      return;
    }
    tf.tidy(() => {
      const mu = tf.scalar(this.momentum);
      const wd = tf.scalar(this.weightDecay);
      const damp = tf.scalar(1 - this.dampening);
      const negLr = tf.scalar(-lr);
      for (const [name, w] of this.params) {
        const g0 = grads[name];
        if (g0 === undefined || g0 === null) continue;
        let g: tf.Tensor = g0.dtype === 'float32' ? g0 : tf.cast(g0, 'float32');
        if (this.decays(w)) g = tf.add(g, tf.mul(wd, w));
        if (this.momentum !== 0) {
          const buf = this.buffers.get(name);
          let next: tf.Tensor;
          if (buf === undefined) {
            next = g;
            this.buffers.set(name, tf.variable(tf.clone(g), false));
          } else {
            const scaled = this.dampening === 0 ? g : tf.mul(damp, g);
            next = tf.add(tf.mul(buf, mu), scaled);
            buf.assign(next);
          }
          g = this.nesterov ? tf.add(g, tf.mul(mu, next)) : next;
        }
        w.assign(tf.add(w, tf.mul(negLr, g)));
      }
    });
    this.steps++;
  }

  /** {@link step} on the native backend: the same arithmetic, one in-place native call each. */
  private stepInPlace(
    native: NonNullable<ReturnType<typeof currentNative>>,
    grads: Record<string, tf.Tensor> | tf.NamedTensorMap,
    lr: number,
  ): void {
    for (const [name, w] of this.params) {
      const g = grads[name];
      if (g === undefined || g === null) continue;
      let buf: tf.Variable | null = null;
      let first = false;
      if (this.momentum !== 0) {
        buf = this.buffers.get(name) ?? null;
        if (buf === null) {
          const zeros = tf.zeros(w.shape);
          buf = tf.variable(zeros, false);
          zeros.dispose();
          this.buffers.set(name, buf);
          first = true;
        }
      }
      sgdInPlace(native, w, g, buf, first, {
        lr,
        momentum: this.momentum,
        weightDecay: this.decays(w) ? this.weightDecay : 0,
        dampening: this.dampening,
        nesterov: this.nesterov,
      });
    }
  }

  /** The optimiser's state as plain arrays, for a checkpoint. */
  async state(): Promise<SGDState> {
    const buffers: SGDState['buffers'] = {};
    for (const [name, buf] of this.buffers)
      buffers[name] = { shape: [...buf.shape], values: Array.from(await buf.data()) };
    return { step: this.steps, buffers };
  }

  /** Restores {@link state}'s output (replacing the current buffers). */
  loadState(state: SGDState): void {
    for (const [name, { shape, values }] of Object.entries(state.buffers)) {
      const w = this.params.get(name);
      if (!w) throw new RangeError(`SGD.loadState: buffer for unknown parameter '${name}'`);
      if (!tf.util.arraysEqual(shape, w.shape))
        throw new RangeError(
          `SGD.loadState: buffer of '${name}' has shape [${shape}], parameter [${w.shape}]`,
        );
      if (values.length !== tf.util.sizeFromShape(shape))
        throw new RangeError(`SGD.loadState: buffer of '${name}' has ${values.length} values`);
    }
    this.disposeBuffers();
    for (const [name, { shape, values }] of Object.entries(state.buffers))
      this.buffers.set(name, tf.variable(tf.tensor(values, shape, 'float32'), false));
    this.steps = state.step;
  }

  private disposeBuffers(): void {
    for (const buf of this.buffers.values()) buf.dispose();
    this.buffers.clear();
  }

  /** Frees the momentum buffers (not the parameters). */
  dispose(): void {
    this.disposeBuffers();
  }
}
