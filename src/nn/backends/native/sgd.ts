/**
 * SGD-momentum updates in place on the native backend: one native call per parameter updates the
 * weight and its momentum buffer with the same float32 operations, in the same order, as
 * src/nn/optim.ts's tensor path (PyTorch's `torch.optim.SGD`), instead of five tfjs ops and two
 * new tensors per parameter.
 *
 * A tensor updated in place must not share its memory with any other tensor: before the first
 * update (and whenever the variable's data changed hands or is referenced twice) the variable is
 * given a private copy, and the backend hands out copies when it is read.
 */
import * as tf from '@tensorflow/tfjs-core';
import { NATIVE, type NativeBackend } from './backend.js';

export interface SgdHyper {
  lr: number;
  momentum: number;
  /** 0 for a parameter that is not decayed. */
  weightDecay: number;
  dampening: number;
  nesterov: boolean;
}

/**
 * The variable's values, made private to it first when they might be shared: not yet marked, or
 * another tensor (a clone, a reshape, a tensor saved for a gradient) holds the same data (the
 * backend's reference count covers every tensor of a data id; tfjs' engine keeps none of its own).
 */
function privateValues(b: NativeBackend, v: tf.Variable): Float32Array {
  if (!b.isMutable(v.dataId) || b.refCount(v.dataId) !== 1) {
    const copy = tf.tensor(b.f32(v).slice(), v.shape, 'float32');
    v.assign(copy);
    copy.dispose();
    b.markMutable(v.dataId);
  }
  return b.f32(v);
}

/** The native backend, when it is the current one. */
export function currentNative(): NativeBackend | null {
  return tf.getBackend() === NATIVE ? (tf.backend() as NativeBackend) : null;
}

/**
 * One update of `w` (and `buf`, its momentum buffer, made by the caller with the right shape):
 * `first` is the buffer's first step (buf ← g).
 */
export function sgdInPlace(
  b: NativeBackend,
  w: tf.Variable,
  g: tf.Tensor,
  buf: tf.Variable | null,
  first: boolean,
  h: SgdHyper,
): void {
  const wv = privateValues(b, w);
  const bv = buf === null ? new Float32Array(0) : privateValues(b, buf);
  const gv = g.dtype === 'float32' ? b.f32(g) : tf.tidy(() => b.f32(tf.cast(g, 'float32')).slice());
  b.addon.sgd(
    wv,
    gv,
    bv,
    h.lr,
    buf === null ? 0 : h.momentum,
    h.weightDecay,
    h.dampening,
    h.nesterov,
    first,
  );
}
