/**
 * The sbatch scripts of `onepixel slurm` (src/slurm/, src/cli/slurm.ts), checked without a cluster:
 * bash reads back every quoted word unchanged, and submit.sh, run against a stand-in `sbatch` that
 * records its arguments, submits the jobs in order with each dependency on the job before.
 * test/slurm.test.ts runs the same scripts on a real Slurm.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { shellQuote } from '../src/slurm/sbatch.js';
import { runCli, tempDirs } from './helpers.js';

const tmp = tempDirs('slurm-scripts');

/** A stand-in sbatch: logs its arguments, prints the next job id (--parsable) as sbatch does. */
async function fakeSbatch(dir: string): Promise<string> {
  const bin = path.join(dir, 'bin');
  execFileSync('mkdir', ['-p', bin]);
  const log = path.join(dir, 'sbatch.log');
  await writeFile(
    path.join(bin, 'sbatch'),
    `#!/bin/bash\nn=$(( $(wc -l < ${log} 2>/dev/null || echo 0) + 101 ))\necho "$*" >> ${log}\n` +
      `if [[ " $* " == *" --parsable "* ]]; then echo $n; else echo "Submitted batch job $n"; fi\n`,
  );
  await chmod(path.join(bin, 'sbatch'), 0o755);
  return bin;
}

