/**
 * Data-parallel training on several wasm instances, one per worker thread.
 *
 * tfjs' wasm backend runs one thread in Node, so a 2-core machine trains at most half as fast as it
 * could. Here each worker thread starts its own wasm engine and holds a replica of the model (sent
 * as tfjs-layers JSON): a step sends every worker the current weights and its share of the batch,
 * each returns the gradients of the mean softmax cross-entropy on its share, and the main thread
 * averages them (weighted by share size) and applies the optimizer to its own model.
 *
 * As with PyTorch's DistributedDataParallel, batch normalisation uses per-share batch statistics;
 * its moving averages are the workers' values averaged. Everything else equals a single-process
 * step on the whole batch, up to float rounding.
 */
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { fail } from '../../../errors.js';
import type { BackendName } from '../../engine.js';
import { WorkerLink } from '../../worker-link.js';

/** What the main thread sends a worker. */
export type ParallelRequest =
  | { kind: 'init'; id: number; model: string }
  | {
      kind: 'grads';
      id: number;
      weights: Float32Array[];
      x: Float32Array;
      shape: number[];
      labels: Int32Array;
      /** Soft targets, n×classes (mixup, cutmix); one-hot labels when absent. */
      targets?: Float32Array;
      classes: number;
      /** Largest micro-batch a worker runs at once; its gradients are accumulated. */
      micro?: number;
    }
  | { kind: 'close'; id: number };

/** What a worker answers. */
export type ParallelReply =
  | { kind: 'ready'; id: number; backend: string; weights: number; trainable: number }
  | {
      kind: 'grads';
      id: number;
      loss: number;
      /** Images of the share whose arg-max prediction equals the label. */
      correct: number;
      grads: Float32Array[];
      state: Float32Array[];
    }
  | { kind: 'closed'; id: number }
  | { kind: 'error'; id: number; message: string };

/** A request without its id (the link numbers them). */
type Unnumbered = {
  [K in ParallelRequest['kind']]: Omit<Extract<ParallelRequest, { kind: K }>, 'id'>;
}[ParallelRequest['kind']];

/** Options for {@link createParallelTrainer}. */
export interface ParallelOptions {
  /** Worker threads, each with its own engine (default: the number of cores, at least 1). */
  workers?: number;
  /** The engine each worker starts (default 'wasm'). */
  backend?: BackendName;
  /** Largest micro-batch a worker runs at once (default: its whole share). */
  microBatch?: number;
}

/** A batch: NHWC float images and integer class labels. */
export interface Batch {
  x: Float32Array | tf.Tensor;
  /** Shape of `x` when it is a Float32Array: [n, height, width, channels]. */
  shape?: number[];
  labels: Int32Array | tf.Tensor;
  /** Soft targets n×classes (mixup, cutmix): the loss is cross-entropy against them. */
  targets?: Float32Array;
  classes: number;
}

export interface ParallelTrainer {
  readonly workers: number;
  /** The engine the workers run ('wasm' or 'cpu'). */
  readonly backend: string;
  /**
   * Gradients of the mean softmax cross-entropy over the whole batch, computed in the workers and
   * averaged; keyed by the main model's variable names (ready for `optimizer.applyGradients`). The
   * caller owns (and disposes) the tensors. Also copies the workers' averaged non-trainable state
   * (batch-norm moving statistics) into the main model.
   */
  gradients(batch: Batch): Promise<{ loss: number; correct: number; grads: tf.NamedTensorMap }>;
  /** `gradients`, then `optimizer.applyGradients`; returns the batch's mean loss. */
  step(batch: Batch, optimizer: tf.Optimizer): Promise<number>;
  /** Stops the workers. */
  close(): Promise<void>;
}

function size(shape: (number | null)[]): number {
  return shape.reduce((a: number, b) => a * (b ?? 0), 1);
}

function toFloat32(
  x: Float32Array | tf.Tensor,
  shape: number[] | undefined,
): [Float32Array, number[]] {
  if (x instanceof Float32Array) {
    if (shape === undefined) fail('parallel training: a Float32Array batch needs its shape');
    return [x, shape];
  }
  return [Float32Array.from(x.dataSync()), x.shape];
}

function toInt32(labels: Int32Array | tf.Tensor): Int32Array {
  return labels instanceof Int32Array ? labels : Int32Array.from(labels.dataSync());
}

/**
 * Starts `workers` threads, each with its own engine and a replica of `model` (any tfjs-layers
 * model made of built-in layers). Call `close()` when done.
 */
