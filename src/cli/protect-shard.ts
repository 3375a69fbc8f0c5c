/**
 * The flags of the sharded steps of `onepixel protect` (OPS only), read here and run by
 * src/protect/sharded.ts:
 *   --shard I/N --stats-only --out STATS    statistics of shard I's run of training images
 *   --merge-stats STATS… --out PLAN          exact merge, pixels chosen (the plan)
 *   --plan PLAN --shard I/N --out OUT        shard I's part of the protected copy, in the shared OUT
 * Every other protect flag is refused where the step does not read it.
 */
import type { DatasetKind, OutputFormat } from '../data/formats.js';
import { fail } from '../errors.js';
import { parseShard, shardText } from '../shard.js';
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
  if (step !== 'merge') {
    need(f.dataset, '--dataset', label);
    need(f.dataDir, '--data-dir', label);
  }
  if (step === 'write' && f.shard === undefined)
    fail('--plan needs --shard I/N (0/1 for one writer)');
  const shard = f.shard === undefined ? undefined : parseShard(f.shard);
  const t0 = performance.now();
  const secs = () => ((performance.now() - t0) / 1000).toFixed(2);
  const { runShardedStep: run } = await import('../protect/sharded.js');
  const r = await run({
    step,
    out: f.out,
    force: f.force,
    shard,
    dataset: f.dataset,
    dataDir: f.dataDir,
    channels: f.channels,
    objective: f.objective,
    mergeStats: f.mergeStats,
    pixels: f.pixels,
    plan: f.plan,
    format: f.format,
    onImage: progress,
  });
  const s = shardText(shard ?? { index: 0, count: 1 });
  if (r.step === 'merge') {
    const plan = r.plan;
    if (f.json) {
      process.stdout.write(r.json);
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
  } else if (r.step === 'stats') {
    const q = r.records;
    process.stdout.write(
      `shard ${s}: statistics of training images ${q.first}…${q.first + q.count - 1} ` +
        `(${q.count} of ${q.total}) in ${secs()} s → ${f.out}\n`,
    );
  } else {
    process.stdout.write(
      `shard ${s}: wrote protected training images ${r.records.first}…` +
        `${r.records.first + r.records.count - 1} into ${f.out} in ${secs()} s; ` +
        (r.finalized
          ? `the last shard: wrote the test split and manifest.json, ${f.out} is complete\n`
          : `${f.out} is complete once every shard has finished\n`),
    );
  }
}
