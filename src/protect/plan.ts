/**
 * Sharded protect, steps 1 and 2: each shard gathers the exact statistics of its run of training
 * images (`shardStats`, a stats file with the dataset's fingerprint and the shard's file list);
 * `mergePlan` checks the shards come from one dataset and cover it exactly once, sums them and
 * chooses the pixels: the plan, which every writing shard then applies (see shard-write.ts).
 */
import { readFile } from 'node:fs/promises';
import type { SourceFile } from '../data/dataset.js';
import { combineFolderHashes, type FolderFileHash } from '../data/folder.js';
import type { DatasetKind, OpenOptions } from '../data/formats.js';
import type { SplitShape } from '../data/parts.js';
import { fail } from '../errors.js';
import { infinityReplacer } from '../manifest.js';
import { type Shard, shardRange, shardText } from '../shard.js';
import { type ClassPixels, type Objective, selectPixels } from '../shortcut/search.js';
import { streamStats } from '../shortcut/stats.js';
import { mergeStats, statsFromJson, type StatsJson, statsToJson } from '../shortcut/stats-file.js';
import { openShardSource } from './shard-source.js';

export const STATS_KIND = 'onepixel-stats';
export const PLAN_KIND = 'onepixel-plan';

export interface StatsShardFile {
  kind: typeof STATS_KIND;
  version: 1;
  dataset: DatasetKind;
  dataDir: string;
  fingerprint: string;
  shard: Shard;
  /** The training records this shard read: [first, first + count) of total. */
  records: { first: number; count: number; total: number };
  objective: Objective;
  split: SplitShape;
  testCount: number | null;
  /** Binary formats: the input files (each shard reads them whole); folders: null. */
  sourceFiles: SourceFile[] | null;
  /** Folders: the shard's image files with their content hashes (its run of train and of test). */
  files: {
    train: FolderFileHash[];
    test: FolderFileHash[];
    dirs: { train: string; test: string | null };
  } | null;
  stats: StatsJson;
}

/** What every writing shard applies: the chosen pixels and everything the manifest records. */
export interface Plan {
  kind: typeof PLAN_KIND;
  version: 1;
  dataset: DatasetKind;
  dataDir: string;
  fingerprint: string;
  split: SplitShape;
  testCount: number | null;
  objective: Objective;
  pixelsPerClass: number;
  classes: ClassPixels[];
  /** The manifest's source.files. */
  sourceFiles: SourceFile[];
  /** How many statistics shards it was merged from. */
  shards: number;
}

export interface StatsShardOptions extends OpenOptions {
  dataset: DatasetKind;
  dataDir: string;
  objective: Objective;
  shard: Shard;
  onImage?: (done: number, total: number) => void;
}

export async function shardStats(o: StatsShardOptions): Promise<StatsShardFile> {
  const src = await openShardSource(o.dataset, o.dataDir, o);
  const range = shardRange(src.train.count, o.shard);
  const part = src.trainPart(range.first, range.count);
  const stats = await streamStats(part, o.objective === 'paper', (d) =>
    o.onImage?.(d, range.count),
  );
  let files: StatsShardFile['files'] = null;
  if (src.splitDirs) {
    const test = src.testCount === null ? null : shardRange(src.testCount, o.shard);
    files = {
      train: await src.hashFiles('train', range.first, range.count),
      test: test ? await src.hashFiles('test', test.first, test.count) : [],
      dirs: src.splitDirs,
    };
  }
  return {
    kind: STATS_KIND,
    version: 1,
    dataset: o.dataset,
    dataDir: src.dataDir,
    fingerprint: src.fingerprint,
    shard: o.shard,
    records: { ...range, total: src.train.count },
    objective: o.objective,
    split: src.train,
    testCount: src.testCount,
    sourceFiles: src.sourceFiles,
    files,
    stats: statsToJson(stats),
  };
}

