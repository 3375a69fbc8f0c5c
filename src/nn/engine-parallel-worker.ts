/**
 * Worker side of ./engine-parallel.ts: its own engine and model replica; answers gradient requests
 * for its share of each batch.
 */
import { parentPort, workerData } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine, type BackendName } from './engine.js';
import type { ParallelReply, ParallelRequest } from './engine-parallel.js';

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
      let grads: Float32Array[] = [];
      let state: Float32Array[] = [];
      tf.tidy(() => {
        m.setWeights(req.weights.map((w, i) => tf.tensor(w, m.weights[i].shape as number[])));
        const x = tf.tensor(req.x, req.shape);
        const y = tf.oneHot(tf.tensor1d(req.labels, 'int32'), req.classes);
        const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
        const { value, grads: g } = tf.variableGrads(
          () =>
            tf.losses.softmaxCrossEntropy(
              y,
              m.apply(x, { training: true }) as tf.Tensor,
            ) as tf.Scalar,
          vars,
        );
        loss = value.dataSync()[0];
        grads = vars.map((v) => new Float32Array(g[v.name].dataSync()));
        state = m.weights
          .filter((w) => !trainable.has(w))
          .map((w) => new Float32Array(w.read().dataSync()));
      });
      reply({ kind: 'grads', id: req.id, loss, grads, state }, [
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
