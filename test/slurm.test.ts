/**
 * Sharded protect and audit on a real Slurm: a one-node cluster (scripts/slurm-local.sh: Debian's
 * munged, slurmctld and slurmd, started here as root, no systemd) runs the scripts that
 * `onepixel slurm …` writes, submitted with sbatch and waited for; the results must equal the
 * single-process runs. Skipped, saying why, only where the Slurm binaries are missing or the test
 * is not root; under CI (CI set, as .ci/run sets it after scripts/setup.sh installed them) a
 * missing Slurm is an error.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { writeCifar10 } from '../src/data/cifar.js';
import {
  childEnv,
  cifarClassNames,
  cifarDataset,
  cifarRecords,
  runCli,
  smallAudit,
  splits,
  tempDirs,
} from './helpers.js';

const run = promisify(execFile);
const tmp = tempDirs('slurm');
const SCRIPT = path.join(process.cwd(), 'scripts/slurm-local.sh');
const BINARIES = ['munged', 'slurmctld', 'slurmd', 'sbatch', 'sinfo'];

function skipReason(): string | false {
  const dirs = (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin']);
  const missing = BINARIES.filter((b) => !dirs.some((d) => existsSync(path.join(d, b))));
  if (missing.length > 0) {
    const why = `Slurm is not installed (missing ${missing.join(', ')}; apt-get install slurmctld slurmd munge slurm-client)`;
    if (process.env.CI) throw new Error(why);
    return why;
  }
  if (process.getuid?.() !== 0) return 'the one-node Slurm cluster starts its daemons as root';
  return false;
}

const SKIP = skipReason();
if (SKIP) process.stdout.write(`# slurm.test: skipped: ${SKIP}\n`);

let clusterDir = '';
let env: NodeJS.ProcessEnv = {};

/** Every file under `dir` (relative path → bytes). */
async function tree(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath, e.name);
    out.set(path.relative(dir, p), await readFile(p));
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

async function sh(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const r = await run(cmd, args, { env, cwd, maxBuffer: 1 << 24, timeout: 600_000 });
    return r.stdout;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${x.message}\n${x.stdout ?? ''}\n${x.stderr ?? ''}`);
  }
}

async function logsOf(jobs: string): Promise<string> {
  const dir = path.join(jobs, 'logs');
  const names = await readdir(dir);
  const texts = await Promise.all(
    names.map(async (n) => `== ${n}\n${await readFile(path.join(dir, n), 'utf8')}`),
  );
  return texts.join('\n');
}

describe('sharded jobs on a real one-node Slurm', { skip: SKIP }, () => {
  before(async () => {
    clusterDir = await tmp();
    const out = await run('bash', [SCRIPT, 'start', clusterDir], { timeout: 120_000 });
    const conf = /SLURM_CONF=(\S+)/.exec(out.stdout)?.[1];
    assert.ok(conf, `slurm-local.sh printed ${out.stdout}`);
    env = { ...childEnv(), SLURM_CONF: conf };
  });

  after(async () => {
    if (clusterDir) await run('bash', [SCRIPT, 'stop', clusterDir]);
  });

  it('the node is up and idle', async () => {
    assert.match(await sh('sinfo', ['-h', '-N', '-o', '%N %t']), /^localhost idle$/m);
  });

  it('protect: statistics array → merge → write array equals one protect, byte for byte', async () => {
    const work = await tmp();
    const data = path.join(work, 'cifar');
    const names = await cifarClassNames();
    const train = cifarDataset(await cifarRecords('data_batch_2.bin', 400), names);
    const test = cifarDataset(await cifarRecords('test_batch.bin', 40), names);
    await mkdir(data);
    await writeCifar10(data, splits(train, test));
    const single = path.join(work, 'single');
    const r = await runCli([
      'protect',
      '--dataset',
      'cifar10',
      '--data-dir',
      data,
      '--out',
      single,
      '--format',
      'npy',
    ]);
    assert.equal(r.code, 0, r.stderr);

    const jobs = path.join(work, 'jobs');
    const out = path.join(work, 'sharded');
    const g = await runCli([
      'slurm',
      'protect',
      '--dataset',
      'cifar10',
      '--data-dir',
      data,
      '--out',
      out,
      '--format',
      'npy',
      '--shards',
      '3',
      '--jobs',
      jobs,
      '--partition',
      'debug',
      '--time',
      '00:10:00',
      '--cpus-per-task',
      '1',
    ]);
    assert.equal(g.code, 0, g.stderr);
    assert.match(g.stdout, /sbatch --parsable .*stats\.sbatch/);
    assert.match(await readFile(path.join(jobs, 'write.sbatch'), 'utf8'), /#SBATCH --array=0-2\n/);
    assert.match(
      await readFile(path.join(jobs, 'stats.sbatch'), 'utf8'),
      /#SBATCH --partition=debug\n/,
    );
    await sh('bash', [path.join(jobs, 'submit.sh'), '--wait'], work);
    const logs = await logsOf(jobs);
    // Three statistics tasks, one merge, three writing tasks, each in its own Slurm log.
    const names2 = (await readdir(path.join(jobs, 'logs'))).sort();
    assert.equal(names2.filter((n) => /^stats-\d+_[0-2]\.out$/.test(n)).length, 3, logs);
    assert.equal(names2.filter((n) => /^merge-\d+\.out$/.test(n)).length, 1, logs);
    assert.equal(names2.filter((n) => /^write-\d+_[0-2]\.out$/.test(n)).length, 3, logs);
    assert.match(logs, /the last shard: wrote the test split and manifest\.json/);
    const a = await tree(out);
    const b = await tree(single);
    assert.deepEqual([...a.keys()], [...b.keys()], logs);
    for (const [k, v] of b) assert.ok(v.equals(a.get(k) as Buffer), `${k}: the same bytes`);
  });

  it('audit: the cells array → report equals one audit', async () => {
    const work = await tmp();
    const args = await smallAudit(work, 'data_batch_3.bin');
    const single = path.join(work, 'single');
    const s = await runCli(['audit', ...args, '--out', single]);
    assert.equal(s.code, 0, s.stderr);

    const jobs = path.join(work, 'jobs');
    const out = path.join(work, 'sharded');
    const g = await runCli([
      'slurm',
      'audit',
      '--shards',
      '3',
      '--jobs',
      jobs,
      '--time',
      '00:10:00',
      '--',
      ...args,
      '--out',
      out,
    ]);
    assert.equal(g.code, 0, g.stderr);
    await sh('bash', [path.join(jobs, 'submit.sh'), '--wait'], work);
    const logs = await logsOf(jobs);
    const names2 = await readdir(path.join(jobs, 'logs'));
    assert.equal(names2.filter((n) => /^cells-\d+_[0-2]\.out$/.test(n)).length, 3, logs);
    assert.match(logs, /4 of 4 cells present; the audit is complete/);
    type R = {
      complete: boolean;
      cells: Array<{ folder: string; results: Record<string, unknown> }>;
    };
    const read = async (d: string) =>
      JSON.parse(await readFile(path.join(d, 'results.json'), 'utf8')) as R;
    const a = await read(out);
    const b = await read(single);
    assert.equal(a.complete, true);
    const outcome = (c: R['cells'][number]) => ({
      folder: c.folder,
      trainLoss: c.results.trainLoss,
      testAccuracy: c.results.testAccuracy,
      config: c.results.config,
    });
    assert.equal(a.cells.length, 4);
    assert.deepEqual(a.cells.map(outcome), b.cells.map(outcome));
  });
});
