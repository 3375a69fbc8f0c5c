/**
 * `onepixel protect`: a protected copy of a dataset with any method (ops, em, cifar10s,
 * random-noise) through the one protect job. Every flag either acts for the chosen method or is
 * refused, naming it. The job (and, for EM, the training engine) is imported when the command runs.
 */
import { Command, Option } from 'commander';
import { DATASETS, type DatasetKind, FORMATS, type OutputFormat } from '../data/formats.js';
import { fail } from '../errors.js';
import { infinityReplacer, type Manifest, METHODS, type Method } from '../manifest.js';
import {
  BACKENDS,
  type BackendName,
  MODELS,
  type ModelName,
  PRECISIONS,
  type PrecisionName,
} from '../nn/names.js';
import { EM_DEFAULTS, EM_MODES, type EmMode } from '../noise/em-config.js';
import { isAborting } from '../output.js';
import type { Phase } from '../protect/method.js';
import { OBJECTIVES, type Objective } from '../shortcut/search.js';
import { budget, positiveInt, positiveNumber, rate, seed } from './flags.js';
import { type ProgressBar, progressBar } from './progress.js';
import { abort, EXIT_CODES, onStopSignals, type StopSignal } from './signals.js';
import { isShardedStep, runShardedStep } from './protect-shard.js';

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
  shard?: string;
  statsOnly: boolean;
  mergeStats?: string[];
  plan?: string;
  out: string;
  format?: OutputFormat;
  objective: Objective;
  pixels: number;
  pipeline?: string;
  blockMargin?: number;
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
  precision: PrecisionName;
  workers: number;
  checkpoint?: string;
  resume: boolean;
}

const EM_GENERATION: Array<keyof Flags> = [
  'emMode',
  'emModel',
  'emSteps',
  'emStepSize',
  'emTrainSteps',
  'emBatchSize',
  'emLr',
  'emNoiseBatch',
  'maxRounds',
  'stopAccuracy',
  'backend',
  'precision',
  'workers',
  'checkpoint',
  'resume',
];

/** The flags each method reads, beyond those every method reads. */
const READS: Record<Method, Array<keyof Flags>> = {
  ops: ['objective', 'pixels', 'pipeline', 'blockMargin'],
  'random-noise': ['epsilon', 'seed', 'noise'],
  em: ['epsilon', 'seed', 'noise', ...EM_GENERATION],
  cifar10s: ['objective', 'pixels', 'epsilon', 'seed', 'noise', ...EM_GENERATION],
};

const flagName = (key: string) => '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

/** Fails on the first flag given on the line that the method does not use. */
function refuseUnused(f: Flags, given: (key: string) => boolean): void {
  const reads = new Set<string>(READS[f.method]);
  for (const key of Object.keys(f)) {
    if (!given(key)) continue;
    const users = (Object.keys(READS) as Method[]).filter((m) => READS[m].includes(key as never));
    if (users.length > 0 && !reads.has(key))
      fail(`${flagName(key)} applies to --method ${users.join(', ')}, not ${f.method}`);
  }
  // Read noise is not generated: the generator's settings would do nothing.
  if (f.noise !== undefined)
    for (const key of ['seed', ...EM_GENERATION])
      if (given(key))
        fail(`${flagName(key)} does not apply with --noise (the noise is read, not generated)`);
}

/** The one summary of a finished protect, whatever the method. */
function summary(m: Manifest, out: string, seconds: string): string {
  const em = m.noise?.em;
  const what =
    m.method === 'ops'
      ? `objective ${m.objective}, ${m.pixelsPerClass} pixel(s) per class`
      : `method ${m.method}, ε = ${((m.noise?.epsilon ?? 0) * 255).toFixed(2)}/255` +
        (em
          ? `, EM ${em.rounds} rounds, surrogate accuracy ${(100 * em.finalAccuracy).toFixed(2)}% ` +
            `(stopped by ${em.stoppedBy}), ${em.seconds.toFixed(1)} s generation`
          : '');
  const lines = [
    `protected ${m.output.train} training images (${m.source.dataset}, ${what}) in ${seconds} s ` +
      `→ ${out} (${m.output.format}${m.noise ? `, noise in ${m.noise.file}` : ''})`,
  ];
  for (const c of m.classes.filter((c) => c.pixels.length > 0)) {
    const px = c.pixels.map((p) => `(${p.row},${p.col})=[${p.value.join(',')}]`).join(' ');
    lines.push(`  ${String(c.label).padStart(3)} ${c.name.padEnd(14)} ${px}`);
  }
  return lines.join('\n') + '\n';
}

