/**
 * audit.json: what an audit folder is for — its columns, rows, models, seeds, and every cell with
 * the folder its results go to. Every run of the audit (each shard of a sharded one) writes it,
 * atomically, the same bytes for every shard of one audit. `--report` reads it and the cells'
 * results and nothing else, so assembling a report never changes a cell.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail } from '../errors.js';
import type { ModelName } from '../nn/names.js';
import { exists, writeFileAtomic } from '../output.js';
import type { TrainResults } from '../train/results.js';
import type { AuditCell, AuditDataset } from './matrix.js';

export const AUDIT_INDEX = 'audit.json';

export interface IndexedCell {
  /** dataset__model__row__s<seed>: what the shards are dealt by (no backend, no hash). */
  key: string;
  dataset: string;
  model: ModelName;
  row: string;
  seed: number;
  /** The cell's folder under cells/. */
  folder: string;
}

export interface AuditIndex {
  kind: 'onepixel-audit';
  version: 1;
  clean: string;
  datasets: AuditDataset[];
  models: string[];
  strategies: string[];
  countermeasures: string[];
  rows: string[];
  seeds: number[];
  preset: string | null;
  backend: string;
  /** 'bf16' when the cells computed in bf16 (absent: fp32, as before the setting existed). */
  precision?: 'bf16';
  cells: IndexedCell[];
}

export function cellKey(dataset: string, model: string, row: string, seed: number): string {
  return `${dataset}__${model}__${row}__s${seed}`;
}

/**
 * Writes audit.json. A run alone replaces the one there (an audit run again with other settings
 * trains new cells beside the old ones, and its report is of the new matrix). A shard replaces a
 * different one only when that audit has no cell started and unfinished: otherwise it may be
 * running (shards of another audit, or the same flags resolving to another backend on this
 * machine), and the shard is refused rather than mixed in.
 */
export async function writeAuditIndex(
  out: string,
  index: AuditIndex,
  shard: boolean,
): Promise<void> {
  const text = JSON.stringify(index, null, 2) + '\n';
  const path = join(out, AUDIT_INDEX);
  if (shard && (await exists(path))) {
    const found = await readFile(path, 'utf8');
    if (found === text) return;
    const old = JSON.parse(found) as AuditIndex;
    const started = [];
    for (const c of old.cells ?? [])
      if (await exists(join(out, 'cells', c.folder, 'cell.json'))) started.push(c);
    const { missing } = await presentCells(out, { ...old, cells: started });
    if (missing.length > 0) {
      const what = (['backend', 'precision', 'preset', 'clean'] as const).find(
        (k) => old[k] !== index[k],
      );
      fail(
        `${path}: describes another audit` +
          (what
            ? ` (${what} ${JSON.stringify(old[what])}, this shard ${JSON.stringify(index[what])})`
            : ' (its cells differ)') +
          `, with ${missing.length} cell(s) started and unfinished (${missing[0].key}…); every ` +
          'shard must run the same audit (same flags and data; give --backend where machines ' +
          `differ). If that audit is not running any more, remove ${path} (its cells stay)`,
      );
    }
  }
  await writeFileAtomic(path, text);
}

export async function readAuditIndex(out: string): Promise<AuditIndex> {
  const path = join(out, AUDIT_INDEX);
  if (!(await exists(path)))
    fail(`${path}: not found; --report assembles a folder an audit (or its shards) has written to`);
  let j: AuditIndex;
  try {
    j = JSON.parse(await readFile(path, 'utf8')) as AuditIndex;
  } catch (e) {
    fail(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (j.kind !== 'onepixel-audit' || j.version !== 1 || !Array.isArray(j.cells))
    fail(`${path}: not an onepixel audit index (version 1)`);
  return j;
}

/** The finished cells of the index, read from their folders, and those not finished. */
export async function presentCells(
  out: string,
  index: AuditIndex,
): Promise<{ cells: AuditCell[]; missing: IndexedCell[] }> {
  const cells: AuditCell[] = [];
  const missing: IndexedCell[] = [];
  for (const c of index.cells) {
    const path = join(out, 'cells', c.folder, 'results.json');
    let results: TrainResults | null = null;
    if (await exists(path)) {
      try {
        results = JSON.parse(await readFile(path, 'utf8')) as TrainResults;
      } catch (e) {
        fail(`${path}: not valid JSON (${(e as Error).message})`);
      }
    }
    if (results?.finished)
      cells.push({
        dataset: c.dataset,
        model: c.model,
        strategy: c.row,
        seed: c.seed,
        folder: c.folder,
        results,
      });
    else missing.push(c);
  }
  return { cells, missing };
}
