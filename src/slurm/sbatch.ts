/**
 * sbatch scripts for sharded jobs: an array job whose task I runs `onepixel … --shard I/N`, and
 * single jobs that depend on it (the merge of protect's statistics, the audit's report). The
 * scripts hold no job ids: dependencies are given when submitting (`submitScript` chains them
 * with `sbatch --parsable`), so the same scripts can be submitted again.
 */
import { join } from 'node:path';

/** sbatch options passed through to every job (null: not given, Slurm's default). */
export interface SlurmResources {
  partition?: string;
  time?: string;
  cpusPerTask?: number;
  gpusPerTask?: number;
  mem?: string;
  account?: string;
  /** Further `--flag=value` lines, verbatim. */
  extra?: string[];
}

export interface JobScript {
  /** File name under the jobs folder, e.g. `stats.sbatch`. */
  file: string;
  name: string;
  /** An array of this many tasks (0 … n-1), or a single job. */
  array: number | null;
  /** The command, words unquoted; `$SLURM_ARRAY_TASK_ID` is expanded by the shell in words
   * given as `{ task: … }`. */
  command: Array<string | { task: (id: string) => string }>;
}

/** Single-quotes a word for sh (`'` becomes `'\''`); plain words stay as they are. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function resourceLines(r: SlurmResources): string[] {
  const lines: string[] = [];
  if (r.partition) lines.push(`--partition=${r.partition}`);
  if (r.account) lines.push(`--account=${r.account}`);
  if (r.time) lines.push(`--time=${r.time}`);
  if (r.cpusPerTask) lines.push(`--cpus-per-task=${r.cpusPerTask}`);
  if (r.gpusPerTask) lines.push(`--gpus-per-task=${r.gpusPerTask}`);
  if (r.mem) lines.push(`--mem=${r.mem}`);
  lines.push(...(r.extra ?? []));
  return lines;
}

/** The text of one sbatch script; `cwd` is where the command runs (relative paths resolve there). */
export function sbatchScript(
  job: JobScript,
  resources: SlurmResources,
  jobsDir: string,
  cwd: string,
): string {
  const log = job.array === null ? `${job.name}-%j.out` : `${job.name}-%A_%a.out`;
  const directives = [
    `--job-name=onepixel-${job.name}`,
    ...(job.array === null ? [] : [`--array=0-${job.array - 1}`]),
    `--output=${join(jobsDir, 'logs', log)}`,
    ...resourceLines(resources),
  ];
  const words = job.command.map((w) =>
    typeof w === 'string' ? shellQuote(w) : `"${w.task('${SLURM_ARRAY_TASK_ID}')}"`,
  );
  return [
    '#!/bin/bash',
    `# Written by onepixel slurm: ${job.array === null ? 'one job' : `an array of ${job.array} shards`}.`,
    ...directives.map((d) => `#SBATCH ${d}`),
    'set -euo pipefail',
    `cd ${shellQuote(cwd)}`,
    `exec ${words.join(' ')}`,
    '',
  ].join('\n');
}

/**
 * A shell script submitting `steps` in order, each depending on the one before (`afterok`, or
 * `afterany` where a step should run whatever happened, e.g. a report of the cells present).
 * Arguments (e.g. `--wait`) go to the last sbatch.
 */
export function submitScript(
  jobsDir: string,
  steps: Array<{ file: string; after: 'afterok' | 'afterany' | null }>,
): string {
  const lines = [
    '#!/bin/bash',
    '# Written by onepixel slurm: submits the jobs, chained.',
    'set -euo pipefail',
  ];
  steps.forEach((s, i) => {
    const last = i === steps.length - 1;
    const dep = s.after ? ` --dependency=${s.after}:$job${i - 1}` : '';
    const path = shellQuote(join(jobsDir, s.file));
    lines.push(
      last ? `sbatch${dep} "$@" ${path}` : `job${i}=$(sbatch --parsable${dep} ${path})`,
      ...(last ? [] : [`echo "submitted ${s.file}: job $job${i}"`]),
    );
  });
  return lines.join('\n') + '\n';
}

/** The commands a person types to submit the chain by hand. */
export function submitCommands(
  jobsDir: string,
  steps: Array<{ file: string; after: 'afterok' | 'afterany' | null }>,
): string[] {
  return steps.map((s, i) => {
    const dep = s.after ? ` --dependency=${s.after}:$job${i - 1}` : '';
    const path = shellQuote(join(jobsDir, s.file));
    return i === steps.length - 1
      ? `sbatch${dep} ${path}`
      : `job${i}=$(sbatch --parsable${dep} ${path})`;
  });
}
