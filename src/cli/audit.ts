/** `onepixel audit`: the clean-vs-protected matrix over models and strategies, with a report. */
import { dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { fail } from '../errors.js';
import { createFolder, holdOutput } from '../output.js';
import {
  BACKENDS,
  type BackendName,
  initEngine,
  PRECISIONS,
  type PrecisionName,
  resolvePrecision,
} from '../nn/engine.js';
import { isModelName, MODELS, type ModelName } from '../nn/models/index.js';
import {
  type AuditDataset,
  type AuditPlan,
  auditCells,
  auditRows,
  type PlannedCell,
  protectedDatasets,
  runAudit,
} from '../audit/matrix.js';
import {
  type AuditIndex,
  presentCells,
  readAuditIndex,
  writeAuditIndex,
} from '../audit/index-file.js';
import { writeAuditOutputs } from '../audit/report/write.js';
import { parseShard, shardsOf, shardText } from '../shard.js';
import { PRESETS, type PresetName } from '../train/presets.js';
import { COUNTERMEASURES, TRAINING_COUNTERMEASURES } from '../train/countermeasures.js';
import { jobConfig, parseStrategy } from '../train/job.js';
import { progressBar, type ProgressBar } from './progress.js';
import { onStopSignals, stopOnSignals } from './signals.js';
import { positiveInt, seed } from './flags.js';

interface Flags {
  clean?: string;
  protected?: string;
  shard?: string;
  listCells: boolean;
  report: boolean;
  assemble: boolean;
  models: string;
  strategies: string;
  countermeasures: string;
  preset?: PresetName;
  epochs?: number;
  seed: number;
  seeds?: string;
  backend: BackendName;
  precision: PrecisionName;
  out?: string;
}

const list = (s: string) =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);

