/** `onepixel protect`: the OPS-protected copy of a dataset. */
import { infinityReplacer } from '../manifest.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { DATASETS, type DatasetKind, FORMATS, type OutputFormat } from '../data/formats.js';
import { fail } from '../errors.js';
import { isAborting } from '../output.js';
import { stopOnSignals } from './signals.js';
import { METHODS, type Method } from '../manifest.js';
import { BACKENDS, type BackendName } from '../nn/engine.js';
import { MODELS, type ModelName } from '../nn/models/index.js';
import { parseEpsilon } from '../noise/bounds.js';
import { EM_DEFAULTS, EM_MODES, type EmMode } from '../noise/em.js';
import { protectWithNoise } from '../noise/protect.js';
import { protect, type Phase } from '../protect.js';
import { OBJECTIVES, type Objective } from '../shortcut/search.js';
import { type ProgressBar, progressBar } from './progress.js';

export function positiveInt(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isInteger(n) || n < 1)
      throw new InvalidArgumentError(`${flag} must be a positive integer (got '${value}')`);
    return n;
  };
}

function positiveNumber(flag: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !(n > 0) || !Number.isFinite(n))
      throw new InvalidArgumentError(`${flag} must be a positive number (got '${value}')`);
    return n;
  };
}

/** A ratio like 0.8/255 or a plain number. */
function fraction(flag: string) {
  return (value: string): number => {
    const m = /^\s*([0-9.]+)\s*\/\s*([0-9.]+)\s*$/.exec(value);
    const n = m ? Number(m[1]) / Number(m[2]) : Number(value);
    if (value.trim() === '' || !(n > 0) || !Number.isFinite(n))
      throw new InvalidArgumentError(`${flag} must be positive, e.g. 0.8/255 (got '${value}')`);
    return n;
  };
}

/** One progress bar per phase, replaced when the phase changes. */
function phaseProgress() {
  let current: { phase: Phase; bar: ProgressBar } | null = null;
  const labels: Record<Phase, [string, string]> = {
    download: ['download', 'B'],
    search: ['search  ', 'img'],
    write: ['write   ', 'img'],
  };
  return {
    update(phase: Phase, done: number, total: number | null) {
      if (isAborting()) fail('interrupted');
      if (current?.phase !== phase) {
        current?.bar.stop();
        const [label, unit] = labels[phase];
        current = { phase, bar: progressBar(label, total ?? 0, unit) };
      }
      current.bar.update(done);
    },
    stop() {
      current?.bar.stop();
    },
  };
}

interface Flags {
  dataset: DatasetKind;
  dataDir: string;
  out: string;
  format?: OutputFormat;
  objective: Objective;
  pixels: number;
  channels?: 1 | 3;
  force: boolean;
  download: boolean;
  json: boolean;
  method: Method;
  epsilon?: number;
  seed: number;
  noise?: string;
  emMode: EmMode;
  emModel: ModelName;
  emSteps: number;
  emStepSize: number;
  emTrainSteps: number;
  emBatchSize: number;
  emLr: number;
  emNoiseBatch: number;
  maxRounds: number;
  stopAccuracy: number;
  backend: BackendName;
  workers: number;
  checkpoint?: string;
  resume: boolean;
}

/** `--flag`s that only a noise method reads; given with --method ops they are refused. */
const NOISE_FLAGS: Array<[keyof Flags, string]> = [
  ['epsilon', '--epsilon'],
  ['noise', '--noise'],
  ['checkpoint', '--checkpoint'],
];

