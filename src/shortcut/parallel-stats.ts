/**
 * The statistics pass split over worker threads: each worker sums a contiguous range of images
 * from shared memory, and the partial sums are added. Falls back to one thread for small data.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Dataset } from '../data/dataset.js';
import { addStats, type ClassStats, datasetStats } from './stats.js';

/** Below this many pixel bytes, starting workers costs more than it saves. */
const MIN_PARALLEL_BYTES = 16 << 20;

export interface StatsJob {
  images: Uint8Array;
  labels: Int32Array;
  height: number;
  width: number;
  channels: number;
  classes: number;
  withCross: boolean;
  start: number;
  end: number;
}

/** Copies bytes into shared memory unless they already are there. */
export function shared(bytes: Uint8Array): Uint8Array {
  if (bytes.buffer instanceof SharedArrayBuffer) return bytes;
  const out = new Uint8Array(new SharedArrayBuffer(bytes.length));
  out.set(bytes);
  return out;
}

/** Dataset statistics using up to `threads` threads (default: the machine's cores). */
export async function datasetStatsParallel(
  ds: Dataset,
  withCross: boolean,
  threads = availableParallelism(),
): Promise<ClassStats> {
  const n = ds.labels.length;
  if (threads < 2 || ds.images.length < MIN_PARALLEL_BYTES) return datasetStats(ds, withCross);
  const images = shared(ds.images);
  const labels = new Int32Array(new SharedArrayBuffer(n * 4));
  labels.set(ds.labels);
  const per = Math.ceil(n / threads);
  const jobs: StatsJob[] = [];
  for (let t = 0; t < threads && t * per < n; t++) {
    jobs.push({
      images,
      labels,
      height: ds.height,
      width: ds.width,
      channels: ds.channels,
      classes: ds.classNames.length,
      withCross,
      start: t * per,
      end: Math.min(n, (t + 1) * per),
    });
  }
  const parts = await Promise.all(
    jobs.map(
      (job) =>
        new Promise<ClassStats>((resolve, reject) => {
          const worker = new Worker(new URL('./stats-worker.js', import.meta.url), {
            workerData: job,
          });
          worker.once('message', (s: ClassStats) => {
            resolve(s);
            void worker.terminate();
          });
          worker.once('error', reject);
        }),
    ),
  );
  return parts.slice(1).reduce(addStats, parts[0]);
}