export async function createParallelTrainer(
  model: tfl.LayersModel,
  options: ParallelOptions = {},
): Promise<ParallelTrainer> {
  const count = Math.max(1, Math.floor(options.workers ?? os.availableParallelism()));
  const backend = options.backend ?? 'wasm';
  const json = model.toJSON(null, true) as string;
  const links: WorkerLink<Unnumbered, ParallelReply>[] = [];
  for (let i = 0; i < count; i++) {
    const worker = new Worker(new URL('./parallel-worker.js', import.meta.url), {
      workerData: { backend },
    });
    links.push(
      new WorkerLink<Unnumbered, ParallelReply>(worker, 'training worker', (r) =>
        r.kind === 'error' ? r.message : null,
      ),
    );
  }
  const close = async (): Promise<void> => {
    await Promise.all(
      links.map(async (link) => {
        try {
          await link.request({ kind: 'close' });
        } catch {
          // Already gone.
        }
        await link.worker.terminate();
      }),
    );
  };
  let started: string;
  try {
    const replies = await Promise.all(links.map((l) => l.request({ kind: 'init', model: json })));
    const first = replies[0] as Extract<ParallelReply, { kind: 'ready' }>;
    if (
      first.weights !== model.weights.length ||
      first.trainable !== model.trainableWeights.length
    ) {
      fail('parallel training: the workers rebuilt a model with different weights');
    }
    started = first.backend;
  } catch (e) {
    await close();
    throw e;
  }

  const trainable = new Set(model.trainableWeights);
  const nonTrainable = model.weights.filter((w) => !trainable.has(w));

  const gradients = async (
    batch: Batch,
  ): Promise<{ loss: number; correct: number; grads: tf.NamedTensorMap }> => {
    const [x, shape] = toFloat32(batch.x, batch.shape);
    const labels = toInt32(batch.labels);
    const n = shape[0];
    if (labels.length !== n) fail(`parallel training: ${labels.length} labels for ${n} images`);
    const per = x.length / Math.max(n, 1);
    const weights = model.weights.map((w) => w.read().dataSync() as Float32Array);
    // Shares as equal as possible; workers with an empty share sit this step out.
    const shares: [number, number][] = [];
    for (let i = 0; i < count; i++) {
      const start = Math.floor((i * n) / count);
      const end = Math.floor(((i + 1) * n) / count);
      if (end > start) shares.push([start, end]);
    }
    const replies = await Promise.all(
      shares.map(([start, end], i) => {
        const xs = x.slice(start * per, end * per);
        const ls = labels.slice(start, end);
        const ts = batch.targets?.slice(start * batch.classes, end * batch.classes);
        const ws = weights.map((w) => w.slice());
        return links[i].request(
          {
            kind: 'grads',
            weights: ws,
            x: xs,
            shape: [end - start, ...shape.slice(1)],
            labels: ls,
            ...(ts ? { targets: ts } : {}),
            classes: batch.classes,
            ...(options.microBatch ? { micro: options.microBatch } : {}),
          },
          [
            xs.buffer,
            ls.buffer,
            ...(ts ? [ts.buffer] : []),
            ...ws.map((w) => w.buffer),
          ] as ArrayBuffer[],
        );
      }),
    );
    let loss = 0;
    let correct = 0;
    const gradSums = model.trainableWeights.map((w) => new Float32Array(size(w.shape)));
    const stateSums = nonTrainable.map((w) => new Float32Array(size(w.shape)));
    replies.forEach((reply, i) => {
      const r = reply as Extract<ParallelReply, { kind: 'grads' }>;
      const share = (shares[i][1] - shares[i][0]) / n;
      loss += r.loss * share;
      correct += r.correct;
      r.grads.forEach((g, j) => {
        const sum = gradSums[j];
        for (let k = 0; k < sum.length; k++) sum[k] += g[k] * share;
      });
      r.state.forEach((s, j) => {
        const sum = stateSums[j];
        for (let k = 0; k < sum.length; k++) sum[k] += s[k] * share;
      });
    });
    nonTrainable.forEach((w, j) => {
      const t = tf.tensor(stateSums[j], w.shape as number[]);
      w.write(t);
      t.dispose();
    });
    const grads: tf.NamedTensorMap = {};
    model.trainableWeights.forEach((w, j) => {
      grads[(w.read() as tf.Variable).name] = tf.tensor(gradSums[j], w.shape as number[]);
    });
    return { loss, correct, grads };
  };

  return {
    workers: count,
    backend: started,
    gradients,
    async step(batch: Batch, optimizer: tf.Optimizer): Promise<number> {
      const { loss, grads } = await gradients(batch);
      optimizer.applyGradients(grads);
      tf.dispose(Object.values(grads));
      return loss;
    },
    close,
  };
}
