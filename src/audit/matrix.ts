/**
 * The audit matrix: every (dataset × model × strategy × seed) cell trained with the same protocol
 * and measured on the one clean test set. Each cell keeps its own results and checkpoint in its own
 * folder under the audit folder, so a killed audit resumes where it stopped and finished cells are
 * not redone. A cell folder is named by the hash of the cell's identity (its whole config, the
 * backend, and the fingerprints of its datasets' images and labels): an audit run again with
 * other epochs, preset, seeds, models or data trains new cells beside the old ones, and reuses a
 * cell only when everything that decides its result is the same.
 * Countermeasures (src/train/countermeasures.ts) add rows: `standard+jpeg:10` is the standard
 * strategy trained on JPEG-compressed copies of each dataset's training images; a training
 * countermeasure (`ueraser`) adds the row of that strategy.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fail } from '../errors.js';
import { datasetFingerprint } from '../data/files.js';
import type { ModelName } from '../nn/models/index.js';
import { MANIFEST, methodLabel, readManifest } from '../manifest.js';
import { exists } from '../output.js';
import { type TrainingData, openTrainingData } from '../train/data.js';
import {
  countermeasureName,
  isTrainingCountermeasure,
  parseCountermeasure,
} from '../train/countermeasures.js';
import { jobData, runTrainJob } from '../train/job.js';
import type { TrainConfig, TrainHooks } from '../train/loop.js';
import { type TrainResults, writeFileAtomic } from '../train/results.js';

export interface AuditDataset {
  /** Column name: 'clean' or the protected folder's name. */
  name: string;
  dir: string;
  /** 'clean' for the reference data, else what protected it (e.g. 'ops'). */
  kind: string;
}

export interface AuditCell {
  dataset: string;
  model: ModelName;
  /** The row: the strategy, with `+countermeasure` when one was applied. */
  strategy: string;
  seed: number;
  /** The cell's folder under cells/. */
  folder: string;
  results: TrainResults;
}

export interface AuditPlan {
  datasets: AuditDataset[];
  models: ModelName[];
  strategies: string[];
  /** Countermeasures applied to the training images (`none` for the plain rows); default none. */
  countermeasures?: string[];
  /** Seeds: every cell is trained once per seed. Default [0]. */
  seeds?: number[];
  /** Config of a cell, from its model, strategy, countermeasure (null: none) and seed. */
  configFor: (
    model: ModelName,
    strategy: string,
    countermeasure: string | null,
    seed: number,
  ) => TrainConfig;
  backend: string;
  preset: string | null;
}

/** Opens every dataset and refuses a set whose test splits differ (accuracy must be comparable). */
export async function openAuditData(datasets: AuditDataset[]): Promise<Map<string, TrainingData>> {
  return new Map([...(await openAuditDatasets(datasets))].map(([k, v]) => [k, v.data]));
}

/** Each dataset opened, with the fingerprints of its splits (datasetFingerprint). */
async function openAuditDatasets(
  datasets: AuditDataset[],
): Promise<Map<string, { data: TrainingData; train: string; test: string }>> {
  const out = new Map<string, { data: TrainingData; train: string; test: string }>();
  let reference: { name: string; hash: string } | null = null;
  for (const d of datasets) {
    if (out.has(d.name))
      fail(`two datasets are both named '${d.name}'; give the folders distinct names`);
    const data = await openTrainingData(d.dir);
    const hash = datasetFingerprint(data.test);
    if (reference && hash !== reference.hash)
      fail(
        `${d.dir}: its test split differs from the one of ${reference.name}; an audit compares ` +
          'accuracy on one clean test set, so every dataset must carry the same test split',
      );
    reference ??= { name: d.dir, hash };
    out.set(d.name, { data, train: datasetFingerprint(data.train), test: hash });
  }
  return out;
}

/**
 * The rows of an audit: each strategy with each countermeasure ('none' adds the plain row). A
 * training countermeasure (`ueraser`) adds its strategy's own row, with the standard strategy only;
 * a row named twice is refused.
 */
