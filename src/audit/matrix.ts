/**
 * The audit matrix: every (dataset × model × strategy) cell trained with the same protocol and
 * measured on the one clean test set. Each cell keeps its own results and checkpoint under the
 * audit folder, so a killed audit resumes where it stopped and finished cells are not redone.
 * Countermeasures (src/train/countermeasures.ts) add rows: `standard+jpeg:10` is the standard
 * strategy trained on JPEG-compressed copies of each dataset's training images.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { fail } from '../errors.js';
import { datasetFingerprint } from '../data/files.js';
import type { ModelName } from '../nn/models/index.js';
import { MANIFEST, methodLabel, readManifest } from '../manifest.js';
import { exists } from '../output.js';
import { type TrainingData, openTrainingData } from '../train/data.js';
import {
  applyCountermeasure,
  countermeasureName,
  parseCountermeasure,
} from '../train/countermeasures.js';
import { type EpochRecord, type TrainConfig, type TrainHooks, train } from '../train/loop.js';
import { csvLog, summarize, type TrainResults, writeFileAtomic } from '../train/results.js';

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
  results: TrainResults;
}

export interface AuditPlan {
  datasets: AuditDataset[];
  models: ModelName[];
  strategies: string[];
  /** Countermeasures applied to the training images (`none` for the plain rows); default none. */
  countermeasures?: string[];
  /** Config of a cell, from its model, strategy and countermeasure (null: none). */
  configFor: (model: ModelName, strategy: string, countermeasure: string | null) => TrainConfig;
  backend: string;
  preset: string | null;
}

/** Opens every dataset and refuses a set whose test splits differ (accuracy must be comparable). */
export async function openAuditData(datasets: AuditDataset[]): Promise<Map<string, TrainingData>> {
  const out = new Map<string, TrainingData>();
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
    out.set(d.name, data);
  }
  return out;
}

/** The rows of an audit: each strategy with each countermeasure ('none' adds the plain row). */
export function auditRows(
  strategies: string[],
  countermeasures: string[] = ['none'],
): Array<{ row: string; strategy: string; countermeasure: string | null }> {
  const names = countermeasures.map((c) =>
    countermeasureName(parseCountermeasure(c, '--countermeasures')),
  );
  return strategies.flatMap((strategy) =>
    names.map((c) =>
      c === 'none'
        ? { row: strategy, strategy, countermeasure: null }
        : { row: `${strategy}+${c}`, strategy, countermeasure: c },
    ),
  );
}

export function cellName(dataset: string, model: string, strategy: string): string {
  return `${dataset}__${model}__${strategy}`.replace(/[^A-Za-z0-9_.+-]/g, '_');
}

/** Runs (or resumes) every cell; `hooks` reports progress of the cell under way. */
export async function runAudit(
  plan: AuditPlan,
  outDir: string,
  hooks: (cell: string) => TrainHooks,
  log: (line: string) => void,
): Promise<AuditCell[]> {
  const data = await openAuditData(plan.datasets);
  await mkdir(join(outDir, 'cells'), { recursive: true });
  const cells: AuditCell[] = [];
  const transformed = new Map<string, TrainingData>();
  /** A dataset's training images under a countermeasure (made once, kept for the other models). */
  const dataFor = async (name: string, countermeasure: string | null) => {
    const plain = data.get(name) as TrainingData;
    if (countermeasure === null) return plain;
    const key = `${name}\n${countermeasure}`;
    let d = transformed.get(key);
    if (!d) {
      d = {
        ...plain,
        train: await applyCountermeasure(plain.train, parseCountermeasure(countermeasure)),
      };
      transformed.set(key, d);
    }
    return d;
  };
  for (const { row, strategy, countermeasure } of auditRows(
    plan.strategies,
    plan.countermeasures,
  )) {
    for (const model of plan.models) {
      for (const d of plan.datasets) {
        const name = cellName(d.name, model, row);
        const resultsPath = join(outDir, 'cells', `${name}.json`);
        if (await exists(resultsPath)) {
          const prev = JSON.parse(await readFile(resultsPath, 'utf8')) as TrainResults;
          if (prev.finished) {
            cells.push({ dataset: d.name, model, strategy: row, results: prev });
            log(`${name}: done before (${(100 * (prev.finalTestAccuracy ?? 0)).toFixed(2)}%)`);
            continue;
          }
        }
        const config = plan.configFor(model, strategy, countermeasure);
        const history: EpochRecord[] = [];
        const h = hooks(name);
        const run = await train(
          config,
          await dataFor(d.name, countermeasure),
          join(outDir, 'cells', `${name}.ckpt`),
          {
            ...h,
            onEpoch: async (r) => {
              history.push(r);
              await writeFileAtomic(join(outDir, 'cells', `${name}.csv`), csvLog(history));
              await h.onEpoch?.(r);
            },
          },
        );
        const results = summarize(config, run.history, {
          backend: plan.backend,
          data: d.dir,
          strategy: row,
          finished: run.finished,
          preset: plan.preset,
        });
        await writeFileAtomic(resultsPath, JSON.stringify(results, null, 2) + '\n');
        if (!run.finished) return cells;
        cells.push({ dataset: d.name, model, strategy: row, results });
        log(`${name}: ${(100 * (results.finalTestAccuracy ?? 0)).toFixed(2)}% clean-test accuracy`);
      }
    }
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
