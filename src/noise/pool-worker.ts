/** Worker side of ./pool.ts: its own engine and surrogate replica; descends its share of a batch. */
import { parentPort } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine } from '../nn/engine.js';
import { descendBatch } from './descend.js';
import type { PoolReply, PoolRequest } from './pool.js';

const port = parentPort;
if (port === null) throw new Error('pool-worker runs in a worker thread');
let model: tfl.LayersModel | undefined;

async function handle(req: PoolRequest): Promise<{ ok: true; noise?: Float32Array }> {
  switch (req.kind) {
    case 'init':
      await initEngine(req.backend);
      model = await tfl.models.modelFromJSON({
        modelTopology: JSON.parse(req.model) as tf.io.ModelJSON['modelTopology'],
      } as tf.io.ModelJSON);
      return { ok: true };
    case 'weights': {
      const m = model;
      if (m === undefined) throw new Error('no model yet');
      const ts = req.weights.map((w, i) => tf.tensor(w, m.weights[i].shape as number[]));
      m.setWeights(ts);
      tf.dispose(ts);
      return { ok: true };
    }
    case 'descend': {
      if (model === undefined) throw new Error('no model yet');
      const noise = await descendBatch(
        model,
        req.clean,
        req.start,
        req.labels,
        req.shape,
        req.classes,
        req.params,
      );
      return { ok: true, noise };
    }
    case 'close':
      model?.dispose();
      model = undefined;
      return { ok: true };
  }
}

// One request at a time, in order; each reply carries its request's id (../nn/worker-link.ts).
let queue: Promise<void> = Promise.resolve();
port.on('message', (req: PoolRequest & { id: number }) => {
  queue = queue.then(() =>
    handle(req).then(
      (r) => {
        const reply: PoolReply = { ...r, id: req.id };
        port.postMessage(reply, r.noise ? [r.noise.buffer as ArrayBuffer] : []);
      },
      (e: unknown) => {
        const reply: PoolReply = {
          ok: false,
          id: req.id,
          message: e instanceof Error ? e.message : String(e),
        };
        port.postMessage(reply);
      },
    ),
  );
});
