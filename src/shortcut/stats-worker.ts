/** Worker side of datasetStatsParallel: sums one range of images and posts the partial stats. */
import { parentPort, workerData } from 'node:worker_threads';
import type { StatsJob } from './parallel-stats.js';
import { StatsAccumulator } from './stats.js';

const job = workerData as StatsJob;
const acc = new StatsAccumulator(job, job.classes, job.withCross);
const size = job.height * job.width * job.channels;
for (let i = job.start; i < job.end; i++) {
  acc.add(job.images.subarray(i * size, (i + 1) * size), job.labels[i]);
}
const stats = acc.finish();
const transfer = [stats.counts.buffer, stats.sum.buffer, stats.sumSq.buffer];
if (stats.cross) transfer.push(stats.cross.buffer);
parentPort?.postMessage(stats, transfer as ArrayBuffer[]);