async function runNoise(f: Flags, progress: ReturnType<typeof phaseProgress>) {
  if (f.method === 'ops') throw new Error('unreachable');
  let bar: ProgressBar | null = null;
  let barKey = '';
  const stop = stopOnSignals('writing an EM checkpoint, then stopping');
  try {
    return await protectWithNoise({
      method: f.method,
      dataset: f.dataset,
      dataDir: f.dataDir,
      out: f.out,
      format: f.format,
      channels: f.channels,
      force: f.force,
      epsilon: f.epsilon,
      seed: f.seed,
      noiseFile: f.noise,
      em: {
        mode: f.emMode,
        model: f.emModel,
        steps: f.emSteps,
        stepSize: f.emStepSize,
        trainSteps: f.emTrainSteps,
        batchSize: f.emBatchSize,
        lr: f.emLr,
        noiseBatch: f.emNoiseBatch,
        maxRounds: f.maxRounds,
        stopAccuracy: f.stopAccuracy,
      },
      backend: f.backend,
      workers: f.workers,
      checkpoint: f.checkpoint,
      resume: f.resume,
      shouldStop: stop.requested,
      onEm: (phase, done, total, round) => {
        if (phase !== 'noise') return;
        const key = `${round}`;
        if (key !== barKey) {
          bar?.stop();
          bar = progressBar(`EM round ${round + 1} noise`, total, 'img');
          barKey = key;
        }
        bar?.update(done);
      },
      onRound: (r) => {
        bar?.stop();
        barKey = '';
        // With --json, stdout carries the manifest alone.
        (f.json ? process.stderr : process.stdout).write(
          `EM round ${String(r.round).padStart(3)}  surrogate train loss ${r.trainLoss.toFixed(4)}  ` +
            `perturbed-set loss ${r.loss.toFixed(4)}  accuracy ${(100 * r.accuracy).toFixed(2)}%  ` +
            `${r.seconds.toFixed(1)} s\n`,
        );
      },
      onProgress: (phase, done, total) => progress.update(phase, done, total),
    });
  } catch (e) {
    if (stop.requested()) {
      process.stderr.write(`onepixel: ${(e as Error).message}\n`);
      process.exit(stop.exitCode() ?? 130);
    }
    throw e;
  }
}

