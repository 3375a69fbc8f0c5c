/**
 * The names of the backends and models, without loading them: the CLI lists these in its help
 * and checks flags against them before any engine (tfjs) is imported.
 */
export type BackendName = 'auto' | 'wasm' | 'cpu' | 'webgpu' | 'native';

/** Every backend name `initEngine` knows, in the order help texts list them. */
export const BACKENDS: readonly BackendName[] = ['auto', 'wasm', 'cpu', 'webgpu', 'native'];

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
