/** `onepixel train`: train a model on a (protected) dataset, report clean-test accuracy. */
import { dirname } from 'node:path';
import { Command, Option } from 'commander';
import { fail } from '../errors.js';
import { DATASETS, type DatasetKind } from '../data/formats.js';
import { checkOutput, createFolder, holdOutput, removeOutput } from '../output.js';
import { BACKENDS, type BackendName, initEngine, PRECISIONS } from '../nn/engine.js';
import { MODELS } from '../nn/models/index.js';
import { SCHEDULES } from '../nn/schedule.js';
import { COUNTERMEASURES } from '../train/countermeasures.js';
import { openTrainingData, type TrainingData } from '../train/data.js';
import { CHECKPOINT_MARKER } from '../nn/checkpoint.js';
import { jobConfig, jobData, type JobSpec, runTrainJob, TRAIN_STRATEGIES } from '../train/job.js';
import type { TrainConfig } from '../train/loop.js';
import { PAPER_ATTACK, PRESETS } from '../train/presets.js';
import { progressBar, type ProgressBar } from './progress.js';
import { stopOnSignals } from './signals.js';
import {
  budget,
  epochList,
  nonNegative,
  rate,
  positiveInt,
  positiveNumber,
  seed,
} from './flags.js';

export { parseStrategy, TRAIN_STRATEGIES } from '../train/job.js';

/** The job's spec (train/job.ts), with the flags that only the command reads. */
interface Flags extends JobSpec {
  data: string;
  dataset?: DatasetKind;
  backend: BackendName;
  epsilon: number;
  attackStep?: number;
  attackSteps?: number;
  results?: string;
  log?: string;
  checkpoint?: string;
  resume: boolean;
  force: boolean;
}

/** The run's config: flags over the preset over the defaults (see jobConfig). */
export function configFrom(f: Flags, engine: string = f.backend): TrainConfig {
  return jobConfig(f, engine);
}