export function protectCommand(): Command {
  return new Command('protect')
    .description(
      'write a protected copy of a labelled image dataset: One-Pixel Shortcut (default), ' +
        'error-minimizing noise, CIFAR-10-S (both), or random noise',
    )
    .addOption(
      new Option('--dataset <kind>', 'input dataset kind').choices(DATASETS).makeOptionMandatory(),
    )
    .requiredOption(
      '--data-dir <dir>',
      'folder holding the dataset (with --download: where to put it)',
    )
    .requiredOption('--out <dir>', 'output folder (must not exist unless --force)')
    .addOption(
      new Option('--format <format>', "output format (default: the input's own)").choices(FORMATS),
    )
    .addOption(
      new Option('--objective <name>', 'search objective').choices(OBJECTIVES).default('official'),
    )
    .option('--pixels <k>', 'pixels per class', positiveInt('--pixels'), 1)
    .addOption(
      new Option('--channels <c>', 'folder datasets: convert images to 1 or 3 channels')
        .choices(['1', '3'])
        .argParser((v) => Number(v) as 1 | 3),
    )
    .option('--force', 'replace --out if it exists', false)
    .option('--download', 'fetch CIFAR-10/100 from the official site into --data-dir first', false)
    .option('--json', 'print the manifest as JSON instead of a table', false)
    .addOption(
      new Option(
        '--method <name>',
        'ops (one pixel), em (error-minimizing noise), cifar10s (EM + OPS pixel), random-noise',
      )
        .choices(METHODS)
        .default('ops'),
    )
    .option(
      '--epsilon <eps>',
      'noise L∞ budget, a fraction of the pixel range in (0, 1): 0.0314, 8/255, or an integer ≥ 1 ' +
        'read as /255 (8 = 8/255). Default 8/255',
      (v) => parseEpsilon(v),
    )
    .option('--seed <n>', 'seed of the noise, the surrogate and its batches', (v) => Number(v), 0)
    .option('--noise <file>', 'reuse this noise (float32 .npy, N×H×W×C) instead of generating it')
    .addOption(
      new Option('--em-mode <mode>', 'one noise per image or per class')
        .choices(EM_MODES)
        .default(EM_DEFAULTS.mode),
    )
    .addOption(
      new Option('--em-model <name>', 'EM surrogate model')
        .choices(MODELS)
        .default(EM_DEFAULTS.model),
    )
    .option('--em-steps <n>', 'PGD descent steps per noise pass', positiveInt('--em-steps'), 20)
    .option(
      '--em-step-size <s>',
      'PGD step size (default 0.8/255)',
      fraction('--em-step-size'),
      EM_DEFAULTS.stepSize,
    )
    .option(
      '--em-train-steps <n>',
      'surrogate training batches between noise passes',
      positiveInt('--em-train-steps'),
      EM_DEFAULTS.trainSteps,
    )
    .option(
      '--em-batch-size <n>',
      'surrogate training batch',
      positiveInt('--em-batch-size'),
      EM_DEFAULTS.batchSize,
    )
    .option(
      '--em-lr <lr>',
      'surrogate SGD learning rate (momentum 0.9, wd 5e-4)',
      positiveNumber('--em-lr'),
      EM_DEFAULTS.lr,
    )
    .option(
      '--em-noise-batch <n>',
      'images per PGD batch',
      positiveInt('--em-noise-batch'),
      EM_DEFAULTS.noiseBatch,
    )
    .option(
      '--max-rounds <n>',
      'stop EM after this many rounds (may be raised on --resume)',
      positiveInt('--max-rounds'),
      EM_DEFAULTS.maxRounds,
    )
    .option(
      '--stop-accuracy <a>',
      "stop EM once the surrogate's accuracy on the perturbed training set reaches this",
      positiveNumber('--stop-accuracy'),
      EM_DEFAULTS.stopAccuracy,
    )
    .addOption(
      new Option('--backend <name>', 'EM engine backend').choices(BACKENDS).default('auto'),
    )
    .option(
      '--workers <n>',
      'EM noise passes on n worker threads (one engine each)',
      positiveInt('--workers'),
      1,
    )
    .option('--checkpoint <dir>', 'EM checkpoint folder (default: <out>.em-checkpoint)')
    .option('--resume', 'continue the EM checkpoint (same parameters)', false)
    .action(async (f: Flags) => {
      const progress = phaseProgress();
      const t0 = performance.now();
      if (f.method === 'ops') {
        for (const [key, flag] of NOISE_FLAGS)
          if (f[key] !== undefined)
            fail(
              `${flag} applies to the noise methods (--method em, cifar10s, random-noise), not ops`,
            );
      } else if (f.method === 'random-noise' && f.resume)
        fail('--resume applies to EM (em, cifar10s)');
      const m =
        f.method !== 'ops'
          ? await runNoise(f, progress)
          : await protect({
              dataset: f.dataset,
              dataDir: f.dataDir,
              out: f.out,
              format: f.format,
              objective: f.objective,
              pixels: f.pixels,
              channels: f.channels,
              force: f.force,
              download: f.download,
              onProgress: (phase, done, total) => progress.update(phase, done, total),
            });
      progress.stop();
      const seconds = ((performance.now() - t0) / 1000).toFixed(2);
      if (f.method !== 'ops') {
        if (f.json) {
          process.stdout.write(JSON.stringify(m, infinityReplacer) + '\n');
          return;
        }
        const em = m.noise?.em;
        process.stdout.write(
          `protected ${m.output.train} training images (${m.source.dataset}, method ${m.method}, ` +
            `ε = ${((m.noise?.epsilon ?? 0) * 255).toFixed(2)}/255` +
            (em
              ? `, EM ${em.rounds} rounds, surrogate accuracy ${(100 * em.finalAccuracy).toFixed(2)}% ` +
                `(stopped by ${em.stoppedBy}), ${em.seconds.toFixed(1)} s generation`
              : '') +
            `) in ${seconds} s → ${f.out} (${m.output.format}, noise in ${m.noise?.file})\n`,
        );
        for (const c of m.classes.filter((c) => c.pixels.length > 0)) {
          const px = c.pixels.map((p) => `(${p.row},${p.col})=[${p.value.join(',')}]`).join(' ');
          process.stdout.write(`  ${String(c.label).padStart(3)} ${c.name.padEnd(14)} ${px}\n`);
        }
        return;
      }
      if (f.json) {
        process.stdout.write(JSON.stringify(m, infinityReplacer) + '\n');
        return;
      }
      const lines = [
        `protected ${m.output.train} training images (${m.source.dataset}, objective ${m.objective}, ` +
          `${m.pixelsPerClass} pixel(s) per class) in ${seconds} s → ${f.out} (${m.output.format})`,
      ];
      for (const c of m.classes) {
        const px = c.pixels.map((p) => `(${p.row},${p.col})=[${p.value.join(',')}]`).join(' ');
        lines.push(`  ${String(c.label).padStart(3)} ${c.name.padEnd(14)} ${px}`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    });
}
