/**
 * Sample-wise EM's noise pass over worker threads: each worker starts its own engine and a replica
 * of the surrogate, gets the surrogate's weights once per round, and descends its share of every
 * batch (./descend.ts). The pass is independent per image (inference mode), so the noise equals
 * the single-thread result up to float rounding.
 */
import { Worker } from 'node:worker_threads';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import type { BackendName } from '../nn/engine.js';
import { WorkerLink } from '../nn/worker-link.js';
import type { DescendParams } from './descend.js';

export type PoolRequest =
  | { kind: 'init'; model: string; backend: BackendName }
  | { kind: 'weights'; weights: Float32Array[] }
  | {
      kind: 'descend';
      clean: Uint8Array;
      start: Float32Array;
      labels: Int32Array;
      shape: [number, number, number, number];
      classes: number;
      params: DescendParams;
    }
  | { kind: 'close' };

/** A worker's answer, with the id of the request it answers (./pool-worker.ts). */
export type PoolReply = { id: number } & (
  { ok: true; noise?: Float32Array } | { ok: false; message: string }
);

export interface NoisePool {
  readonly workers: number;
  setWeights(model: LayersModel): Promise<void>;
  /** Like descendBatch, with the batch split over the workers. */
  descend(
    clean: Uint8Array,
    start: Float32Array,
    labels: Int32Array,
    shape: [number, number, number, number],
    classes: number,
    params: DescendParams,
  ): Promise<Float32Array>;
  close(): Promise<void>;
}

export async function createNoisePool(
  model: LayersModel,
  workers: number,
  backend: BackendName,
): Promise<NoisePool> {
  const links = Array.from(
    { length: workers },
    () =>
      new WorkerLink<PoolRequest, PoolReply>(
        new Worker(new URL('./pool-worker.js', import.meta.url)),
        'EM worker',
        (r) => (r.ok ? null : `EM worker: ${r.message}`),
      ),
  );
  const close = async () => {
    await Promise.all(links.map((l) => l.request({ kind: 'close' }).catch(() => undefined)));
    await Promise.all(links.map((l) => l.worker.terminate()));
  };
  try {
    const json = model.toJSON(null, true) as string;
    await Promise.all(links.map((l) => l.request({ kind: 'init', model: json, backend })));
  } catch (e) {
    await close();
    throw e;
  }
  return {
    workers,
    async setWeights(m) {
      const weights = await Promise.all(
        m.weights.map(async (w) => (await w.read().data()) as Float32Array),
      );
      await Promise.all(links.map((l) => l.request({ kind: 'weights', weights })));
    },
    async descend(clean, start, labels, shape, classes, params) {
      const [n, h, w, c] = shape;
      const per = h * w * c;
      const out = new Float32Array(n * per);
      const parts = links.map((l, i) => {
        const a = Math.floor((i * n) / links.length);
        const b = Math.floor(((i + 1) * n) / links.length);
        if (b <= a) return Promise.resolve();
        return l
          .request({
            kind: 'descend',
            clean: clean.slice(a * per, b * per),
            start: start.slice(a * per, b * per),
            labels: labels.slice(a, b),
            shape: [b - a, h, w, c],
            classes,
            params,
          })
          .then((r) => {
            if (r.ok && r.noise) out.set(r.noise, a * per);
          });
      });
      await Promise.all(parts);
      return out;
    },
    close,
  };
}