export function trainCommand(): Command {
  return new Command('train')
    .requiredOption('--data <dir>', 'a folder written by onepixel protect, or any dataset folder')
    .addOption(
      new Option('--dataset <kind>', 'kind of a plain dataset folder (default: guessed)').choices(
        DATASETS,
      ),
    )
    .addOption(
      new Option('--model <name>', "network (default: the preset's, else lenet5)").choices(MODELS),
    )
    .option('--strategy <name>', `training strategy: ${TRAIN_STRATEGIES.join(', ')}`)
    .addOption(
      new Option('--preset <name>', 'protocol: quick (CPU-sized) or paper (200 epochs)').choices(
        PRESETS,
      ),
    )
    .option('--epochs <n>', 'epochs', positiveInt('--epochs'))
    .option('--batch-size <n>', 'batch size', positiveInt('--batch-size'))
    .option('--lr <x>', 'learning rate (max lr for onecycle)', positiveNumber('--lr'))
    .option('--momentum <x>', 'SGD momentum, in [0, 1)', rate('--momentum', 0, 1, 'max'))
    .option('--weight-decay <x>', 'SGD weight decay', nonNegative('--weight-decay'))
    .addOption(new Option('--schedule <name>', 'learning-rate schedule').choices(SCHEDULES))
    .option(
      '--milestones <epochs>',
      'multistep: epochs where lr ×0.1, e.g. 100,150',
      epochList('--milestones'),
    )
    .option('--seed <n>', 'seed of initialisation, shuffling and augmentation', seed(), 0)
    .addOption(new Option('--backend <name>', 'engine backend').choices(BACKENDS).default('auto'))
    .addOption(
      new Option(
        '--precision <p>',
        'native backend: bf16 convolutions and matrix products (fp32 weights, optimiser, batch-norm statistics, loss); auto = bf16 where the CPU has it',
      )
        .choices(PRECISIONS)
        .default('fp32'),
    )
    .option(
      '--epsilon <x>',
      'adversarial training: L∞ radius, as protect --epsilon: 0.0314, 8/255 or 8 (= 8/255)',
      budget('--epsilon'),
      PAPER_ATTACK.epsilon,
    )
    .option(
      '--attack-step <x>',
      "adversarial training: attack step, as --epsilon (2 = 2/255) (default: the preset's: quick, paper 2/255; fast94 ε, N-FGSM)",
      budget('--attack-step'),
    )
    .option(
      '--attack-steps <n>',
      "adversarial training: attack steps (default: the preset's: quick, paper 10; fast94 1, N-FGSM from a start in [−2ε, 2ε], unprojected)",
      positiveInt('--attack-steps'),
    )
    .option(
      '--attack-warmup <epochs>',
      "adversarial training: grow ε (and the PGD step) linearly from 0 over these epochs (default: the preset's; quick 5, paper 0)",
      nonNegative('--attack-warmup'),
    )
    .option('--widen <k>', 'WRN widening factor', positiveInt('--widen'))
    .option(
      '--workers <n>',
      'threads sharing each batch, one wasm engine each (default: cores on wasm; 1 on native and for adversarial training)',
      positiveInt('--workers'),
    )
    .option(
      '--countermeasure <name>',
      `transform the training images first, as a trainer breaking protection would: ${COUNTERMEASURES.join(', ')}`,
    )
    .option('--results <file>', 'results JSON (default: results.json in the working folder)')
    .option('--log <file>', 'per-epoch CSV log (default: the results file with .csv)')
    .option('--checkpoint <dir>', 'checkpoint folder (default: the results file with .ckpt)')
    .option('--resume', 'continue from the checkpoint folder', false)
    .option('--force', 'discard an existing checkpoint and start over', false)
    .action(async (f: Flags) => {
      const results = f.results ?? 'results.json';
      const log = f.log ?? results.replace(/\.json$/i, '') + '.csv';
      const ckpt = f.checkpoint ?? results.replace(/\.json$/i, '') + '.ckpt';
      // Before any work: the checkpoint folder is replaced only if onepixel wrote it, and is
      // never the training data nor a folder holding it.
      const rules = {
        flag: '--checkpoint',
        force: f.force,
        resume: f.resume,
        marker: CHECKPOINT_MARKER,
        inputs: [f.data],
      };
      await checkOutput(ckpt, rules);
      // One writer per checkpoint: a second run on it is refused here, before any work.
      await holdOutput(ckpt, '--checkpoint');
      const there = await checkOutput(ckpt, rules);
      if (there && f.force) await removeOutput(ckpt, rules);
      else if (!there && f.resume) fail(`${ckpt}: no checkpoint to resume (--resume)`);
      const backend = await initEngine(f.backend);
      const config = configFrom(f, backend);
      let cmBar: ProgressBar | null = null;
      // Until training starts a signal aborts at once (nothing is written yet), so no shouldStop:
      // the countermeasure gives the event loop turns for the handler, and is never null here.
      const data = (await jobData(config, await openTrainingData(f.data, f.dataset), (done, n) => {
        cmBar ??= progressBar(`countermeasure ${config.countermeasure}`, n, 'img');
        cmBar?.update(done);
      })) as TrainingData;
      (cmBar as ProgressBar | null)?.stop();
      await createFolder(dirname(results));
      const stop = stopOnSignals('stopping after this step; writing a checkpoint');
      let bar: ProgressBar | null = null;
      let barEpoch = -1;
      const strategy = f.strategy ?? (config.adversarial ? 'at' : config.strategy);
      const meta = { backend, data: f.data, strategy, preset: f.preset ?? null };
      const run = await runTrainJob(config, data, { results, log, checkpoint: ckpt }, meta, {
        shouldStop: stop.requested,
        onStep: (done, total, epoch) => {
          if (epoch !== barEpoch) {
            bar?.stop();
            bar = progressBar(`epoch ${epoch + 1}/${config.epochs}`, total, 'img');
            barEpoch = epoch;
          }
          bar?.update(done);
        },
        onEpoch: (r) => {
          bar?.stop();
          bar = null;
          barEpoch = -1;
          process.stdout.write(
            `epoch ${String(r.epoch).padStart(3)}  loss ${r.trainLoss.toFixed(4)}  train ${(100 * r.trainAccuracy).toFixed(2)}%  ` +
              `test ${(100 * r.testAccuracy).toFixed(2)}%  lr ${r.lr.toExponential(2)}  ${r.imagesPerSecond.toFixed(0)} img/s\n`,
          );
        },
      });
      if (!run.finished) {
        process.stderr.write(
          `onepixel: stopped; resume with the same command and --resume (checkpoint ${ckpt})\n`,
        );
        process.exit(stop.exitCode() ?? 130);
      }
      process.stdout.write(
        `final clean-test accuracy ${(100 * (run.finalTestAccuracy ?? 0)).toFixed(2)}% → ${results}\n`,
      );
    });
}
