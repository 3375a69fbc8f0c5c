/**
 * The sharded steps of protect (OPS only), each writing its own output under one lock:
 *   stats   statistics of shard I's run of training images → a JSON file
 *   merge   every shard's statistics merged exactly, pixels chosen → the plan file
 *   write   shard I's part of the protected copy, in the output folder all shards share
 * The CLI (src/cli/protect-shard.ts) reads the flags and prints; the work and its writes are here.
 */
import { dirname, resolve } from 'node:path';
import type { DatasetKind, OutputFormat } from '../data/formats.js';
import { fail } from '../errors.js';
import { createFolder, exists, holdOutput, writeFileAtomic } from '../output.js';
import type { Shard } from '../shard.js';
import type { Objective } from '../shortcut/search.js';
import type { Plan } from './plan.js';

export type ShardedStep = 'stats' | 'merge' | 'write';

export interface ShardedOptions {
  step: ShardedStep;
  /** The output: the statistics file, the plan file, or the shared protected folder. */
  out: string;
  force: boolean;
  /** stats and write: the shard, and the dataset it reads. */
  shard?: Shard;
  dataset?: DatasetKind;
  dataDir?: string;
  channels?: 1 | 3;
  /** stats: the search objective. */
  objective?: Objective;
  /** merge: the statistics files and the pixels per class. */
  mergeStats?: string[];
  pixels?: number;
  /** write: the plan file and the output format. */
  plan?: string;
  format?: OutputFormat;
  onImage?: (phase: 'search' | 'write', done: number, total: number) => void;
}

export type ShardedResult =
  | { step: 'merge'; plan: Plan; json: string }
  | { step: 'stats'; records: { first: number; count: number; total: number } }
  | { step: 'write'; records: { first: number; count: number }; finalized: boolean };

/** Makes this process the one writer of `path` (or of a part of it: one shard's). */
async function hold(path: string, part?: string): Promise<void> {
  await createFolder(dirname(resolve(path)));
  await holdOutput(path, '--out', part);
}

/** Writes the file `path` whole, replacing one already there only with `force`. */
async function writeNew(path: string, text: string, force: boolean): Promise<void> {
  if (!force && (await exists(path)))
    fail(`${path}: already exists (--out); pass --force to replace it`);
  await writeFileAtomic(path, text, { replace: force });
}

function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) fail(`sharded protect: ${what} missing`);
  return v;
}

/** Runs one sharded step; its output is held (locked) from before any work to the end. */
export async function runShardedStep(o: ShardedOptions): Promise<ShardedResult> {
  if (o.step === 'merge') {
    await hold(o.out);
    const { mergePlan, planJson } = await import('./plan.js');
    const plan = await mergePlan(need(o.mergeStats, '--merge-stats'), o.pixels ?? 1);
    const json = planJson(plan);
    await writeNew(o.out, json, o.force);
    return { step: 'merge', plan, json };
  }
  const shard = o.shard ?? { index: 0, count: 1 };
  const dataset = need(o.dataset, '--dataset');
  const dataDir = need(o.dataDir, '--data-dir');
  if (o.step === 'stats') {
    const { shardStats } = await import('./plan.js');
    await hold(o.out);
    if (!o.force && (await exists(o.out)))
      fail(`${o.out}: already exists (--out); pass --force to replace it`);
    const s = await shardStats({
      dataset,
      dataDir,
      channels: o.channels,
      objective: need(o.objective, '--objective'),
      shard,
      onImage: (d, total) => o.onImage?.('search', d, total),
    });
    await writeNew(o.out, JSON.stringify(s) + '\n', o.force);
    return { step: 'stats', records: s.records };
  }
  const { readPlan } = await import('./plan.js');
  const { writeShard } = await import('./shard-write.js');
  const planPath = need(o.plan, '--plan');
  // Shards share the folder by design; two runs of the same shard do not.
  await hold(o.out, `shard-${shard.index}-of-${shard.count}`);
  const plan = await readPlan(planPath);
  if (plan.dataset !== dataset)
    fail(`--dataset ${dataset}, but the plan ${planPath} is of a ${plan.dataset} dataset`);
  const r = await writeShard({
    planPath,
    plan,
    dataDir,
    channels: o.channels,
    out: o.out,
    format: o.format,
    shard,
    onImage: (d, total) => o.onImage?.('write', d, total),
  });
  return { step: 'write', records: r.records, finalized: r.finalized };
}
