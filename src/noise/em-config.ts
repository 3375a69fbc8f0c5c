/**
 * What decides error-minimizing noise and what each round reports, with the defaults: the types
 * ./em.ts, ./classwise.ts, ./checkpoint.ts and the manifest share (a module below all of them, so
 * none imports another for its types), readable by the CLI for its help and flags before any
 * engine (tfjs) is imported.
 */
import type { ModelName } from '../nn/names.js';
import { DEFAULT_EPSILON } from './bounds.js';

export const EM_MODES = ['samplewise', 'classwise'] as const;
export type EmMode = (typeof EM_MODES)[number];

/** Everything that decides the noise; a resumed run must have the same (maxRounds excepted). */
export interface EmConfig {
  mode: EmMode;
  epsilon: number;
  /** PGD descent steps per noise pass, and their size. */
  steps: number;
  stepSize: number;
  /** The surrogate and its SGD (constant learning rate). */
  model: ModelName;
  trainSteps: number;
  batchSize: number;
  lr: number;
  momentum: number;
  weightDecay: number;
  /** Images per PGD batch (inference mode: the noise does not depend on it, up to rounding). */
  noiseBatch: number;
  stopAccuracy: number;
  maxRounds: number;
  seed: number;
  /** bf16 compute in the native backend's convolutions and matrix products; absent: fp32. */
  precision?: 'bf16';
}

/** One finished round. */
export interface EmRound {
  round: number;
  /** Mean loss of the surrogate's training steps (on perturbed images). */
  trainLoss: number;
  /** After the noise pass: surrogate loss and accuracy on the whole perturbed training set. */
  loss: number;
  accuracy: number;
  seconds: number;
}

export const EM_DEFAULTS: EmConfig = {
  mode: 'samplewise',
  epsilon: DEFAULT_EPSILON,
  steps: 20,
  stepSize: 0.8 / 255,
  model: 'lenet5',
  trainSteps: 10,
  batchSize: 128,
  lr: 0.05,
  momentum: 0.9,
  weightDecay: 5e-4,
  noiseBatch: 500,
  stopAccuracy: 0.99,
  maxRounds: 20,
  seed: 0,
};
