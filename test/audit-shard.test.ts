/**
 * Sharded audit (--shard, --list-cells, --report): every cell belongs to exactly one shard, the
 * shards' cells assembled by --report equal one audit's cells, the report names the missing cells
 * until every shard has run, and a shard of another audit is refused.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { runCli, smallAudit, tempDirs } from './helpers.js';

const tmp = tempDirs('audit-shard');

interface Results {
  complete: boolean;
  missing: string[];
  cells: Array<{ dataset: string; seed: number; folder: string; results: Record<string, unknown> }>;
}

/** A cell's results without what depends on the machine's speed. */
function outcome(c: Results['cells'][number]): Record<string, unknown> {
  const rest = { ...c.results };
  delete rest.seconds;
  delete rest.imagesPerSecond;
  return { ...rest, folder: c.folder, dataset: c.dataset, seed: c.seed };
}

async function results(dir: string): Promise<Results> {
  return JSON.parse(await readFile(path.join(dir, 'results.json'), 'utf8')) as Results;
}

describe('sharded audit', () => {
  it('shards cover every cell once and assemble into the single audit’s results', async () => {
    const work = await tmp();
    const args = ['audit', ...(await smallAudit(work, 'data_batch_1.bin'))];

    const listed = await runCli([...args, '--list-cells']);
    assert.equal(listed.code, 0, listed.stderr);
    const all = listed.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/)[1]);
    assert.deepEqual(all, [
      'clean__lenet5__standard__s0',
      'clean__lenet5__standard__s1',
      'OPS__lenet5__standard__s0',
      'OPS__lenet5__standard__s1',
    ]);
    const byShard: string[][] = [];
    for (let i = 0; i < 3; i++) {
      const r = await runCli([...args, '--list-cells', '--shard', `${i}/3`]);
      byShard.push(
        r.stdout
          .trim()
          .split('\n')
          .filter((l) => l)
          .map((l) => l.split(/\s+/)[1]),
      );
      for (const l of r.stdout.trim().split('\n')) assert.match(l, new RegExp(`^${i}/3 `));
    }
    assert.deepEqual(byShard.flat().sort(), [...all].sort(), 'each cell in exactly one shard');

    const single = path.join(work, 'single');
    const s = await runCli([...args, '--out', single]);
    assert.equal(s.code, 0, s.stderr);

    const out = path.join(work, 'sharded');
    const r2 = await runCli([...args, '--out', out, '--shard', '2/3']);
    assert.equal(r2.code, 0, r2.stderr);
    assert.match(r2.stdout, /shard 2\/3: 1 of its 1 cells finished/);
    const partial = await runCli(['audit', '--out', out, '--report']);
    assert.equal(partial.code, 0, partial.stderr);
    const missing = all.filter((k) => !byShard[2].includes(k));
    assert.match(
      partial.stdout,
      new RegExp(`1 of 4 cells present; missing .*: ${missing.join(', ')}`),
    );
    const p = await results(out);
    assert.equal(p.complete, false);
    assert.deepEqual(p.missing, missing);

    // A cell of this audit started and not finished (its shard still running, or killed)…
    const started = (await readdir(path.join(single, 'cells'))).find((f) =>
      f.startsWith(`${missing[0]}-`),
    ) as string;
    await mkdir(path.join(out, 'cells', started));
    await copyFile(
      path.join(single, 'cells', started, 'cell.json'),
      path.join(out, 'cells', started, 'cell.json'),
    );
    // …so a shard of another audit (other epochs) is refused, not mixed in.
    const other = await runCli([...args.slice(0, -1), '3', '--out', out, '--shard', '0/3']);
    assert.equal(other.code, 1);
    assert.match(
      other.stderr,
      /audit\.json: describes another audit \(its cells differ\), with 1 cell\(s\) started and unfinished/,
    );

    for (const i of [0, 1])
      assert.equal((await runCli([...args, '--out', out, '--shard', `${i}/3`])).code, 0);
    const full = await runCli(['audit', '--out', out, '--report']);
    assert.match(full.stdout, /4 of 4 cells present; the audit is complete/);
    const a = await results(out);
    const b = await results(single);
    assert.equal(a.complete, true);
    assert.deepEqual(a.cells.map(outcome), b.cells.map(outcome));
    assert.ok((a.cells[0].results.trainLoss as number[]).length === 2);
    assert.equal(
      await readFile(path.join(out, 'table.md'), 'utf8'),
      await readFile(path.join(single, 'table.md'), 'utf8'),
    );
    assert.equal(
      await readFile(path.join(out, 'audit.json'), 'utf8'),
      await readFile(path.join(single, 'audit.json'), 'utf8'),
    );

    // Archived: the datasets moved away since. The report is still assembled, without the sample
    // pictures, saying why; the figures are the same.
    const html = await readFile(path.join(out, 'report.html'), 'utf8');
    assert.match(html, /<h3>OPS<\/h3>/);
    await rename(path.join(work, 'clean'), path.join(work, 'clean-moved'));
    const archived = await runCli(['audit', '--out', out, '--report']);
    assert.equal(archived.code, 0, archived.stderr);
    const html2 = await readFile(path.join(out, 'report.html'), 'utf8');
    assert.doesNotMatch(html2, /<h3>OPS<\/h3>/);
    assert.ok(html2.includes(`No sample pictures: ${path.join(work, 'clean')} not found`));
    assert.deepEqual((await results(out)).cells.map(outcome), b.cells.map(outcome));
    assert.equal(
      await readFile(path.join(out, 'table.md'), 'utf8'),
      await readFile(path.join(single, 'table.md'), 'utf8'),
    );
  });

  it('--report reads --out only, and needs a folder an audit wrote', async () => {
    const dir = await tmp();
    const r = await runCli(['audit', '--out', dir, '--report']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /audit\.json: not found; --report assembles a folder/);
    const f = await runCli(['audit', '--out', dir, '--report', '--models', 'lenet5']);
    assert.equal(f.code, 1);
    assert.match(f.stderr, /--models does not apply with --report/);
    const n = await runCli(['audit', '--clean', dir, '--protected', dir]);
    assert.equal(n.code, 1);
    assert.match(n.stderr, /required option '--out <dir>'/);
  });
});