describe('onepixel slurm', () => {
  it('quotes every word so that bash reads it back unchanged', () => {
    const words = ["it's", 'a b', '$HOME', '"q"', 'back\\slash', '', 'plain/path.json', '*', '\n'];
    const out = execFileSync('bash', ['-c', `printf '%s\\0' ${words.map(shellQuote).join(' ')}`]);
    assert.deepEqual(out.toString('utf8').split('\0').slice(0, -1), words);
  });

  it('protect: three scripts, arrays of N, resources passed through, chained afterok', async () => {
    const dir = await tmp();
    const jobs = path.join(dir, 'jobs');
    const r = await runCli([
      'slurm',
      'protect',
      '--dataset',
      'folder',
      '--data-dir',
      path.join(dir, 'my data'),
      '--out',
      path.join(dir, 'out'),
      '--shards',
      '4',
      '--jobs',
      jobs,
      '--partition',
      'cpu',
      '--time',
      '01:00:00',
      '--cpus-per-task',
      '3',
      '--gpus-per-task',
      '1',
      '--mem',
      '8G',
      '--account',
      'lab',
      '--sbatch=--qos=long',
      '--pixels',
      '2',
      '--format',
      'npy',
      '--onepixel',
      '/opt/bin/onepixel',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const stats = await readFile(path.join(jobs, 'stats.sbatch'), 'utf8');
    for (const line of [
      '#SBATCH --array=0-3',
      '#SBATCH --partition=cpu',
      '#SBATCH --account=lab',
      '#SBATCH --time=01:00:00',
      '#SBATCH --cpus-per-task=3',
      '#SBATCH --gpus-per-task=1',
      '#SBATCH --mem=8G',
      '#SBATCH --qos=long',
      `#SBATCH --output=${jobs}/logs/stats-%A_%a.out`,
    ])
      assert.ok(stats.split('\n').includes(line), `${line} in\n${stats}`);
    assert.match(
      stats,
      new RegExp(
        `exec /opt/bin/onepixel protect --dataset folder --data-dir '${dir}/my data' --stats-only ` +
          `--shard "\\$\\{SLURM_ARRAY_TASK_ID\\}/4" --out "${jobs}/stats/shard-\\$\\{SLURM_ARRAY_TASK_ID\\}.json"\n`,
      ),
    );
    const merge = await readFile(path.join(jobs, 'merge.sbatch'), 'utf8');
    assert.ok(!merge.includes('--array'));
    assert.match(merge, /--merge-stats (\S+shard-[0-3]\.json ){4}--pixels 2 --out \S+plan\.json\n/);
    const write = await readFile(path.join(jobs, 'write.sbatch'), 'utf8');
    assert.match(
      write,
      /--format npy --plan \S+plan\.json --shard "\$\{SLURM_ARRAY_TASK_ID\}\/4" --out \S+out\n/,
    );
    // The task id reaches the command as bash expands it in a real array task.
    const cmd = /^exec (.*)$/m.exec(write)?.[1] as string;
    const words = execFileSync('bash', ['-c', `printf '%s\\n' ${cmd}`], {
      env: { ...process.env, SLURM_ARRAY_TASK_ID: '2' },
    }).toString();
    assert.match(words, /^--shard\n2\/4$/m);

    const bin = await fakeSbatch(dir);
    execFileSync('bash', [path.join(jobs, 'submit.sh'), '--wait'], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    const calls = (await readFile(path.join(dir, 'sbatch.log'), 'utf8')).trim().split('\n');
    assert.deepEqual(calls, [
      `--parsable ${jobs}/stats.sbatch`,
      `--parsable --dependency=afterok:101 ${jobs}/merge.sbatch`,
      `--dependency=afterok:102 --wait ${jobs}/write.sbatch`,
    ]);
    assert.match(
      r.stdout,
      /job1=\$\(sbatch --parsable --dependency=afterok:\$job0 \S+merge\.sbatch\)/,
    );
  });

  it('audit: the cells array with the audit arguments, then the report after any outcome', async () => {
    const dir = await tmp();
    const jobs = path.join(dir, 'jobs');
    const r = await runCli([
      'slurm',
      'audit',
      '--shards',
      '3',
      '--jobs',
      jobs,
      '--onepixel',
      'onepixel',
      '--',
      '--clean',
      'c',
      '--protected',
      'p,q',
      '--models',
      'lenet5',
      '--out',
      'A',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const cells = await readFile(path.join(jobs, 'cells.sbatch'), 'utf8');
    assert.match(cells, /#SBATCH --array=0-2\n/);
    assert.match(
      cells,
      /exec onepixel audit --clean c --protected p,q --models lenet5 --out A --shard "\$\{SLURM_ARRAY_TASK_ID\}\/3"\n/,
    );
    assert.match(
      await readFile(path.join(jobs, 'report.sbatch'), 'utf8'),
      /exec onepixel audit --out A --report\n/,
    );
    const bin = await fakeSbatch(dir);
    execFileSync('bash', [path.join(jobs, 'submit.sh')], {
      env: { ...process.env, PATH: `${bin}:${process.env.PATH}` },
    });
    const calls = (await readFile(path.join(dir, 'sbatch.log'), 'utf8')).trim().split('\n');
    assert.deepEqual(calls, [
      `--parsable ${jobs}/cells.sbatch`,
      `--dependency=afterany:101 ${jobs}/report.sbatch`,
    ]);
  });

  it('refuses an audit without --out, --shard among the audit arguments, a bad --sbatch', async () => {
    const dir = await tmp();
    const a = await runCli([
      'slurm',
      'audit',
      '--shards',
      '2',
      '--jobs',
      dir,
      '--',
      '--clean',
      'c',
    ]);
    assert.equal(a.code, 1);
    assert.match(a.stderr, /must include --out DIR/);
    const b = await runCli([
      'slurm',
      'audit',
      '--shards',
      '2',
      '--jobs',
      dir,
      '--',
      '--out',
      'A',
      '--shard',
      '0/2',
    ]);
    assert.equal(b.code, 1);
    assert.match(b.stderr, /--shards, not --shard/);
    const c = await runCli([
      'slurm',
      'protect',
      '--dataset',
      'npy',
      '--data-dir',
      'd',
      '--out',
      'o',
      '--shards',
      '2',
      '--jobs',
      dir,
      '--sbatch',
      'qos=long',
    ]);
    assert.equal(c.code, 1);
    assert.match(c.stderr, /--sbatch qos=long: expected an sbatch option/);
  });
});
