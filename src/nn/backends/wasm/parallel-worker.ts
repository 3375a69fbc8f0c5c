/**
 * Worker side of ./parallel.ts: its own engine and model replica; answers gradient requests
 * for its share of each batch.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine, type BackendName } from '../../engine.js';
import type { ParallelReply, ParallelRequest } from './parallel.js';

const port = parentPort;
if (port === null) throw new Error('engine-parallel-worker runs in a worker thread');
const { backend } = workerData as { backend: BackendName };

let model: tfl.LayersModel | undefined;

function reply(message: ParallelReply, transfer: ArrayBuffer[] = []): void {
  port?.postMessage(message, transfer);
}

async function handle(req: ParallelRequest): Promise<void> {
  switch (req.kind) {
    case 'init': {
      const name = await initEngine(backend);
      model = await tfl.models.modelFromJSON({
        modelTopology: JSON.parse(req.model) as tf.io.ModelJSON['modelTopology'],
      } as tf.io.ModelJSON);
      reply({
        kind: 'ready',
        id: req.id,
        backend: name,
        weights: model.weights.length,
        trainable: model.trainableWeights.length,
      });
      return;
    }
    case 'grads': {
      const m = model;
      if (m === undefined) throw new Error('training worker: no model yet');
      const trainable = new Set(m.trainableWeights);
      // Results leave the tidy through these (returning typed arrays from a tidy makes tfjs walk
      // every element looking for tensors).
      let loss = 0;
      let correct = 0;
      let grads: Float32Array[] = [];
      let state: Float32Array[] = [];
      tf.tidy(() => {
        m.setWeights(req.weights.map((w, i) => tf.tensor(w, m.weights[i].shape as number[])));
      });
      const n = req.labels.length;
      const per = req.x.length / Math.max(n, 1);
      // The share in micro-batches (the wasm heap holds about 32 ResNet-18 images); gradients and
      // loss are summed weighted by micro-batch size, so the result is the share's mean.
      const micro = Math.max(1, Math.min(n, req.micro ?? n));
      const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
      grads = vars.map((v) => new Float32Array(v.size));
      for (let start = 0; start < n; start += micro) {
        const end = Math.min(n, start + micro);
        const weight = (end - start) / n;
        tf.tidy(() => {
          const x = tf.tensor(req.x.subarray(start * per, end * per), [
            end - start,
            ...req.shape.slice(1),
          ]);
          const labels = req.labels.subarray(start, end);
          // Soft targets (mixup, cutmix) when given, else one-hot labels.
          const y = req.targets
            ? tf.tensor2d(req.targets.subarray(start * req.classes, end * req.classes), [
                end - start,
                req.classes,
              ])
            : tf.oneHot(tf.tensor1d(labels, 'int32'), req.classes);
          let predicted: tf.Tensor | null = null;
          const { value, grads: g } = tf.variableGrads(() => {
            const logits = m.apply(x, { training: true }) as tf.Tensor;
            predicted = tf.keep(tf.argMax(logits, -1));
            return tf.neg(tf.mean(tf.sum(tf.mul(y, tf.logSoftmax(logits)), -1))) as tf.Scalar;
          }, vars);
          const pred = (predicted as unknown as tf.Tensor).dataSync();
          (predicted as unknown as tf.Tensor).dispose();
          for (let i = 0; i < pred.length; i++) if (pred[i] === labels[i]) correct++;
          loss += value.dataSync()[0] * weight;
          vars.forEach((v, j) => {
            const d = g[v.name].dataSync();
            const sum = grads[j];
            for (let k = 0; k < sum.length; k++) sum[k] += d[k] * weight;
          });
        });
      }
      tf.tidy(() => {
        state = m.weights
          .filter((w) => !trainable.has(w))
          .map((w) => new Float32Array(w.read().dataSync()));
      });
      reply({ kind: 'grads', id: req.id, loss, correct, grads, state }, [
        ...grads.map((g) => g.buffer),
        ...state.map((s) => s.buffer),
      ] as ArrayBuffer[]);
      return;
    }
    case 'close':
      model?.dispose();
      model = undefined;
      reply({ kind: 'closed', id: req.id });
      return;
  }
}

// One request at a time, in order.
let queue: Promise<void> = Promise.resolve();
port.on('message', (req: ParallelRequest) => {
  queue = queue.then(() =>
    handle(req).catch((e: unknown) => {
      reply({ kind: 'error', id: req.id, message: e instanceof Error ? e.message : String(e) });
    }),
  );
});
