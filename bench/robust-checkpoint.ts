/**
 * PGD-20 robust accuracy (src/train/robust.ts: ε = 8/255, step 2/255, random start, eval mode) of
 * a trained checkpoint on the first N images of a dataset's training or test split, beside the
 * plain accuracy on the same images.
 *
 *   npm run build
 *   node dist/bench/robust-checkpoint.js CHECKPOINT DATA [--split train|test] [--n 1000]
 *
 * Why: an adversarially trained model's robust accuracy on clean test images says whether
 * adversarial training worked only where the model classifies clean images at all. Trained on a
 * protected copy it does not (that is the protection), so its clean robust accuracy is bounded by
 * a clean accuracy near chance; its robust accuracy on the images it was trained on (the
 * protected ones) is the evidence that the attack was resisted. Prints one JSON line.
 */
import { loadCheckpoint, writeWeightsByName } from '../src/nn/checkpoint.js';
import { initEngine, usePrecision } from '../src/nn/engine.js';
import { buildModel } from '../src/nn/models/index.js';
import { evaluate } from '../src/train/loop.js';
import { openTrainingData } from '../src/train/data.js';
import { robustAccuracy } from '../src/train/robust.js';

interface SavedConfig {
  model: string;
  seed: number;
  precision?: 'fp32' | 'bf16';
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (name: string, dflt: string) => {
    const i = args.indexOf(name);
    if (i < 0) return dflt;
    const v = args[i + 1];
    args.splice(i, 2);
    return v;
  };
  const split = flag('--split', 'train');
  const n = Number(flag('--n', '1000'));
  const [ckptDir, dataDir] = args;
  if (!ckptDir || !dataDir || (split !== 'train' && split !== 'test') || !(n > 0))
    throw new Error('usage: robust-checkpoint.js CHECKPOINT DATA [--split train|test] [--n N]');
  const backend = await initEngine('native');
  const ck = await loadCheckpoint<SavedConfig, unknown>(ckptDir);
  usePrecision(ck.meta.config.precision ?? 'fp32');
  const data = await openTrainingData(dataDir);
  const ds = split === 'train' ? data.train : data.test;
  const model = buildModel(ck.meta.config.model, ds, ds.classNames.length, {
    seed: ck.meta.config.seed,
  });
  writeWeightsByName(model, ck.weights, ckptDir);
  const m = Math.min(n, ds.labels.length);
  const size = ds.height * ds.width * ds.channels;
  const first = {
    ...ds,
    images: ds.images.subarray(0, m * size),
    labels: ds.labels.subarray(0, m),
  };
  const t0 = performance.now();
  const plain = await evaluate(model, first, 250);
  const robust = await robustAccuracy(model, first, ck.meta.config.seed, m);
  console.log(
    JSON.stringify({
      checkpoint: ckptDir,
      data: dataDir,
      split,
      images: m,
      backend,
      precision: ck.meta.config.precision ?? 'fp32',
      epoch: ck.meta.epoch,
      accuracy: plain,
      robustAccuracy: robust,
      seconds: (performance.now() - t0) / 1000,
    }),
  );
}

main().catch((e: unknown) => {
  console.error(`robust-checkpoint: ${e instanceof Error ? e.message : String(e)}`);
  process.exit(1);
});
