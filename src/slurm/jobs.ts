/**
 * The jobs of the two sharded flows. Protect: an array computing each shard's statistics, one job
 * merging them into the plan, an array writing each shard's part of the protected copy. Audit: an
 * array running each shard's cells into the shared --out, one job assembling the report from the
 * cells present (it runs even when some cells failed, and names them).
 */
import { join } from 'node:path';
import type { JobScript } from './sbatch.js';

export type Step = { file: string; after: 'afterok' | 'afterany' | null };

export interface ProtectJobOptions {
  /** How the jobs start onepixel, e.g. ['/usr/bin/node', '/opt/onepixel/dist/src/cli/main.js']. */
  onepixel: string[];
  dataset: string;
  dataDir: string;
  out: string;
  shards: number;
  jobsDir: string;
  format?: string;
  objective?: string;
  pixels?: number;
  channels?: number;
}

export function protectJobs(o: ProtectJobOptions): { jobs: JobScript[]; steps: Step[] } {
  const n = o.shards;
  const data = ['--dataset', o.dataset, '--data-dir', o.dataDir];
  const channels = o.channels ? ['--channels', String(o.channels)] : [];
  const statsDir = join(o.jobsDir, 'stats');
  const plan = join(o.jobsDir, 'plan.json');
  const jobs: JobScript[] = [
    {
      file: 'stats.sbatch',
      name: 'stats',
      array: n,
      command: [
        ...o.onepixel,
        'protect',
        ...data,
        ...channels,
        ...(o.objective ? ['--objective', o.objective] : []),
        '--stats-only',
        '--shard',
        { task: (id) => `${id}/${n}` },
        '--out',
        { task: (id) => join(statsDir, `shard-${id}.json`) },
      ],
    },
    {
      file: 'merge.sbatch',
      name: 'merge',
      array: null,
      command: [
        ...o.onepixel,
        'protect',
        '--merge-stats',
        ...Array.from({ length: n }, (_, i) => join(statsDir, `shard-${i}.json`)),
        ...(o.pixels ? ['--pixels', String(o.pixels)] : []),
        '--out',
        plan,
      ],
    },
    {
      file: 'write.sbatch',
      name: 'write',
      array: n,
      command: [
        ...o.onepixel,
        'protect',
        ...data,
        ...channels,
        ...(o.format ? ['--format', o.format] : []),
        '--plan',
        plan,
        '--shard',
        { task: (id) => `${id}/${n}` },
        '--out',
        o.out,
      ],
    },
  ];
  return {
    jobs,
    steps: [
      { file: 'stats.sbatch', after: null },
      { file: 'merge.sbatch', after: 'afterok' },
      { file: 'write.sbatch', after: 'afterok' },
    ],
  };
}

export interface AuditJobOptions {
  onepixel: string[];
  /** `onepixel audit`'s own arguments, --out included. */
  args: string[];
  out: string;
  shards: number;
}

export function auditJobs(o: AuditJobOptions): { jobs: JobScript[]; steps: Step[] } {
  const n = o.shards;
  return {
    jobs: [
      {
        file: 'cells.sbatch',
        name: 'cells',
        array: n,
        command: [...o.onepixel, 'audit', ...o.args, '--shard', { task: (id) => `${id}/${n}` }],
      },
      {
        file: 'report.sbatch',
        name: 'report',
        array: null,
        command: [...o.onepixel, 'audit', '--out', o.out, '--report'],
      },
    ],
    steps: [
      { file: 'cells.sbatch', after: null },
      { file: 'report.sbatch', after: 'afterany' },
    ],
  };
}
