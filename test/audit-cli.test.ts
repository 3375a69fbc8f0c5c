/**
 * `onepixel audit` end to end on a small real CIFAR-10 copy (NumPy format) and its OPS copy: the
 * matrix with countermeasure rows, its files, a resumed audit that redoes nothing, a refused
 * countermeasure name; cells per seed whose values equal a separate `onepixel train` of the same
 * cell and whose mean ± sd are checked by hand; cells reused only when their whole identity is the
 * same.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { cp, readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { streamOf } from '../src/data/dataset.js';
import { writeNpy } from '../src/data/npy.js';
import type { TrainResults } from '../src/train/results.js';
import {
  cifarClassNames,
  cifarDataset,
  cifarRecords,
  npyFixture,
  tempDirs,
  runCli,
} from './helpers.js';

const tmp = tempDirs('audit-cli');

const run = (args: string[]) => runCli(args);

describe('audit', () => {
  let clean: string;
  let ops: string;
  before(async () => {
    clean = await tmp();
    await npyFixture(clean, 'data_batch_1.bin', 256, 100);
    ops = path.join(await tmp(), 'ops');
    const r = await run([
      'protect',
      '--dataset',
      'npy',
      '--data-dir',
      clean,
      '--out',
      ops,
      '--format',
      'npy',
    ]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('adds a row per countermeasure, writes its files, and resumes without redoing a cell', async () => {
    const out = path.join(await tmp(), 'audit');
    const args = [
      ...['audit', '--clean', clean, '--protected', ops, '--epochs', '1', '--backend', 'wasm'],
      ...['--countermeasures', 'none,grayscale', '--out', out],
    ];
    const r = await run(args);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as {
      complete: boolean;
      rows: string[];
      cells: Array<{ dataset: string; strategy: string; results: TrainResults }>;
    };
    assert.equal(res.complete, true);
    assert.deepEqual(res.rows, ['standard', 'standard+grayscale']);
    assert.deepEqual(
      res.cells.map((c) => `${c.strategy} ${c.dataset}`),
      ['standard clean', 'standard OPS', 'standard+grayscale clean', 'standard+grayscale OPS'],
    );
    for (const c of res.cells) {
      assert.equal(
        c.results.config.countermeasure,
        c.strategy.endsWith('grayscale') ? 'grayscale' : undefined,
      );
      const acc = c.results.finalTestAccuracy ?? -1;
      assert.ok(acc >= 0 && acc <= 1, `${c.strategy} ${c.dataset}: accuracy ${acc}`);
    }
    // The same seed and protocol: only the grayscale images make the rows' losses differ.
    const loss = (row: string, ds: string) =>
      res.cells.find((c) => c.strategy === row && c.dataset === ds)?.results.trainLoss[0];
    for (const ds of ['clean', 'OPS'])
      assert.notEqual(loss('standard', ds), loss('standard+grayscale', ds), ds);
    const table = await readFile(path.join(out, 'table.md'), 'utf8');
    assert.match(table, /\| standard\+grayscale \| \d+\.\d\d \| \d+\.\d\d \|/);
    assert.match(await readFile(path.join(out, 'report.html'), 'utf8'), /countermeasure first/);
    const folders = readdirSync(path.join(out, 'cells'));
    const gray = folders.filter((f) => f.startsWith('OPS__lenet5__standard+grayscale__s0-'));
    assert.equal(gray.length, 1, folders.join(' '));
    assert.ok(existsSync(path.join(out, 'cells', gray[0], 'log.csv')));

    const again = await run(args);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.match(/done before/g)?.length, 4);
  });

  it('trains every cell per seed: values equal a separate train run, mean ± sd by hand', async () => {
    const out = path.join(await tmp(), 'seeds');
    const base = ['audit', '--clean', clean, '--protected', ops, '--backend', 'wasm'];
    const r = await run([...base, '--epochs', '2', '--seeds', '0,1', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as {
      complete: boolean;
      seeds: number[];
      cells: Array<{ dataset: string; seed: number; results: TrainResults }>;
      summary: Array<{
        dataset: string;
        seeds: number[];
        final: { mean: number; sd: number; n: number };
        best: { mean: number; sd: number; n: number };
      }>;
    };
    assert.equal(res.complete, true);
    assert.deepEqual(res.seeds, [0, 1]);
    assert.deepEqual(
      res.cells.map((c) => `${c.dataset} ${c.seed}`),
      ['clean 0', 'clean 1', 'OPS 0', 'OPS 1'],
    );
    // The audit's cell is the train job: `onepixel train` of the same cell gives the same numbers.
    const single = path.join(await tmp(), 'single.json');
    const t = await run([
      ...['train', '--data', clean, '--epochs', '2', '--seed', '1', '--backend', 'wasm'],
      ...['--results', single],
    ]);
    assert.equal(t.code, 0, t.stderr);
    const alone = JSON.parse(await readFile(single, 'utf8')) as TrainResults;
    const cell = res.cells.find((c) => c.dataset === 'clean' && c.seed === 1)?.results;
    assert.ok(cell);
    assert.deepEqual(cell.testAccuracy, alone.testAccuracy);
    assert.deepEqual(cell.trainLoss, alone.trainLoss);
    assert.deepEqual(cell.config, alone.config);
    // the two seeds differ (else mean ± sd would prove nothing)
    const acc = (ds: string) => res.cells.filter((c) => c.dataset === ds).map((c) => c.results);
    assert.notDeepEqual(acc('clean')[0].trainLoss, acc('clean')[1].trainLoss);
    const table = await readFile(path.join(out, 'table.md'), 'utf8');
    assert.match(table, /sample standard deviation \(n − 1\) over 2 seeds/);
    for (const ds of ['clean', 'OPS']) {
      const [a, b] = acc(ds).map((x) => x.finalTestAccuracy as number);
      const [ba, bb] = acc(ds).map((x) => Math.max(...x.testAccuracy));
      const s = res.summary.find((x) => x.dataset === ds);
      assert.ok(s);
      // n = 2: mean (a+b)/2, sample sd |a−b|/√2
      assert.ok(Math.abs(s.final.mean - (a + b) / 2) < 1e-12);
      assert.ok(Math.abs(s.final.sd - Math.abs(a - b) / Math.SQRT2) < 1e-12);
      assert.ok(Math.abs(s.best.mean - (ba + bb) / 2) < 1e-12);
      assert.ok(Math.abs(s.best.sd - Math.abs(ba - bb) / Math.SQRT2) < 1e-12);
      const cellText = (m: number, sd: number) =>
        `${(100 * m).toFixed(2)} ± ${(100 * sd).toFixed(2)}`;
      assert.ok(
        table.includes(
          `${cellText(s.final.mean, s.final.sd)} | ${cellText(s.best.mean, s.best.sd)}`,
        ),
        table,
      );
    }
    const html = await readFile(path.join(out, 'report.html'), 'utf8');
    assert.match(html, /training accuracy/);
    assert.match(html, /<polygon/); // the ± sd bands
    assert.match(html, /onecycle, max 0.05/);

    // Other epochs: new cells, nothing "done before"; the old cells stay.
    const before = readdirSync(path.join(out, 'cells')).length;
    const e1 = await run([...base, '--epochs', '1', '--seeds', '0,1', '--out', out]);
    assert.equal(e1.code, 0, e1.stderr);
    assert.equal(e1.stdout.match(/done before/g), null, e1.stdout);
    assert.equal(readdirSync(path.join(out, 'cells')).length, before + 4);
    // A subset of the seeds of the first run: those cells are reused, as they are.
    const s0 = await run([...base, '--epochs', '2', '--seed', '0', '--out', out]);
    assert.equal(s0.code, 0, s0.stderr);
    assert.equal(s0.stdout.match(/done before/g)?.length, 2, s0.stdout);
    // Other data under the same column name (a training label changed): retrained.
    const other = await tmp();
    const names = await cifarClassNames();
    const recs = await cifarRecords('data_batch_1.bin', 256);
    const ds = cifarDataset(recs, names);
    ds.labels[0] = (ds.labels[0] + 1) % 10;
    await writeNpy(other, [
      { name: 'train', stream: streamOf(ds) },
      {
        name: 'test',
        stream: streamOf(cifarDataset(await cifarRecords('test_batch.bin', 100), names)),
      },
    ]);
    const d = await run([
      ...['audit', '--clean', other, '--protected', ops, '--backend', 'wasm'],
      ...['--epochs', '2', '--seed', '0', '--out', out],
    ]);
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout.match(/done before/g)?.length, 1, d.stdout); // OPS only
    assert.match(d.stdout, /clean__lenet5__standard__s0-\w+: \d+\.\d\d% clean-test accuracy/);
  });

  it('takes ueraser as a training countermeasure: the cell of --strategies ueraser, on the chart', async () => {
    const out = path.join(await tmp(), 'ueraser');
    const base = ['audit', '--clean', clean, '--protected', ops, '--epochs', '1', '--backend'];
    const first = await run([...base, 'wasm', '--strategies', 'ueraser', '--out', out]);
    assert.equal(first.code, 0, first.stderr);
    const r = await run([...base, 'wasm', '--countermeasures', 'grayscale,ueraser', '--out', out]);
    assert.equal(r.code, 0, r.stderr);
    // The same identity as the strategy's own cells: reused, not retrained.
    assert.equal(r.stdout.match(/ueraser__s0-\w+: done before/g)?.length, 2, r.stdout);
    assert.equal(r.stdout.match(/grayscale__s0-\w+: \d+\.\d\d% clean-test accuracy/g)?.length, 2);
    const res = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as {
      rows: string[];
      cells: Array<{ strategy: string; results: TrainResults }>;
    };
    assert.deepEqual(res.rows, ['standard+grayscale', 'ueraser']);
    for (const c of res.cells.filter((x) => x.strategy === 'ueraser'))
      assert.equal(c.results.config.strategy, 'ueraser');
    const html = await readFile(path.join(out, 'report.html'), 'utf8');
    const charts = html.match(/<svg class="robustness"[\s\S]*?<\/svg>/g) ?? [];
    assert.equal(charts.length, 1);
    assert.ok(charts[0].includes('>grayscale</text>') && charts[0].includes('>ueraser</text>'));
  });

  it('refuses ueraser as a countermeasure of another strategy, and a row named twice', async () => {
    const out = path.join(await tmp(), 'bad-ueraser');
    const base = ['audit', '--clean', clean, '--protected', ops, '--out', out];
    const r = await run([...base, '--strategies', 'cutout', '--countermeasures', 'none,ueraser']);
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /--countermeasures ueraser: .*--strategies standard only \(not 'cutout'\)/,
    );
    const twice = await run([...base, '--countermeasures', 'none,jpeg:10,jpeg']);
    assert.equal(twice.code, 1);
    assert.match(twice.stderr, /row 'standard\+jpeg:10' named twice/);
    assert.equal(existsSync(out), false);
  });

  it('assembles a matrix from cells another audit trained, training nothing', async () => {
    const first = path.join(await tmp(), 'first');
    const base = ['audit', '--clean', clean, '--protected', ops, '--epochs', '1'];
    const r = await run([...base, '--backend', 'wasm', '--out', first]);
    assert.equal(r.code, 0, r.stderr);
    const out = path.join(await tmp(), 'assembled');
    await cp(path.join(first, 'cells'), path.join(out, 'cells'), { recursive: true });
    const wide = [...base, '--backend', 'wasm', '--countermeasures', 'none,grayscale'];
    const a = await run([...wide, '--assemble', '--out', out]);
    assert.equal(a.code, 0, a.stderr);
    assert.match(
      a.stdout,
      /2 of 4 cells present; missing \(run them, then --report\): clean__lenet5__standard\+grayscale__s0, OPS__lenet5__standard\+grayscale__s0/,
    );
    assert.equal(readdirSync(path.join(out, 'cells')).length, 2); // nothing trained
    type Res = { complete: boolean; rows: string[]; cells: Array<{ results: TrainResults }> };
    const read = async (dir: string) =>
      JSON.parse(await readFile(path.join(dir, 'results.json'), 'utf8')) as Res;
    const [one, two] = [await read(first), await read(out)];
    assert.equal(two.complete, false);
    assert.deepEqual(two.rows, ['standard', 'standard+grayscale']);
    assert.deepEqual(
      two.cells.map((c) => c.results.finalTestAccuracy),
      one.cells.map((c) => c.results.finalTestAccuracy),
    );
    const bad = await run([...wide, '--assemble', '--shard', '0/2', '--out', out]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /--assemble trains nothing, so --shard does not apply/);
  });

  it('refuses an unknown countermeasure, naming the flag, before training anything', async () => {
    const out = path.join(await tmp(), 'bad');
    const r = await run([
      ...['audit', '--clean', clean, '--protected', ops, '--countermeasures', 'none,blur'],
      ...['--out', out],
    ]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /unknown countermeasure 'blur' \(--countermeasures\)/);
    assert.equal(existsSync(out), false);
  });
});
