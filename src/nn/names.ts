/**
 * The names of the backends and models, without loading them: the CLI lists these in its help
 * and checks flags against them before any engine (tfjs) is imported.
 */
export type BackendName = 'auto' | 'wasm' | 'cpu' | 'webgpu' | 'native';

/** Every backend name `initEngine` knows, in the order help texts list them. */
export const BACKENDS: readonly BackendName[] = ['auto', 'wasm', 'cpu', 'webgpu', 'native'];

/**
 * Arithmetic of the native backend's convolutions and matrix products: `fp32`, or `bf16` (inputs
 * rounded to bfloat16, products accumulated and written in fp32; master weights, optimiser state,
 * batch-norm statistics and the loss stay fp32); `auto` is bf16 where the CPU runs it natively.
 */
export type PrecisionName = 'fp32' | 'bf16' | 'auto';
export type Precision = Exclude<PrecisionName, 'auto'>;
export const PRECISIONS: readonly PrecisionName[] = ['fp32', 'bf16', 'auto'];

export const MODELS = [
  'lenet5',
  'smallcnn',
  'resnet18',
  'resnet50',
  'vgg16',
  'densenet121',
  'wrn28',
  'airbench94',
] as const;
export type ModelName = (typeof MODELS)[number];
