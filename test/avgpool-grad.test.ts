/**
 * The average-pool gradient where windows overlap the padding (src/nn/backends/avgpool-grad.ts): on every
 * backend it equals a hand-written reference, Σ over the windows holding a pixel of
 * dy / (that window's pixels inside the image), the same count the forward pass divides by.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine, type BackendName } from '../src/nn/engine.js';
import { random, webgpuSkipReason } from './helpers.js';
import { noNative } from './native-helpers.js';

interface Case {
  h: number;
  w: number;
  c: number;
  size: number;
  stride: number;
  pad: 'same' | 'valid';
}

/** Odd sizes under `same` (partial windows), and controls with none. */
const CASES: Case[] = [
  { h: 3, w: 3, c: 2, size: 2, stride: 2, pad: 'same' },
  { h: 7, w: 5, c: 3, size: 2, stride: 2, pad: 'same' },
  { h: 1, w: 1, c: 4, size: 2, stride: 2, pad: 'same' },
  { h: 6, w: 7, c: 2, size: 3, stride: 1, pad: 'same' },
  { h: 5, w: 5, c: 2, size: 3, stride: 2, pad: 'same' },
  { h: 8, w: 8, c: 2, size: 2, stride: 2, pad: 'same' },
  { h: 7, w: 7, c: 2, size: 3, stride: 2, pad: 'valid' },
];

/** d/dx of Σ w·avgPool(x), by definition (N = 1). */
function reference(k: Case, weights: Float32Array): Float32Array {
  const out = (n: number) =>
    k.pad === 'same' ? Math.ceil(n / k.stride) : Math.floor((n - k.size) / k.stride) + 1;
  const [oh, ow] = [out(k.h), out(k.w)];
  const padTotal = (n: number, o: number) => Math.max((o - 1) * k.stride + k.size - n, 0);
  const top = k.pad === 'same' ? Math.floor(padTotal(k.h, oh) / 2) : 0;
  const left = k.pad === 'same' ? Math.floor(padTotal(k.w, ow) / 2) : 0;
  const dx = new Float32Array(k.h * k.w * k.c);
  for (let oy = 0; oy < oh; oy++)
    for (let ox = 0; ox < ow; ox++) {
      const cells: number[] = [];
      for (let y = oy * k.stride - top; y < oy * k.stride - top + k.size; y++)
        for (let x = ox * k.stride - left; x < ox * k.stride - left + k.size; x++)
          if (y >= 0 && y < k.h && x >= 0 && x < k.w) cells.push(y * k.w + x);
      for (let ch = 0; ch < k.c; ch++) {
        const g = weights[(oy * ow + ox) * k.c + ch] / cells.length;
        for (const p of cells) dx[p * k.c + ch] += g;
      }
    }
  return dx;
}

const BACKENDS: { backend: BackendName; skip: string | false }[] = [
  { backend: 'cpu', skip: false },
  { backend: 'wasm', skip: false },
  { backend: 'native', skip: noNative() },
  { backend: 'webgpu', skip: await webgpuSkipReason() },
];

for (const { backend, skip } of BACKENDS)
  describe(`average-pool gradient on ${backend}`, { skip }, () => {
    for (const [i, k] of CASES.entries())
      it(`${k.h}×${k.w}×${k.c}, pool ${k.size} stride ${k.stride} ${k.pad}`, async () => {
        await initEngine(backend);
        const x = tf.tensor4d(random(k.h * k.w * k.c, 40 + i), [1, k.h, k.w, k.c]);
        const shape = tf.avgPool(x, k.size, k.stride, k.pad).shape;
        const weights = random(
          shape.reduce((a, b) => a * b, 1),
          60 + i,
        );
        const wt = tf.tensor(weights, shape);
        const g = tf.grad((v: tf.Tensor) =>
          tf.sum(tf.mul(tf.avgPool(v as tf.Tensor4D, k.size, k.stride, k.pad), wt)),
        )(x);
        const got = (await g.data()) as Float32Array;
        const want = reference(k, weights);
        for (let j = 0; j < want.length; j++)
          assert.ok(
            Math.abs(got[j] - want[j]) <= 1e-5,
            `element ${j}: ${got[j]}, expected ${want[j]}`,
          );
        tf.dispose([x, wt, g]);
      });
  });
