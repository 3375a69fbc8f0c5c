/**
 * CIFAR-10-S (ops-spec §3): EM noise, then the OPS pixel searched on the clean images written
 * over it. `objective` and `pixels` choose that pixel as they do for --method ops.
 */
import type { Protected, MethodInput } from './method.js';
import { emNoise, type EmOptions } from './em.js';
import { noisyResult } from './noise.js';
import { type OpsOptions, searchPixels } from './ops.js';

export async function cifar10s(
  input: MethodInput,
  o: EmOptions & OpsOptions,
  checkpointDir: string,
  inputs: Array<string | undefined>,
): Promise<Protected> {
  const { train, noise } = await emNoise(input, o, checkpointDir, inputs);
  const result = await searchPixels({ train }, o);
  const ops = { result, objective: o.objective ?? 'official', pixels: o.pixels ?? 1 };
  return noisyResult(train, noise, o.epsilon, ops);
}
