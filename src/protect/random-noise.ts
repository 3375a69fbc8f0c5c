/** Random noise: uniform ±ε per value (a baseline that should not protect). */
import { NOISE_FILE } from '../noise/npy.js';
import { randomNoiseChunked } from '../noise/random.js';
import { yieldToSignals } from '../output.js';
import type { MethodInput, Protected } from './method.js';
import { inMemory, noiseFromFile, noiseShape, noisyResult, type NoiseOptions } from './noise.js';

export async function randomNoiseMethod(input: MethodInput, o: NoiseOptions): Promise<Protected> {
  const train = await inMemory(input.train);
  const n = o.noiseFile
    ? await noiseFromFile(train, o, o.noiseFile)
    : {
        noise: await randomNoiseChunked(train.images, o.epsilon, o.seed, yieldToSignals),
        classNoise: null,
        record: {
          file: NOISE_FILE,
          shape: noiseShape(train),
          epsilon: o.epsilon,
          generator: 'random' as const,
          seed: o.seed,
        },
      };
  return noisyResult(train, n, o.epsilon, null);
}
