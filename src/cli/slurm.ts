/**
 * `onepixel slurm protect|audit`: writes the sbatch scripts of a sharded protect or audit (array
 * jobs for the shards, dependent jobs for the merge or report) and prints how to submit them.
 * Nothing is submitted: the scripts can be read, edited and submitted by hand or by submit.sh.
 */
import { chmod } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { fail } from '../errors.js';
import { createFolder, writeFileAtomic } from '../output.js';
import { type AuditJobOptions, auditJobs, protectJobs, type Step } from '../slurm/jobs.js';
import {
  type JobScript,
  type SlurmResources,
  sbatchScript,
  shellQuote,
  submitCommands,
  submitScript,
} from '../slurm/sbatch.js';

interface CommonFlags {
  shards: number;
  jobs: string;
  partition?: string;
  time?: string;
  cpusPerTask?: number;
  gpusPerTask?: number;
  mem?: string;
  account?: string;
  sbatch: string[];
  onepixel?: string;
}

function count(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!/^\d+$/.test(v.trim()) || n < 1)
      throw new InvalidArgumentError(`${flag} must be a positive integer (got '${v}')`);
    return n;
  };
}

/** The options every `onepixel slurm` command takes: shards, jobs folder, sbatch resources. */
function withCommon(cmd: Command): Command {
  return cmd
    .requiredOption('--shards <n>', 'number of shards (array tasks)', count('--shards'))
    .requiredOption('--jobs <dir>', 'folder for the scripts, their logs and intermediate files')
    .option('--partition <name>', 'sbatch --partition')
    .option('--account <name>', 'sbatch --account')
    .option('--time <limit>', 'sbatch --time of each task, e.g. 02:00:00')
    .option('--cpus-per-task <n>', 'sbatch --cpus-per-task', count('--cpus-per-task'))
    .option('--gpus-per-task <n>', 'sbatch --gpus-per-task', count('--gpus-per-task'))
    .option('--mem <size>', 'sbatch --mem, e.g. 16G')
    .option(
      '--sbatch <option>',
      'any other sbatch option for every job, e.g. --sbatch=--qos=long (repeatable)',
      (v: string, prev: string[]) => [...prev, v],
      [] as string[],
    )
    .option(
      '--onepixel <command>',
      'how the jobs start onepixel (default: this node and this onepixel, by absolute path)',
    );
}

function onepixelCommand(f: CommonFlags): string[] {
  if (f.onepixel) return f.onepixel.split(/\s+/).filter((w) => w.length > 0);
  return [process.execPath, resolve(process.argv[1])];
}

function resources(f: CommonFlags): SlurmResources {
  for (const s of f.sbatch)
    if (!s.startsWith('--')) fail(`--sbatch ${s}: expected an sbatch option such as --qos=long`);
  return {
    partition: f.partition,
    account: f.account,
    time: f.time,
    cpusPerTask: f.cpusPerTask,
    gpusPerTask: f.gpusPerTask,
    mem: f.mem,
    extra: f.sbatch,
  };
}

async function writeJobs(
  f: CommonFlags,
  jobsDir: string,
  jobs: JobScript[],
  steps: Step[],
  what: string,
): Promise<void> {
  await createFolder(join(jobsDir, 'logs'));
  const cwd = process.cwd();
  for (const job of jobs) {
    const path = join(jobsDir, job.file);
    await writeFileAtomic(path, sbatchScript(job, resources(f), jobsDir, cwd));
    await chmod(path, 0o755);
  }
  const submit = join(jobsDir, 'submit.sh');
  await writeFileAtomic(submit, submitScript(jobsDir, steps));
  await chmod(submit, 0o755);
  process.stdout.write(
    `${what}: ${jobs.length} sbatch scripts in ${jobsDir}. Submit them, each after the one before:\n` +
      submitCommands(jobsDir, steps)
        .map((l) => `  ${l}\n`)
        .join('') +
      `or all at once: bash ${shellQuote(submit)}  (arguments go to the last sbatch, e.g. --wait)\n`,
  );
}

interface ProtectFlags extends CommonFlags {
  dataset: string;
  dataDir: string;
  out: string;
  format?: string;
  objective?: string;
  pixels?: number;
  channels?: number;
}

function protectSub(): Command {
  return withCommon(
    new Command('protect')
      .description(
        'sbatch scripts for a sharded OPS protect: statistics per shard (array), their merge into ' +
          'the plan, the protected copy written per shard (array) into the one --out',
      )
      .requiredOption('--dataset <kind>', 'input dataset kind (as onepixel protect)')
      .requiredOption('--data-dir <dir>', 'the dataset, on a filesystem every node sees')
      .requiredOption('--out <dir>', 'the protected copy, on a filesystem every node sees')
      .option('--format <format>', 'output format (as onepixel protect)')
      .option('--objective <name>', 'search objective (as onepixel protect)')
      .option('--pixels <k>', 'pixels per class', count('--pixels'))
      .addOption(
        new Option('--channels <c>', 'folder datasets: 1 or 3 channels')
          .choices(['1', '3'])
          .argParser(Number),
      ),
  ).action(async (f: ProtectFlags) => {
    const jobsDir = resolve(f.jobs);
    await createFolder(join(jobsDir, 'stats'));
    const { jobs, steps } = protectJobs({
      onepixel: onepixelCommand(f),
      dataset: f.dataset,
      dataDir: resolve(f.dataDir),
      out: resolve(f.out),
      shards: f.shards,
      jobsDir,
      format: f.format,
      objective: f.objective,
      pixels: f.pixels,
      channels: f.channels,
    });
    await writeJobs(f, jobsDir, jobs, steps, `protect in ${f.shards} shards → ${resolve(f.out)}`);
  });
}

/** The value of `--out` among audit arguments (`--out DIR` or `--out=DIR`). */
export function auditOut(args: string[]): string {
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out' && i + 1 < args.length) return args[i + 1];
    if (args[i].startsWith('--out=')) return args[i].slice('--out='.length);
  }
  fail('onepixel slurm audit: the audit arguments after -- must include --out DIR');
}

function auditSub(): Command {
  return withCommon(
    new Command('audit')
      .description(
        'sbatch scripts for a sharded audit: the cells split over an array of shards, then the ' +
          'report of the cells present. Audit arguments follow --, e.g. ' +
          '`onepixel slurm audit --shards 8 --jobs J -- --clean C --protected P --out A`',
      )
      .argument('<audit-args...>', 'onepixel audit arguments (after --), --out included'),
  ).action(async (args: string[], f: CommonFlags) => {
    if (args.some((a) => a === '--shard' || a.startsWith('--shard=')))
      fail('onepixel slurm audit: give the number of shards with --shards, not --shard');
    const o: AuditJobOptions = {
      onepixel: onepixelCommand(f),
      args,
      out: auditOut(args),
      shards: f.shards,
    };
    const { jobs, steps } = auditJobs(o);
    await writeJobs(f, resolve(f.jobs), jobs, steps, `audit in ${f.shards} shards → ${o.out}`);
  });
}

export function slurmCommand(): Command {
  return new Command('slurm')
    .description('write sbatch scripts running a protect or an audit as shards on a Slurm cluster')
    .addCommand(protectSub())
    .addCommand(auditSub());
}