export function auditCommand(): Command {
  return new Command('audit')
    .option('--clean <dir>', 'the clean dataset folder (reference column)')
    .option('--protected <dirs>', 'protected folder(s), comma-separated')
    .option('--models <names>', `models, comma-separated (${MODELS.join(', ')})`, 'lenet5')
    .option(
      '--strategies <names>',
      'strategies, comma-separated (see onepixel train --help)',
      'standard',
    )
    .option(
      '--countermeasures <names>',
      'also train on the training images after each of these, comma-separated: none (the plain ' +
        `rows), ${COUNTERMEASURES.slice(1).join(', ')}; rows become strategy+countermeasure. ` +
        `${TRAINING_COUNTERMEASURES.join(', ')} act at every epoch: each adds its strategy's row ` +
        '(with --strategies standard)',
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
    .addOption(
      new Option(
        '--precision <p>',
        'native backend: bf16 convolutions and matrix products in every cell (fp32 cells keep their identity; bf16 cells are other cells); auto = bf16 where the CPU has it',
      )
        .choices(PRECISIONS)
        .default('fp32'),
    )
    .option('--out <dir>', 'audit folder: results.json, table.md, report.html, cells/')
    .option('--shard <I/N>', "run only this shard's cells (I from 0; see --list-cells)")
    .option(
      '--list-cells',
      'print every cell (or the --shard one’s) with its shard and folder; train nothing',
      false,
    )
    .option(
      '--report',
      'assemble results.json, table.md and report.html in --out from the cells present (after ' +
        'sharded runs), naming the missing ones; reads --out only',
      false,
    )
    .option(
      '--assemble',
      'write this matrix as the audit of --out and its report from the cells present there ' +
        '(copied from other audits, or left by stopped runs), naming the missing ones; train nothing',
      false,
    )
    .action(async (f: Flags, cmd: Command) => {
      if (f.out === undefined && !f.listCells) fail("required option '--out <dir>' not specified");
      const out = f.out as string;
      if (f.report) {
        for (const key of Object.keys(f))
          if (key !== 'out' && key !== 'report' && cmd.getOptionValueSource(key) === 'cli')
            fail(
              `--${key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} does not apply with --report (it reads --out only)`,
            );
        const index = await readAuditIndex(out);
        await holdAudit(out, 'report');
        await writeReport(out, index);
        return;
      }
      if (f.assemble && (f.shard !== undefined || f.listCells))
        fail(
          `--assemble trains nothing, so --${f.listCells ? 'list-cells' : 'shard'} does not apply`,
        );
      if (f.clean === undefined) fail("required option '--clean <dir>' not specified");
      if (f.protected === undefined) fail("required option '--protected <dirs>' not specified");
      const models = list(f.models);
      for (const m of models)
        if (!isModelName(m)) fail(`unknown model '${m}' (--models); valid: ${MODELS.join(', ')}`);
      const strategies = list(f.strategies);
      strategies.forEach(parseStrategy);
      const countermeasures = list(f.countermeasures);
      const rows = auditRows(strategies, countermeasures).map((r) => r.row);
      const datasets: AuditDataset[] = [
        { name: 'clean', dir: f.clean as string, kind: 'clean' },
        ...(await protectedDatasets(list(f.protected))),
      ];
      const seeds = f.seeds === undefined ? [f.seed] : list(f.seeds).map(Number);
      if (seeds.length === 0 || seeds.some((x) => !Number.isInteger(x) || x < 0))
        fail(`--seeds takes non-negative integers like 0,1,2 (got '${f.seeds}')`);
      if (new Set(seeds).size !== seeds.length) fail(`--seeds lists a seed twice ('${f.seeds}')`);
      const backend = await initEngine(f.backend);
      const precision = resolvePrecision(f.precision, backend);
      const shard = f.shard === undefined ? null : parseShard(f.shard);
      const plan: AuditPlan = {
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
              precision,
              ...(countermeasure ? { countermeasure } : {}),
            },
            backend,
          ),
        backend,
        preset: f.preset ?? null,
      };
      const indexOf = (planned: PlannedCell[]): AuditIndex => ({
        kind: 'onepixel-audit',
        version: 1,
        clean: f.clean as string,
        datasets,
        models,
        strategies,
        countermeasures,
        rows,
        seeds,
        preset: f.preset ?? null,
        backend,
        ...(precision === 'bf16' ? { precision } : {}),
        cells: planned.map((c) => ({
          key: c.key,
          dataset: c.dataset.name,
          model: c.model,
          row: c.row,
          seed: c.seed,
          folder: c.folder,
        })),
      });
      if (f.listCells) {
        const planned = await auditCells(plan);
        const shards = shardsOf(
          planned.map((c) => c.key),
          shard?.count ?? 1,
        );
        for (const c of planned) {
          const i = shards.get(c.key) as number;
          if (!shard || i === shard.index)
            process.stdout.write(`${i}/${shard?.count ?? 1}  ${c.key}  cells/${c.folder}\n`);
        }
        return;
      }
      if (f.assemble) {
        await holdAudit(out, 'report');
        await createFolder(out);
        const index = indexOf(await auditCells(plan));
        // As a shard does: an audit that may be running keeps its index.
        await writeAuditIndex(out, index, true);
        await writeReport(out, index);
        return;
      }
      // Set once runAudit has listed the cells (before any training).
      const matrix: { of: Map<string, number>; index: AuditIndex | null } = {
        of: new Map(),
        index: null,
      };
      // One writer per audit folder (per shard of it, shards sharing the folder by design).
      await holdAudit(out, shard ? `shard-${shard.index}-of-${shard.count}` : undefined);
      await createFolder(out);
      const stop = stopOnSignals('stopping after this step; writing a checkpoint');
      let bar: ProgressBar | null = null;
      let barKey = '';
      const cells = await runAudit(
        plan,
        out,
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
        {
          only: shard ? (key) => matrix.of.get(key) === shard.index : undefined,
          onCells: async (planned) => {
            matrix.of = shardsOf(
              planned.map((c) => c.key),
              shard?.count ?? 1,
            );
            matrix.index = indexOf(planned);
            await writeAuditIndex(out, matrix.index, shard !== null);
          },
        },
      );
      if (stop.requested()) {
        // Stopped: the cells are checkpointed; the report waits for a run that finishes (it reads
        // every dataset folder again for its pictures, which a stop must not wait for).
        process.stdout.write(`stopped; the same command resumes (report not written)\n`);
        process.exit(stop.exitCode() ?? 130);
      }
      // The report step writes each file atomically: a signal now stops at once, as by default.
      onStopSignals();
      if (shard) {
        const n = [...matrix.of.values()].filter((i) => i === shard.index).length;
        process.stdout.write(
          `shard ${shardText(shard)}: ${cells.length} of its ${n} cells finished; when every ` +
            `shard has run: onepixel audit --out ${out} --report\n`,
        );
      } else {
        const { cells: present, missing } = await presentCells(out, matrix.index as AuditIndex);
        const table = await writeAuditOutputs(out, matrix.index as AuditIndex, present, missing);
        process.stdout.write('\n' + table + '\n');
      }
    });
}

/** Makes this process the one writer of the audit folder `out` (or of the part named). */
async function holdAudit(out: string, part?: string): Promise<void> {
  await createFolder(dirname(resolve(out)));
  await holdOutput(out, '--out', part);
}

/** results.json, table.md and report.html from the cells present; prints the table and what is missing. */
async function writeReport(out: string, index: AuditIndex): Promise<void> {
  const { cells, missing } = await presentCells(out, index);
  const table = await writeAuditOutputs(out, index, cells, missing);
  process.stdout.write(
    table +
      `\n${cells.length} of ${index.cells.length} cells present` +
      (missing.length > 0
        ? `; missing (run them, then --report): ${missing.map((c) => c.key).join(', ')}\n`
        : '; the audit is complete\n'),
  );
}