export function auditRows(
  strategies: string[],
  countermeasures: string[] = ['none'],
): Array<{ row: string; strategy: string; countermeasure: string | null }> {
  const names = countermeasures.map((c) =>
    isTrainingCountermeasure(c.trim())
      ? c.trim()
      : countermeasureName(parseCountermeasure(c, '--countermeasures')),
  );
  const rows = strategies.flatMap((strategy) =>
    names.map((c) => {
      if (isTrainingCountermeasure(c)) {
        if (strategy !== 'standard')
          fail(
            `--countermeasures ${c}: a training strategy that replaces the standard one's ` +
              `augmentation, so it pairs with --strategies standard only (not '${strategy}'); ` +
              `audit it as --strategies ${c}`,
          );
        return { row: c, strategy: c, countermeasure: null };
      }
      return c === 'none'
        ? { row: strategy, strategy, countermeasure: null }
        : { row: `${strategy}+${c}`, strategy, countermeasure: c };
    }),
  );
  const seen = new Set<string>();
  for (const r of rows) {
    if (seen.has(r.row))
      fail(`row '${r.row}' named twice by --strategies and --countermeasures; name it once`);
    seen.add(r.row);
  }
  return rows;
}

export function cellName(dataset: string, model: string, strategy: string): string {
  return `${dataset}__${model}__${strategy}`.replace(/[^A-Za-z0-9_.+-]/g, '_');
}

/** Everything that decides a cell's result; a cell is reused only when all of it is the same. */
export interface CellIdentity {
  dataset: string;
  row: string;
  backend: string;
  config: TrainConfig;
  /** datasetFingerprint of the (untransformed) training and test splits. */
  train: string;
  test: string;
}

/** The cell's folder name: readable, plus a hash of its identity. */
export function cellFolder(id: CellIdentity): string {
  const hash = createHash('sha256').update(JSON.stringify(id)).digest('hex').slice(0, 12);
  return `${cellName(id.dataset, id.config.model, id.row)}__s${id.config.seed}-${hash}`;
}

/** The cell's identity and results when the folder holds a finished run of exactly this cell. */
async function finishedCell(dir: string, id: CellIdentity): Promise<TrainResults | null> {
  if (!(await exists(join(dir, 'cell.json')))) return null;
  const saved = await readFile(join(dir, 'cell.json'), 'utf8');
  if (saved.trim() !== JSON.stringify(id, null, 2))
    fail(`${dir}: holds another cell (cell.json differs from this cell's identity)`);
  if (!(await exists(join(dir, 'results.json')))) return null;
  const prev = JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as TrainResults;
  return prev.finished ? prev : null;
}

/** A cell of the matrix before it runs: where it sits, its config, identity and folder. */
export interface PlannedCell {
  /** dataset__model__row__s<seed>: the shards are dealt by it (see src/shard.ts). */
  key: string;
  dataset: AuditDataset;
  model: ModelName;
  row: string;
  countermeasure: string | null;
  seed: number;
  config: TrainConfig;
  id: CellIdentity;
  folder: string;
}

/** Every cell of the plan in matrix order, from the opened datasets' fingerprints. */
function planCells(
  plan: AuditPlan,
  data: Map<string, { train: string; test: string }>,
): PlannedCell[] {
  const cells: PlannedCell[] = [];
  for (const { row, strategy, countermeasure } of auditRows(plan.strategies, plan.countermeasures))
    for (const model of plan.models)
      for (const d of plan.datasets)
        for (const seed of plan.seeds ?? [0]) {
          const config = plan.configFor(model, strategy, countermeasure, seed);
          const fp = data.get(d.name) as { train: string; test: string };
          const id: CellIdentity = {
            dataset: d.name,
            row,
            backend: plan.backend,
            config,
            train: fp.train,
            test: fp.test,
          };
          const key = `${cellName(d.name, model, row)}__s${seed}`;
          cells.push({
            key,
            dataset: d,
            model,
            row,
            countermeasure,
            seed,
            config,
            id,
            folder: cellFolder(id),
          });
        }
  return cells;
}