async function run(f: Flags, given: (key: string) => boolean): Promise<void> {
  if (isShardedStep(f)) {
    const progress = phaseProgress();
    onStopSignals((signal) => abort(signal));
    await runShardedStep(f, given, (phase, done, total) => progress.update(phase, done, total));
    progress.stop();
    return;
  }
  if (f.dataset === undefined) fail("required option '--dataset <kind>' not specified");
  if (f.dataDir === undefined) fail("required option '--data-dir <dir>' not specified");
  refuseUnused(f, given);
  const progress = phaseProgress();
  const t0 = performance.now();
  // During EM generation a signal asks for a checkpoint and a clean stop; at any other time
  // (opening, searching, writing) it stops at once and removes the unfinished output.
  let generating = false;
  let stop: StopSignal | null = null;
  onStopSignals((signal) => {
    if (!generating) return abort(signal);
    stop = signal;
    process.stderr.write(`\nonepixel: ${signal}: writing an EM checkpoint, then stopping\n`);
  });
  let emBar: ProgressBar | null = null;
  let barKey = '';
  const { protect } = await import('../protect/job.js');
  const m = await protect({
    method: f.method,
    dataset: f.dataset,
    dataDir: f.dataDir,
    out: f.out,
    format: f.format,
    channels: f.channels,
    force: f.force,
    download: f.download,
    objective: f.objective,
    pixels: f.pixels,
    pipeline: f.pipeline,
    blockMargin: f.blockMargin,
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
    precision: f.precision,
    workers: f.workers,
    checkpoint: f.checkpoint,
    resume: f.resume,
    shouldStop: () => stop !== null,
    onEm: (phase, done, total, round) => {
      generating = true;
      if (phase !== 'noise') return;
      const key = `${round}`;
      if (key !== barKey) {
        emBar?.stop();
        emBar = progressBar(`EM round ${round + 1} noise`, total, 'img');
        barKey = key;
      }
      emBar?.update(done);
    },
    onRound: (r) => {
      emBar?.stop();
      barKey = '';
      // With --json, stdout carries the manifest alone.
      (f.json ? process.stderr : process.stdout).write(
        `EM round ${String(r.round).padStart(3)}  surrogate train loss ${r.trainLoss.toFixed(4)}  ` +
          `perturbed-set loss ${r.loss.toFixed(4)}  accuracy ${(100 * r.accuracy).toFixed(2)}%  ` +
          `${r.seconds.toFixed(1)} s\n`,
      );
    },
    onProgress: (phase, done, total) => {
      generating = false;
      // A stop asked during the last EM round that still finished: stop before writing.
      if (stop && !isAborting()) abort(stop);
      progress.update(phase, done, total);
    },
  }).catch((e: Error) => {
    if (!stop || isAborting()) throw e;
    process.stderr.write(`onepixel: ${e.message}\n`);
    process.exit(EXIT_CODES[stop]);
  });
  progress.stop();
  const seconds = ((performance.now() - t0) / 1000).toFixed(2);
  process.stdout.write(
    f.json ? JSON.stringify(m, infinityReplacer) + '\n' : summary(m, f.out, seconds),
  );
}

export function protectCommand(): Command {
  const cmd = new Command('protect')
    .addOption(new Option('--dataset <kind>', 'input dataset kind').choices(DATASETS))
    .option('--data-dir <dir>', 'folder holding the dataset (with --download: where to put it)')
    .requiredOption(
      '--out <dir>',
      'output folder: must not exist, unless --force and onepixel wrote it (manifest.json)',
    )
    .addOption(
      new Option('--format <format>', "output format (default: the input's own)").choices(FORMATS),
    )
    .addOption(
      new Option('--objective <name>', 'ops, cifar10s: search objective')
        .choices(OBJECTIVES)
        .default('official'),
    )
    .option('--pixels <k>', 'ops, cifar10s: pixels per class', positiveInt('--pixels'), 1)
    .option(
      '--pipeline <resize:S[:interp]>',
      "ops: search at the trainer's resized S×S view and write each pixel as the block that lands as it",
    )
    .option(
      '--block-margin <m>',
      'ops --pipeline: pixels added to every side of each block (default 0)',
      seed('--block-margin'),
    )
    .addOption(
      new Option('--channels <c>', 'folder datasets: convert images to 1 or 3 channels')
        .choices(['1', '3'])
        .argParser((v) => Number(v) as 1 | 3),
    )
    .option('--force', 'replace --out (and the EM checkpoint) if onepixel wrote it', false)
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
      'noise methods: L∞ budget, a fraction of the pixel range in (0, 1): 0.0314, 8/255, or an ' +
        'integer ≥ 1 read as /255 (8 = 8/255). Default 8/255',
      budget('--epsilon'),
    )
    .option(
      '--seed <n>',
      'noise methods: seed of the noise, the surrogate and its batches',
      seed(),
      0,
    )
    .option('--noise <file>', 'noise methods: reuse this noise (float32 .npy, N×H×W×C)')
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
      'PGD step size, as --epsilon (default 0.8/255)',
      budget('--em-step-size'),
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
      "stop EM once the surrogate's accuracy on the perturbed training set reaches this, in (0, 1]",
      rate('--stop-accuracy', 0, 1, 'min'),
      EM_DEFAULTS.stopAccuracy,
    )
    .addOption(
      new Option('--backend <name>', 'EM engine backend').choices(BACKENDS).default('auto'),
    )
    .addOption(
      new Option(
        '--precision <p>',
        'EM surrogate on the native backend: bf16 convolutions and matrix products (fp32 weights and noise); auto = bf16 where the CPU has it',
      )
        .choices(PRECISIONS)
        .default('fp32'),
    )
    .option(
      '--workers <n>',
      'EM noise passes on n worker threads (one engine each)',
      positiveInt('--workers'),
      1,
    )
    .option('--checkpoint <dir>', 'EM checkpoint folder (default: <out>.em-checkpoint)')
    .option('--resume', 'continue the EM checkpoint (same parameters)', false)
    .option(
      '--shard <I/N>',
      'sharded ops: this shard of N (I from 0), with --stats-only or --plan (see "Running on a cluster")',
    )
    .option(
      '--stats-only',
      'sharded ops, step 1: write the exact statistics of this shard to --out (a file)',
      false,
    )
    .option(
      '--merge-stats <files...>',
      "sharded ops, step 2: merge every shard's statistics, choose the pixels, write the plan to --out",
    )
    .option(
      '--plan <file>',
      "sharded ops, step 3: write this shard's part of the protected copy into the shared --out",
    );
  return cmd.action((f: Flags) => run(f, (key) => cmd.getOptionValueSource(key) === 'cli'));
}
