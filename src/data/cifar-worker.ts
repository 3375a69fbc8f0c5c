/** Worker side of the two-core CIFAR read: decodes its share of the files, posts their hashes. */
import { parentPort, workerData } from 'node:worker_threads';
import { OnepixelError } from '../errors.js';
import { type DecodeJob, type DecodeTarget, type Layout, decodeFiles } from './cifar-decode.js';

const { jobs, targets, layout } = workerData as {
  jobs: DecodeJob[];
  targets: DecodeTarget[];
  layout: Layout;
};
try {
  parentPort?.postMessage({ files: await decodeFiles(jobs, targets, layout) });
} catch (e) {
  parentPort?.postMessage({ error: (e as Error).message, user: e instanceof OnepixelError });
}
