/**
 * The sharded steps of `onepixel protect` (OPS only):
 *   --shard I/N --stats-only --out STATS    statistics of shard I's run of training images
 *   --merge-stats STATS… --out PLAN          exact merge, pixels chosen (the plan)
 *   --plan PLAN --shard I/N --out OUT        shard I's part of the protected copy, in the shared OUT
 * Every other protect flag is refused where the step does not read it.
 */
import { dirname, resolve } from 'node:path';
import type { DatasetKind, OutputFormat } from '../data/formats.js';
import { fail } from '../errors.js';
import { createFolder, exists, holdOutput, writeFileAtomic } from '../output.js';
import { parseShard, type Shard, shardText } from '../shard.js';
import type { Objective } from '../shortcut/search.js';

export interface ShardFlags {
  dataset?: DatasetKind;
  dataDir?: string;
  out: string;
  format?: OutputFormat;
  objective: Objective;
  pixels: number;
  channels?: 1 | 3;
  force: boolean;
  json: boolean;
  method: string;
  shard?: string;
  statsOnly: boolean;
  mergeStats?: string[];
  plan?: string;
}

/** The flags any sharded step reads; everything else given on the line is refused. */
const STEP_READS: Record<'stats' | 'merge' | 'write', string[]> = {
  stats: [
    'dataset',
    'dataDir',
    'out',
    'objective',
    'channels',
    'force',
    'shard',
    'statsOnly',
    'method',
  ],
  merge: ['out', 'pixels', 'force', 'mergeStats', 'method', 'json'],
  write: ['dataset', 'dataDir', 'out', 'format', 'channels', 'plan', 'shard', 'method'],
};

export function isShardedStep(f: ShardFlags): boolean {
  return f.shard !== undefined || f.statsOnly || f.mergeStats !== undefined || f.plan !== undefined;
}

const flagName = (key: string) => '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

function need<T>(v: T | undefined, flag: string, step: string): T {
  if (v === undefined) fail(`${step} needs ${flag}`);
  return v;
}

/** Makes this process the one writer of `path` (a part of it: one shard's), refusing a second. */
async function hold(path: string, part?: string): Promise<void> {
  await createFolder(dirname(resolve(path)));
  await holdOutput(path, '--out', part);
}

/** Writes the file `path` whole, replacing one already there only with --force. */
async function writeNew(path: string, text: string, force: boolean, flag: string): Promise<void> {
  if (!force && (await exists(path)))
    fail(`${path}: already exists (${flag}); pass --force to replace it`);
  await writeFileAtomic(path, text, { replace: force });
}

export async function runShardedStep(
  f: ShardFlags,
  given: (key: string) => boolean,
  progress: (phase: 'search' | 'write', done: number, total: number) => void,
): Promise<void> {
  if (f.method !== 'ops')
    fail(
      `sharded protect (--shard, --stats-only, --merge-stats, --plan) is for --method ops, not ${f.method}`,
    );
  const step =
    f.mergeStats !== undefined
      ? 'merge'
      : f.statsOnly
        ? 'stats'
        : f.plan !== undefined
          ? 'write'
          : null;
  if (step === null) fail('--shard I/N needs --stats-only (statistics) or --plan PLAN (writing)');
  const label = { stats: '--stats-only', merge: '--merge-stats', write: '--plan' }[step];
  const reads = new Set(STEP_READS[step]);
  for (const key of Object.keys(f))
    if (given(key) && !reads.has(key)) fail(`${flagName(key)} does not apply with ${label}`);
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(2);
  if (step === 'merge') {
    const { mergePlan, planJson } = await import('../protect/plan.js');
    await hold(f.out);
    const plan = await mergePlan(f.mergeStats as string[], f.pixels);
    await writeNew(f.out, planJson(plan), f.force, '--out');
    if (f.json) {
      process.stdout.write(planJson(plan));
      return;
    }
    const lines = [
      `plan: ${plan.pixelsPerClass} pixel(s) per class (objective ${plan.objective}) from the exact ` +
        `statistics of ${plan.shards} shards, ${plan.split.count} training images, in ${secs()} s → ${f.out}`,
    ];
    for (const c of plan.classes) {
      const px = c.pixels.map((p) => `(${p.row},${p.col})=[${p.value.join(',')}]`).join(' ');
      lines.push(`  ${String(c.label).padStart(3)} ${c.name.padEnd(14)} ${px}`);
    }
    process.stdout.write(lines.join('\n') + '\n');
    return;
  }
  const shard: Shard = f.shard === undefined ? { index: 0, count: 1 } : parseShard(f.shard);
  const dataset = need(f.dataset, '--dataset', label);
  const dataDir = need(f.dataDir, '--data-dir', label);
  if (step === 'stats') {
    const { shardStats } = await import('../protect/plan.js');
    await hold(f.out);
    if (!f.force && (await exists(f.out)))
      fail(`${f.out}: already exists (--out); pass --force to replace it`);
    const s = await shardStats({
      dataset,
      dataDir,
      channels: f.channels,
      objective: f.objective,
      shard,
      onImage: (d, total) => progress('search', d, total),
    });
    await writeNew(f.out, JSON.stringify(s) + '\n', f.force, '--out');
    const r = s.records;
    process.stdout.write(
      `shard ${shardText(shard)}: statistics of training images ${r.first}…${r.first + r.count - 1} ` +
        `(${r.count} of ${r.total}) in ${secs()} s → ${f.out}\n`,
    );
    return;
  }
  if (f.shard === undefined) fail('--plan needs --shard I/N (0/1 for one writer)');
  const { readPlan } = await import('../protect/plan.js');
  const { writeShard } = await import('../protect/shard-write.js');
  const planPath = f.plan as string;
  // Shards share the folder by design; two runs of the same shard do not.
  await hold(f.out, `shard-${shard.index}-of-${shard.count}`);
  const plan = await readPlan(planPath);
  if (plan.dataset !== dataset)
    fail(`--dataset ${dataset}, but the plan ${planPath} is of a ${plan.dataset} dataset`);
  const r = await writeShard({
    planPath,
    plan,
    dataDir,
    channels: f.channels,
    out: f.out,
    format: f.format,
    shard,
    onImage: (d, total) => progress('write', d, total),
  });
  process.stdout.write(
    `shard ${shardText(shard)}: wrote protected training images ${r.records.first}…` +
      `${r.records.first + r.records.count - 1} into ${f.out} in ${secs()} s; ` +
      (r.finalized
        ? `the last shard: wrote the test split and manifest.json, ${f.out} is complete\n`
        : `${f.out} is complete once every shard has finished\n`),
  );
}
