/** Results of a training run: JSON (for scripts) and a per-epoch CSV log, written atomically. */
import type { EpochRecord, TrainConfig } from './loop.js';
import { VERSION } from '../version.js';

export interface TrainResults {
  model: string;
  strategy: string;
  epochs: number;
  backend: string;
  /** The arithmetic of the native backend's convolutions and matrix products (config.precision). */
  precision: 'fp32' | 'bf16';
  data: string;
  /**
   * The native backend's thread count (absent elsewhere): a run repeats exactly only at the same
   * count (oneDNN's reductions add in its order), though it is not part of an audit cell's identity.
   */
  threads?: number;
  testAccuracy: number[];
  finalTestAccuracy: number | null;
  /** Adversarially trained runs: accuracy under PGD-20 on the first test images (robust.ts). */
  finalRobustAccuracy?: number;
  trainAccuracy: number[];
  trainLoss: number[];
  imagesPerSecond: number | null;
  seconds: number;
  finished: boolean;
  config: TrainConfig;
  preset: string | null;
  version: string;
}

export function summarize(
  config: TrainConfig,
  history: EpochRecord[],
  extra: {
    backend: string;
    data: string;
    strategy: string;
    finished: boolean;
    preset: string | null;
    threads?: number | null;
  },
): TrainResults {
  const last = history.at(-1);
  const seconds = history.reduce((a, r) => a + r.seconds, 0);
  const images = history.reduce((a, r) => a + r.imagesPerSecond * r.seconds, 0);
  return {
    model: config.model,
    strategy: extra.strategy,
    epochs: config.epochs,
    backend: extra.backend,
    precision: config.precision ?? 'fp32',
    data: extra.data,
    ...(typeof extra.threads === 'number' ? { threads: extra.threads } : {}),
    testAccuracy: history.map((r) => r.testAccuracy),
    // With test-time augmentation (fast94), the final accuracy is the augmented one.
    finalTestAccuracy: last ? (last.ttaAccuracy ?? last.testAccuracy) : null,
    ...(last?.robustAccuracy !== undefined ? { finalRobustAccuracy: last.robustAccuracy } : {}),
    trainAccuracy: history.map((r) => r.trainAccuracy),
    trainLoss: history.map((r) => r.trainLoss),
    imagesPerSecond: seconds > 0 ? images / seconds : null,
    seconds,
    finished: extra.finished,
    config,
    preset: extra.preset,
    version: VERSION,
  };
}

export function csvLog(history: EpochRecord[]): string {
  const head = 'epoch,lr,trainLoss,trainAccuracy,testAccuracy,seconds,imagesPerSecond';
  const rows = history.map((r) =>
    [r.epoch, r.lr, r.trainLoss, r.trainAccuracy, r.testAccuracy, r.seconds, r.imagesPerSecond]
      .map((v) => (Number.isInteger(v) ? String(v) : v.toPrecision(6)))
      .join(','),
  );
  return [head, ...rows].join('\n') + '\n';
}

export { writeFileAtomic } from '../output.js';