/** Every cell of the plan (opens the datasets for their fingerprints; trains nothing). */
export async function auditCells(plan: AuditPlan): Promise<PlannedCell[]> {
  return planCells(plan, await openAuditDatasets(plan.datasets));
}

export interface RunAuditOptions {
  /** Run only the cells whose key this accepts (a shard's); the others are left alone. */
  only?: (key: string) => boolean;
  /** Called with every cell of the matrix before any is run (to record the matrix). */
  onCells?: (cells: PlannedCell[]) => Promise<void>;
}

/** Runs (or resumes) every cell (or those `options.only` accepts); `hooks` reports progress. */
export async function runAudit(
  plan: AuditPlan,
  outDir: string,
  hooks: (cell: string) => TrainHooks,
  log: (line: string) => void,
  options: RunAuditOptions = {},
): Promise<AuditCell[]> {
  const data = await openAuditDatasets(plan.datasets);
  await mkdir(join(outDir, 'cells'), { recursive: true });
  const planned = planCells(plan, data);
  await options.onCells?.(planned);
  const cells: AuditCell[] = [];
  const transformed = new Map<string, TrainingData>();
  /** A dataset's training images under a config's countermeasure (made once, kept for reuse). */
  const dataFor = async (name: string, config: TrainConfig, shouldStop?: () => boolean) => {
    const plain = (data.get(name) as { data: TrainingData }).data;
    const key = `${name}\n${config.countermeasure ?? ''}`;
    const d = transformed.get(key) ?? (await jobData(config, plain, undefined, shouldStop));
    if (d && config.countermeasure) transformed.set(key, d);
    return d;
  };
  for (const c of planned) {
    if (options.only && !options.only(c.key)) continue;
    const { dataset: d, model, row, seed, config, id, folder } = c;
    const dir = join(outDir, 'cells', folder);
    const prev = await finishedCell(dir, id);
    if (prev) {
      cells.push({ dataset: d.name, model, strategy: row, seed, folder, results: prev });
      log(`${folder}: done before (${(100 * (prev.finalTestAccuracy ?? 0)).toFixed(2)}%)`);
      continue;
    }
    await mkdir(dir, { recursive: true });
    await writeFileAtomic(join(dir, 'cell.json'), JSON.stringify(id, null, 2) + '\n');
    const files = {
      results: join(dir, 'results.json'),
      log: join(dir, 'log.csv'),
      checkpoint: join(dir, 'checkpoint'),
    };
    const meta = { backend: plan.backend, data: d.dir, strategy: row, preset: plan.preset };
    const cellHooks = hooks(folder);
    const train = await dataFor(d.name, config, cellHooks.shouldStop);
    if (!train) return cells; // stopped while the countermeasure ran: nothing of the cell to keep
    const results = await runTrainJob(config, train, files, meta, cellHooks);
    if (!results.finished) return cells;
    cells.push({ dataset: d.name, model, strategy: row, seed, folder, results });
    log(`${folder}: ${(100 * (results.finalTestAccuracy ?? 0)).toFixed(2)}% clean-test accuracy`);
  }
  return cells;
}

export function datasetName(dir: string): string {
  return basename(dir.replace(/\/+$/, '')) || dir;
}

/**
 * The protected columns, each named by its method from its manifest (OPS, EM, CIFAR-10-S, random
 * noise), as in the paper's Table 5; folders without a manifest keep their folder name. Columns
 * that would share a name get the folder name added.
 */
export async function protectedDatasets(dirs: string[]): Promise<AuditDataset[]> {
  const found = await Promise.all(
    dirs.map(async (dir) => {
      if (!(await exists(join(dir, MANIFEST))))
        return { dir, label: datasetName(dir), kind: 'protected' };
      const m = await readManifest(dir);
      return { dir, label: methodLabel(m), kind: m.method };
    }),
  );
  const count = new Map<string, number>();
  for (const f of found) count.set(f.label, (count.get(f.label) ?? 0) + 1);
  return found.map((f) => ({
    name: (count.get(f.label) ?? 0) > 1 ? `${f.label} (${datasetName(f.dir)})` : f.label,
    dir: f.dir,
    kind: f.kind,
  }));
}
