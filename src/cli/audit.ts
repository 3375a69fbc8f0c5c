/** `onepixel audit`: the clean-vs-protected matrix over models and strategies, with a report. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { fail } from '../errors.js';
import { BACKENDS, type BackendName, initEngine } from '../nn/engine.js';
import { isModelName, MODELS, type ModelName } from '../nn/models/index.js';
import { type AuditDataset, auditRows, protectedDatasets, runAudit } from '../audit/matrix.js';
import { markdownTable } from '../audit/report/table.js';
import { reportHtml, samplesHtml } from '../audit/report/html.js';
import { openTrainingData } from '../train/data.js';
import { readManifest } from '../manifest.js';
import { exists } from '../output.js';
import { PRESETS, type PresetName } from '../train/presets.js';
import { writeFileAtomic } from '../train/results.js';
import { COUNTERMEASURES } from '../train/countermeasures.js';
import { jobConfig, parseStrategy } from '../train/job.js';
import { summarizeCells } from '../audit/summary.js';
import { progressBar, type ProgressBar } from './progress.js';
import { stopOnSignals } from './signals.js';
import { positiveInt, seed } from './flags.js';

interface Flags {
  clean: string;
  protected: string;
  models: string;
  strategies: string;
  countermeasures: string;
  preset?: PresetName;
  epochs?: number;
  seed: number;
  seeds?: string;
  backend: BackendName;
  out: string;
}

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);

export function auditCommand(): Command {
  return new Command('audit')
    .requiredOption('--clean <dir>', 'the clean dataset folder (reference column)')
    .requiredOption('--protected <dirs>', 'protected folder(s), comma-separated')
    .option('--models <names>', `models, comma-separated (${MODELS.join(', ')})`, 'lenet5')
    .option(
      '--strategies <names>',
      'strategies, comma-separated (see onepixel train --help)',
      'standard',
    )
    .option(
      '--countermeasures <names>',
      'also train on the training images after each of these, comma-separated: none (the plain ' +
        `rows), ${COUNTERMEASURES.slice(1).join(', ')}; rows become strategy+countermeasure`,
      'none',
    )
    .addOption(
      new Option('--preset <name>', 'protocol for every cell').choices(PRESETS).default('quick'),
    )
    .option('--epochs <n>', "override the preset's epochs", positiveInt('--epochs'))
    .option('--seed <n>', 'seed of every cell', seed(), 0)
    .option(
      '--seeds <list>',
      'train every cell once per seed, comma-separated (e.g. 0,1,2); tables show mean ± sd',
    )
    .addOption(new Option('--backend <name>', 'engine backend').choices(BACKENDS).default('auto'))
    .requiredOption('--out <dir>', 'audit folder: results.json, table.md, report.html, cells/')
    .action(async (f: Flags) => {
      const models = list(f.models);
      for (const m of models)
        if (!isModelName(m)) fail(`unknown model '${m}' (--models); valid: ${MODELS.join(', ')}`);
      const strategies = list(f.strategies);
      strategies.forEach(parseStrategy);
      const countermeasures = list(f.countermeasures);
      const rows = auditRows(strategies, countermeasures).map((r) => r.row);
      const datasets: AuditDataset[] = [
        { name: 'clean', dir: f.clean, kind: 'clean' },
        ...(await protectedDatasets(list(f.protected))),
      ];
      const seeds = f.seeds === undefined ? [f.seed] : list(f.seeds).map(Number);
      if (seeds.length === 0 || seeds.some((x) => !Number.isInteger(x) || x < 0))
        fail(`--seeds takes non-negative integers like 0,1,2 (got '${f.seeds}')`);
      if (new Set(seeds).size !== seeds.length) fail(`--seeds lists a seed twice ('${f.seeds}')`);
      const backend = await initEngine(f.backend);
      await mkdir(f.out, { recursive: true });
      const stop = stopOnSignals('stopping after this step; writing a checkpoint');
      let bar: ProgressBar | null = null;
      let barKey = '';
      const cells = await runAudit(
        {
          datasets,
          models: models as ModelName[],
          strategies,
          countermeasures,
          seeds,
          configFor: (model, strategy, countermeasure, seed) =>
            jobConfig(
              {
                model,
                strategy,
                preset: f.preset,
                epochs: f.epochs,
                seed,
                ...(countermeasure ? { countermeasure } : {}),
              },
              backend,
            ),
          backend,
          preset: f.preset ?? null,
        },
        f.out,
        (cell) => ({
          shouldStop: stop.requested,
          onStep: (done, total, epoch) => {
            const key = `${cell} ${epoch}`;
            if (key !== barKey) {
              bar?.stop();
              bar = progressBar(`${cell} epoch ${epoch + 1}`, total, 'img');
              barKey = key;
            }
            bar?.update(done);
          },
          onEpoch: () => {
            bar?.stop();
            bar = null;
            barKey = '';
          },
        }),
        (line) => process.stdout.write(line + '\n'),
      );
      const layout = { models, strategies: rows, datasets: datasets.map((d) => d.name) };
      const table = markdownTable(cells, layout, seeds);
      const done = cells.length === models.length * rows.length * datasets.length * seeds.length;
      await writeFileAtomic(
        join(f.out, 'results.json'),
        JSON.stringify(
          {
            complete: done,
            backend,
            preset: f.preset ?? null,
            datasets,
            models,
            strategies,
            countermeasures,
            rows,
            seeds,
            summary: summarizeCells(cells).map(({ testCurve, trainCurve, ...s }) => ({
              ...s,
              testCurve: testCurve.map((v) => [v.mean, v.sd]),
              trainCurve: trainCurve.map((v) => [v.mean, v.sd]),
            })),
            cells,
          },
          null,
          2,
        ) + '\n',
      );
      await writeFileAtomic(join(f.out, 'table.md'), table);
      const clean = await openTrainingData(f.clean);
      const samples: Array<{ name: string; html: string }> = [];
      for (const d of datasets.slice(1)) {
        if (!(await exists(join(d.dir, 'manifest.json')))) continue;
        const prot = await openTrainingData(d.dir);
        samples.push({
          name: d.name,
          html: await samplesHtml(clean.train, prot.train, await readManifest(d.dir)),
        });
      }
      const html = reportHtml({
        title: 'onepixel audit',
        cells,
        layout,
        seeds,
        samples,
        notes: [
          `Final clean-test accuracy after training on each dataset (backend ${backend}, preset ${f.preset ?? 'custom'}, seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}).`,
          ...(rows.length > strategies.length
            ? [
                'Rows strategy+countermeasure: every column’s training images went through the ' +
                  'countermeasure first; the test set is the untouched clean one.',
              ]
            : []),
          done ? 'All cells finished.' : 'Incomplete: run the same command again to resume.',
        ],
      });
      await writeFile(join(f.out, 'report.html'), html);
      process.stdout.write('\n' + table + '\n');
      if (stop.requested()) process.exit(stop.exitCode() ?? 130);
    });
}
