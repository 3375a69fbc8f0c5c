/** Batch limits of the wasm engine, shared by the train loop and EM's surrogate. */
import type { ModelName } from './models/index.js';

/**
 * The largest batch a training step of each model runs at once on wasm, whose heap is 4 GB:
 * ResNet-18 at batch 128 aborts inside XNNPACK (measured); larger batches are split into
 * micro-batches whose gradients are accumulated (batch norm then sees micro-batch statistics, as
 * under data-parallel training). The limits for the deeper models are conservative guesses.
 */
export const MICRO_BATCH: Partial<Record<ModelName, number>> = {
  resnet18: 32,
  resnet50: 16,
  vgg16: 32,
  densenet121: 16,
  wrn28: 16,
};
