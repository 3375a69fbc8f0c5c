/**
 * `onepixel audit` end to end on a small real CIFAR-10 copy (NumPy format) and its OPS copy: the
 * matrix with countermeasure rows, its files, a resumed audit that redoes nothing, and a refused
 * countermeasure name.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { streamOf } from '../src/data/dataset.js';
import { writeNpy } from '../src/data/npy.js';
import type { TrainResults } from '../src/train/results.js';
import { cifarClassNames, cifarDataset, cifarRecords, tempDirs, runCli } from './helpers.js';

const tmp = tempDirs('audit-cli');

const run = (args: string[]) => runCli(args);

describe('audit', () => {
  let clean: string;
  let ops: string;
  before(async () => {
    const names = await cifarClassNames();
    clean = await tmp();
    await writeNpy(clean, [
      {
        name: 'train',
        stream: streamOf(cifarDataset(await cifarRecords('data_batch_1.bin', 256), names)),
      },
      {
        name: 'test',
        stream: streamOf(cifarDataset(await cifarRecords('test_batch.bin', 100), names)),
      },
    ]);
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
    assert.ok(existsSync(path.join(out, 'cells', 'OPS__lenet5__standard+grayscale.csv')));

    const again = await run(args);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(again.stdout.match(/done before/g)?.length, 4);
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