async function readJson(path: string, kind: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    fail(`${path}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(text, (_k, v: unknown) => (v === 'Infinity' ? Infinity : v)) as Record<
      string,
      unknown
    >;
  } catch (e) {
    fail(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (j?.kind !== kind || j.version !== 1) fail(`${path}: not an ${kind} file (version 1)`);
  return j;
}

export async function readStatsFile(path: string): Promise<StatsShardFile> {
  return (await readJson(path, STATS_KIND)) as unknown as StatsShardFile;
}

export async function readPlan(path: string): Promise<Plan> {
  return (await readJson(path, PLAN_KIND)) as unknown as Plan;
}

export function planJson(plan: Plan): string {
  return JSON.stringify(plan, infinityReplacer, 2) + '\n';
}

/** Checks the shards are one dataset's, each once, covering every record; returns them in order. */
function checkCover(parts: Array<{ file: StatsShardFile; path: string }>) {
  const first = parts[0];
  const n = first.file.shard.count;
  const same = (k: 'dataset' | 'dataDir' | 'fingerprint' | 'objective') => {
    for (const p of parts)
      if (p.file[k] !== first.file[k])
        fail(
          `${p.path}: ${k} ${JSON.stringify(p.file[k])}, but ${first.path} has ` +
            `${JSON.stringify(first.file[k])}; every shard must come from the same dataset and search`,
        );
  };
  same('dataset');
  same('fingerprint');
  same('dataDir');
  same('objective');
  const byIndex = new Map<number, { file: StatsShardFile; path: string }>();
  for (const p of parts) {
    if (p.file.shard.count !== n)
      fail(`${p.path}: shard ${shardText(p.file.shard)}, but ${first.path} is one of ${n} shards`);
    const prev = byIndex.get(p.file.shard.index);
    if (prev)
      fail(`${p.path}: shard ${shardText(p.file.shard)} is given twice (also ${prev.path})`);
    byIndex.set(p.file.shard.index, p);
  }
  const missing = [...Array(n).keys()].filter((i) => !byIndex.has(i));
  if (missing.length > 0)
    fail(
      `shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${n}`).join(', ')} ` +
        `missing: the statistics must cover the whole dataset (${parts.length} of ${n} given)`,
    );
  const ordered = [...Array(n).keys()].map((i) => byIndex.get(i) as (typeof parts)[number]);
  let next = 0;
  for (const p of ordered) {
    const r = p.file.records;
    if (r.first !== next || r.total !== first.file.records.total)
      fail(
        `${p.path}: records ${r.first}…${r.first + r.count - 1} of ${r.total}, expected to start at ` +
          `${next} of ${first.file.records.total}`,
      );
    next += r.count;
  }
  if (next !== first.file.records.total)
    fail(`the shards cover ${next} of ${first.file.records.total} training images`);
  return ordered;
}

/** Merges every shard's statistics exactly and chooses the pixels. */
export async function mergePlan(paths: string[], pixels: number): Promise<Plan> {
  if (paths.length === 0) fail('--merge-stats: no statistics files given');
  const parts = await Promise.all(
    paths.map(async (path) => ({ path, file: await readStatsFile(path) })),
  );
  const ordered = checkCover(parts);
  const head = ordered[0].file;
  const stats = mergeStats(
    ordered.map((p) => ({ stats: statsFromJson(p.file.stats, p.path), name: p.path })),
  );
  const { split } = head;
  if (!Number.isInteger(pixels) || pixels < 1 || pixels > split.height * split.width)
    fail(
      `--pixels ${pixels}: expected an integer from 1 to H×W = ${split.height * split.width} ` +
        `for ${split.height}×${split.width} images`,
    );
  const result = selectPixels(stats, split.classNames, { objective: head.objective, pixels });
  let sourceFiles: SourceFile[];
  if (head.files) {
    const dirs = head.files.dirs;
    const all = (s: 'train' | 'test') =>
      ordered.flatMap((p) => (p.file.files as NonNullable<StatsShardFile['files']>)[s]);
    const train = all('train');
    if (train.length !== split.count)
      fail(`the shards list ${train.length} training files, the dataset has ${split.count}`);
    sourceFiles = [{ ...combineFolderHashes(dirs.train, train) }];
    if (dirs.test !== null) sourceFiles.push(combineFolderHashes(dirs.test, all('test')));
  } else {
    sourceFiles = head.sourceFiles ?? [];
  }
  return {
    kind: PLAN_KIND,
    version: 1,
    dataset: head.dataset,
    dataDir: head.dataDir,
    fingerprint: head.fingerprint,
    split,
    testCount: head.testCount,
    objective: head.objective,
    pixelsPerClass: pixels,
    classes: result.classes,
    sourceFiles,
    shards: ordered.length,
  };
}
