/**
 * `onepixel protect --method em | cifar10s | random-noise` end to end on a small real CIFAR-10
 * copy (NumPy format): refused budgets and noise files, a resume with changed parameters refused
 * with the differences listed, stored bytes within ε of the source, and CIFAR-10-S equal to the EM
 * noise with the OPS pixel of a search on the clean images written over it.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { protectedDatasets } from '../src/audit/matrix.js';
import { type Dataset, streamOf } from '../src/data/dataset.js';
import { readNpyFolder, writeNpy } from '../src/data/npy.js';
import { byteBudget, perturbBytes } from '../src/noise/bounds.js';
import { readNoiseNpy } from '../src/noise/npy.js';
import { cifarClassNames, cifarDataset, cifarRecords, tempDirs, runCli } from './helpers.js';

const tmp = tempDirs('noise-cli');

const run = (args: string[]) => runCli(args);

const cut = (d: Dataset, n: number): Dataset => ({
  ...d,
  images: d.images.slice(0, n * 3072),
  labels: d.labels.slice(0, n),
});

let data: string;
let data50: string;
let clean: Dataset;
const EM_FAST = ['--em-steps', '2', '--em-train-steps', '2', '--em-batch-size', '16'];

before(async () => {
  const names = await cifarClassNames();
  clean = cifarDataset(await cifarRecords('data_batch_1.bin', 100), names);
  const test = cifarDataset(await cifarRecords('test_batch.bin', 20), names);
  data = await tmp();
  await writeNpy(data, [
    { name: 'train', stream: streamOf(clean) },
    { name: 'test', stream: streamOf(test) },
  ]);
  data50 = await tmp();
  await writeNpy(data50, [
    { name: 'train', stream: streamOf(cut(clean, 90)) },
    { name: 'test', stream: streamOf(test) },
  ]);
});

const base = (out: string) => ['protect', '--dataset', 'npy', '--data-dir', data, '--out', out];

describe('protect --method (noise)', () => {
  it('refuses ε ≤ 0 and ε ≥ 1, naming the flag, and writes nothing', async () => {
    for (const eps of ['0', '-0.01', '1.0', '255', '300/255', 'x']) {
      const out = path.join(await tmp(), 'o');
      const r = await run([...base(out), '--method', 'random-noise', '--epsilon', eps]);
      assert.equal(r.code, 1, `${eps}: ${r.stderr}`);
      assert.match(r.stderr, /--epsilon/);
      assert.equal(existsSync(out), false);
    }
  });

  it('random noise: bytes within ε of the source; a noise file of another shape is refused', async () => {
    const out = path.join(await tmp(), 'rand');
    const r = await run([
      ...base(out),
      '--method',
      'random-noise',
      '--epsilon',
      '8/255',
      '--seed',
      '3',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as {
      method: string;
      noise: { epsilon: number; shape: number[]; generator: string };
    };
    assert.equal(m.method, 'random-noise');
    assert.deepEqual(m.noise.shape, [100, 32, 32, 3]);
    const prot = (await readNpyFolder(out)).train;
    const b = byteBudget(8 / 255);
    for (let i = 0; i < prot.images.length; i++)
      assert.ok(Math.abs(prot.images[i] - clean.images[i]) <= b, `byte ${i}`);
    const noise = await readNoiseNpy(path.join(out, 'noise.npy'), [100, 32, 32, 3]);
    assert.deepEqual(
      prot.images,
      perturbBytes(clean.images, noise, 8 / 255, new Uint8Array(noise.length)),
    );
    const out2 = path.join(await tmp(), 'o');
    const bad = await run([
      ...['protect', '--dataset', 'npy', '--data-dir', data50, '--out', out2],
      ...['--method', 'random-noise', '--noise', path.join(out, 'noise.npy')],
    ]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /noise shape \[100, 32, 32, 3\] does not match .* \[90, 32, 32, 3\]/);
    const ops = await run([...base(out2), '--epsilon', '8']);
    assert.equal(ops.code, 1);
    assert.match(ops.stderr, /--epsilon applies to --method random-noise, em, cifar10s, not ops/);
  });

  it('EM, then a resume with changed parameters is refused with the differences', async () => {
    const out = path.join(await tmp(), 'em');
    const r = await run([...base(out), '--method', 'em', '--max-rounds', '1', ...EM_FAST]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /EM round {3}1 /);
    const m = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as {
      method: string;
      noise: { em: { rounds: number; stoppedBy: string; config: { model: string } } };
    };
    assert.equal(m.method, 'em');
    assert.equal(m.noise.em.rounds, 1);
    assert.equal(m.noise.em.config.model, 'lenet5');
    // --json: stdout is the manifest alone; the round lines go to stderr.
    const j = await run([
      ...base(`${out}-j`),
      '--method',
      'em',
      '--max-rounds',
      '1',
      '--json',
      ...EM_FAST,
    ]);
    assert.equal(j.code, 0, j.stderr);
    assert.equal((JSON.parse(j.stdout) as { method: string }).method, 'em');
    assert.match(j.stderr, /EM round {3}1 /);
    const again = await run([
      ...base(out),
      ...['--method', 'em', '--max-rounds', '2', '--resume', '--force'],
      ...EM_FAST.slice(0, 1),
      '3',
      ...EM_FAST.slice(2),
      ...['--epsilon', '16'],
    ]);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /cannot resume/);
    assert.match(again.stderr, /epsilon: checkpoint 0\.0313\d*, now 0\.0627\d*/);
    assert.match(again.stderr, /steps: checkpoint 2, now 3/);
    // the same parameters with a higher round limit continue the run
    const more = await run([
      ...base(out),
      '--method',
      'em',
      '--max-rounds',
      '2',
      '--resume',
      '--force',
      ...EM_FAST,
    ]);
    assert.equal(more.code, 0, more.stderr);
    assert.match(more.stdout, /EM round {3}2 /);
    assert.doesNotMatch(more.stdout, /EM round {3}1 /);
    // Resumed from the checkpoint files on disk, in another process: the same noise bytes as an
    // uninterrupted two-round run.
    const whole = path.join(await tmp(), 'em2');
    const w = await run([...base(whole), '--method', 'em', '--max-rounds', '2', ...EM_FAST]);
    assert.equal(w.code, 0, w.stderr);
    const resumed = await readFile(path.join(out, 'noise.npy'));
    assert.ok(resumed.length > 100 * 3072 * 4);
    assert.ok(resumed.equals(await readFile(path.join(whole, 'noise.npy'))), 'noise differs');

    // CIFAR-10-S from that noise: EM bytes everywhere, the OPS pixel of the clean search on top
    const s = path.join(await tmp(), 's');
    const rs = await run([
      ...base(s),
      '--method',
      'cifar10s',
      '--noise',
      path.join(out, 'noise.npy'),
    ]);
    assert.equal(rs.code, 0, rs.stderr);
    const opsOut = path.join(await tmp(), 'ops');
    assert.equal((await run(base(opsOut))).code, 0);
    type Px = { row: number; col: number; value: number[] };
    const pixelsOf = async (dir: string) =>
      (
        JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as {
          classes: Array<{ pixels: Px[] }>;
        }
      ).classes.map((c) => c.pixels);
    const pixels = await pixelsOf(s);
    assert.deepEqual(pixels, await pixelsOf(opsOut));
    const noise = await readNoiseNpy(path.join(out, 'noise.npy'), [100, 32, 32, 3]);
    const em = perturbBytes(clean.images, noise, 8 / 255, new Uint8Array(noise.length));
    const got = (await readNpyFolder(s)).train.images;
    for (let i = 0; i < 100; i++) {
      const p = pixels[clean.labels[i]][0];
      const at = (p.row * 32 + p.col) * 3;
      for (let j = 0; j < 3072; j++) {
        const want = j >= at && j < at + 3 ? p.value[j - at] : em[i * 3072 + j];
        assert.equal(got[i * 3072 + j], want, `image ${i} byte ${j}`);
      }
    }
    // --objective and --pixels choose cifar10s's OPS pixel as they do for ops (they were ignored)
    const s2 = path.join(await tmp(), 's2');
    const more2 = ['--objective', 'paper', '--pixels', '2'];
    const noiseFile = path.join(out, 'noise.npy');
    const r2 = await run([...base(s2), '--method', 'cifar10s', '--noise', noiseFile, ...more2]);
    assert.equal(r2.code, 0, r2.stderr);
    const ops2 = path.join(await tmp(), 'ops2');
    assert.equal((await run([...base(ops2), ...more2])).code, 0);
    const m2 = JSON.parse(await readFile(path.join(s2, 'manifest.json'), 'utf8')) as {
      objective: string;
      pixelsPerClass: number;
    };
    assert.equal(m2.objective, 'paper');
    assert.equal(m2.pixelsPerClass, 2);
    assert.deepEqual(await pixelsOf(s2), await pixelsOf(ops2));
    assert.ok((await pixelsOf(s2)).every((px) => px.length === 2));
    assert.notDeepEqual(await pixelsOf(s2), pixels);
    // audit columns are named by method (CIFAR-10-S only for CIFAR-10 itself)
    const cols = await protectedDatasets([opsOut, out, s, out]);
    assert.deepEqual(
      cols.map((c) => c.name),
      ['OPS', 'EM (em)', 'EM + OPS', 'EM (em)'],
    );
    assert.deepEqual(
      cols.map((c) => c.kind),
      ['ops', 'em', 'cifar10s', 'em'],
    );
  });
});
