/**
 * EM generation speed: `generateEm` (src/noise/em.ts) on the first N real CIFAR-10 training
 * images, timed per phase, in the same terms as the PyTorch peer (bench/peer_em_torch.py), so the
 * two can run side by side and be compared as ratios.
 *
 *   npm run build && node dist/bench/em.js --data-dir DIR [--images N] [--backend B]
 *       [--rounds R] [--train-steps T] [--noise-batch M] [--workers W]
 *
 * Defaults: all images, backend auto, 1 round, the EM defaults otherwise (sample-wise, LeNet-5
 * surrogate, 10 training steps, 20 descent steps, noise batch 500). stdout gets JSON lines: one
 * `noise` line per noise-pass batch (seconds since the pass began; a cut-short run still yields
 * a rate), one line per round with trainSeconds / noiseSeconds / evalSeconds /
 * imgStepsPerSecond (images × descent steps per second of noise pass) and the surrogate's
 * accuracy, then a summary.
 */
import os from 'node:os';
import { readCifar10 } from '../src/data/cifar.js';
import { initEngine } from '../src/nn/engine.js';
import { EM_DEFAULTS, type EmPhase, generateEm } from '../src/noise/em.js';

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const dataDir = flag('--data-dir', '../shared/data/cifar-10-batches-bin');
const rounds = Number(flag('--rounds', '1'));
const config = {
  ...EM_DEFAULTS,
  trainSteps: Number(flag('--train-steps', String(EM_DEFAULTS.trainSteps))),
  noiseBatch: Number(flag('--noise-batch', String(EM_DEFAULTS.noiseBatch))),
  maxRounds: rounds,
};
const backend = await initEngine(flag('--backend', 'auto') as Parameters<typeof initEngine>[0]);
const full = (await readCifar10(dataDir)).train;
const n = Math.min(Number(flag('--images', String(full.labels.length))), full.labels.length);
const size = full.height * full.width * full.channels;
const train = {
  ...full,
  images: full.images.subarray(0, n * size),
  labels: full.labels.subarray(0, n),
};
const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

let mark = performance.now();
let last: EmPhase | null = null;
const spent: Record<EmPhase, number> = { train: 0, noise: 0, eval: 0 };
const phaseStart: Record<EmPhase, number> = { train: 0, noise: 0, eval: 0 };
const t0 = performance.now();
const r = await generateEm(train, config, {
  workers: Number(flag('--workers', '1')),
  backend: 'wasm',
  onProgress(phase, done, total, round) {
    const now = performance.now();
    if (phase !== last) {
      if (last) spent[last] += (mark - phaseStart[last]) / 1000;
      phaseStart[phase] = mark;
      last = phase;
    }
    if (phase === 'noise')
      emit({ phase, round: round + 1, done, total, seconds: (now - phaseStart.noise) / 1000 });
    mark = now;
  },
  onRound(rec) {
    if (last) spent[last] += (mark - phaseStart[last]) / 1000;
    last = null;
    emit({
      round: rec.round,
      trainLoss: rec.trainLoss,
      accuracy: rec.accuracy,
      seconds: rec.seconds,
      trainSeconds: spent.train,
      noiseSeconds: spent.noise,
      evalSeconds: spent.eval,
      imgStepsPerSecond: (n * config.steps) / spent.noise,
    });
    spent.train = spent.noise = spent.eval = 0;
    mark = performance.now();
  },
});
emit({
  onepixel: true,
  backend,
  model: config.model,
  images: n,
  rounds: r.state.round,
  stopped: r.state.stopped,
  seconds: (performance.now() - t0) / 1000,
  loadavg: os.loadavg(),
});
