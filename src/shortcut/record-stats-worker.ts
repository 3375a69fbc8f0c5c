/**
 * Worker side of RecordStatsPool: sums the chunk in the shared buffer it is told of, says when
 * that buffer is free again, and posts the finished statistics when told there are no more.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { RecordStatsAccumulator, type RecordLayout } from './record-stats.js';

const { layout, classes, withCross, slots } = workerData as {
  layout: RecordLayout;
  classes: number;
  withCross: boolean;
  slots: Uint8Array[];
};
const acc = new RecordStatsAccumulator(layout, classes, withCross);
parentPort?.on('message', (m: { slot?: number; length?: number; finish?: true }) => {
  if (m.slot !== undefined) {
    acc.addRecords(slots[m.slot].subarray(0, m.length));
    parentPort?.postMessage({ done: m.slot });
  }
  if (m.finish) {
    const stats = acc.finish();
    const transfer = [stats.counts.buffer, stats.sum.buffer, stats.sumSq.buffer];
    if (stats.cross) transfer.push(stats.cross.buffer);
    parentPort?.postMessage({ stats }, transfer as ArrayBuffer[]);
  }
});
