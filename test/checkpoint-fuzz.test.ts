/**
 * Damaged checkpoints are refused, never loaded or taken for "none": a few hundred seeded
 * mutations of a real training checkpoint and a real EM checkpoint (truncated, extended and
 * flipped binaries, flipped and cut JSON, valid JSON of the wrong shape with or without a
 * recomputed checksum, huge sizes, missing files) each end in a one-line OnepixelError naming the
 * damaged file (or, for the checkpoint's own settings, the checkpoint folder) within a time
 * bound; through the real CLI a sample exits 1 with one `onepixel: error:` line, no stack trace,
 * and leaves the damaged checkpoint byte-identical.
 */
import assert from 'node:assert/strict';
import { cp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { type Dataset, streamOf } from '../src/data/dataset.js';
import { datasetFingerprint } from '../src/data/files.js';
import { writeNpy } from '../src/data/npy.js';
import { OnepixelError } from '../src/errors.js';
import { initEngine } from '../src/nn/engine.js';
import { loadEmCheckpoint, saveEmCheckpoint } from '../src/noise/checkpoint.js';
import { EM_DEFAULTS, type EmConfig, generateEm } from '../src/noise/em.js';
import { canonicalJson, metaChecksum } from '../src/nn/checkpoint.js';
import { type TrainConfig, train } from '../src/train/loop.js';
import { Rng } from '../src/nn/rng.js';
import {
  cifarClassNames,
  cifarDataset,
  cifarRecords,
  runCli,
  sha256,
  tempDirs,
} from './helpers.js';

const tmp = tempDirs('ckpt-fuzz');

/** Every file under `dir` with its sha256 (missing folder: empty). */
async function snapshotOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out[path.relative(dir, p)] = sha256(await readFile(p));
    }
  };
  await walk(dir);
  return out;
}

type Mutation = { what: string; apply: (dir: string) => Promise<void> };

const WRONG: unknown[] = [null, 'x', -1, 1.5, 1e300, {}, [], true];

/**
 * Seeded mutations of the checkpoint folder layout: `json` files (relative paths), `bins`.
 * Each returns a description and an edit of a fresh copy.
 */
function mutations(seed: number, count: number, jsons: string[], bins: string[]): Mutation[] {
  const rng = new Rng(seed);
  const pick = <T>(xs: T[]): T => xs[rng.int(xs.length)];
  const out: Mutation[] = [];
  const kinds = [
    'truncate-bin',
    'extend-bin',
    'flip-bin',
    'flip-json',
    'cut-json',
    'wrong-shape',
    'wrong-shape-resummed',
    'huge-shape',
    'missing',
    'not-object',
    'dir-for-file',
  ];
  for (let i = 0; i < count; i++) {
    const kind = kinds[i % kinds.length];
    const r = [rng.uniform(), rng.uniform(), rng.uniform()];
    const json = pick(jsons);
    const bin = pick(bins);
    const wrong = pick(WRONG);
    const flips = 1 + rng.int(4);
    out.push({
      what: `${i} ${kind} ${kind.includes('bin') ? bin : json}`,
      apply: async (dir) => {
        const jp = path.join(dir, json);
        const bp = path.join(dir, bin);
        if (kind === 'truncate-bin') {
          const b = await readFile(bp);
          await writeFile(bp, b.subarray(0, Math.floor(r[0] * b.length)));
        } else if (kind === 'extend-bin') {
          const b = await readFile(bp);
          await writeFile(bp, Buffer.concat([b, Buffer.alloc(1 + Math.floor(r[0] * 64), 7)]));
        } else if (kind === 'flip-bin' || kind === 'flip-json') {
          const file = kind === 'flip-bin' ? bp : jp;
          const b = await readFile(file);
          for (let k = 0; k < flips; k++)
            b[Math.floor(rng.uniform() * b.length)] ^= 1 + rng.int(255);
          await writeFile(file, b);
        } else if (kind === 'cut-json') {
          const b = await readFile(jp);
          await writeFile(jp, b.subarray(0, Math.floor(r[0] * (b.length - 2))));
        } else if (kind.startsWith('wrong-shape') || kind === 'huge-shape') {
          const m = JSON.parse(await readFile(jp, 'utf8')) as Record<string, unknown>;
          const keys = Object.keys(m).filter((k) => k !== 'metaSha256');
          const key = pick(keys);
          if (kind === 'huge-shape') {
            const layout = (m.weights ?? m.state) as unknown;
            if (Array.isArray(layout)) (layout[0] as { shape: number[] }).shape = [1e9, 1e9];
            else m.noiseLength = 2 ** 40;
          } else if (r[1] < 0.25) delete m[key];
          else m[key] = wrong;
          if (kind !== 'wrong-shape') m.metaSha256 = metaChecksum(m);
          await writeFile(jp, JSON.stringify(m));
        } else if (kind === 'missing') {
          await rm(r[0] < 0.5 ? jp : bp);
        } else if (kind === 'not-object') {
          await writeFile(jp, pick(['null', '[]', '"x"', '1', '', '{}', '{"format":1}']));
        } else if (kind === 'dir-for-file') {
          const f = r[0] < 0.5 ? jp : bp;
          await rm(f);
          await mkdir(f);
        }
      },
    });
  }
  return out;
}

/** Applies each mutation to a copy of `pristine` and checks that `load` refuses it. */
async function fuzz(
  pristine: string,
  ms: Mutation[],
  load: (dir: string) => Promise<unknown>,
  unchanged: (dir: string) => Promise<boolean>,
): Promise<{ refused: number; harmless: number; slowest: number }> {
  let refused = 0;
  let harmless = 0;
  let slowest = 0;
  for (const m of ms) {
    const dir = path.join(await tmp(), 'ck');
    await cp(pristine, dir, { recursive: true });
    await m.apply(dir);
    const t0 = performance.now();
    let error: unknown = null;
    try {
      await load(dir);
    } catch (e) {
      error = e;
    }
    const ms = performance.now() - t0;
    slowest = Math.max(slowest, ms);
    assert.ok(ms < 5000, `${m.what}: ${ms} ms`);
    if (error === null) {
      // A flip that leaves the content equal (whitespace, 'e' for 'E' in a number) is no damage.
      assert.ok(await unchanged(dir), `${m.what}: the damaged checkpoint was accepted`);
      harmless++;
      continue;
    }
    assert.ok(error instanceof OnepixelError, `${m.what}: ${String(error)}`);
    const msg = error.message;
    assert.doesNotMatch(msg, /\n/, `${m.what}: not one line: ${msg}`);
    assert.ok(msg.includes(dir), `${m.what}: does not name the checkpoint: ${msg}`);
    refused++;
  }
  return { refused, harmless, slowest };
}

/** True when the JSON files under `dir` parse to the same content as under `pristine`. */
async function sameJson(pristine: string, dir: string, jsons: string[]): Promise<boolean> {
  for (const j of jsons) {
    const a = canonicalJson(JSON.parse(await readFile(path.join(pristine, j), 'utf8')));
    let b: string;
    try {
      b = canonicalJson(JSON.parse(await readFile(path.join(dir, j), 'utf8')));
    } catch {
      return false;
    }
    if (a !== b) return false;
  }
  return true;
}

describe('damaged checkpoints', () => {
  let data: { train: Dataset; test: Dataset };
  let folder: string;
  let trainCk: string;
  let emCk: string;
  const cfg: TrainConfig = {
    model: 'lenet5',
    strategy: 'standard',
    adversarial: null,
    epochs: 1,
    batchSize: 32,
    lr: 0.05,
    momentum: 0.9,
    weightDecay: 5e-4,
    schedule: 'onecycle',
    milestones: [],
    gamma: 0.1,
    seed: 0,
    workers: 1,
  };
  const em: EmConfig = {
    ...EM_DEFAULTS,
    steps: 2,
    trainSteps: 2,
    batchSize: 16,
    maxRounds: 1,
  };
  before(async () => {
    await initEngine('wasm');
    const names = await cifarClassNames();
    data = {
      train: cifarDataset(await cifarRecords('data_batch_1.bin', 64), names),
      test: cifarDataset(await cifarRecords('test_batch.bin', 20), names),
    };
    folder = await tmp();
    await writeNpy(folder, [
      { name: 'train', stream: streamOf(data.train) },
      { name: 'test', stream: streamOf(data.test) },
    ]);
    const work = await tmp();
    trainCk = path.join(work, 'results.ckpt');
    await train(cfg, data, trainCk);
    emCk = path.join(work, 'em.ckpt');
    const fp = datasetFingerprint(data.train);
    await generateEm(data.train, em, { save: (s) => saveEmCheckpoint(emCk, s, fp) });
    assert.equal((await stat(path.join(emCk, 'em.json'))).isFile(), true);
  });

  it('training checkpoint: 330 seeded mutations, each refused in one line naming it', async () => {
    const jsons = ['checkpoint.json'];
    const ms = mutations(1, 330, jsons, ['weights.bin']);
    const r = await fuzz(
      trainCk,
      ms,
      (dir) => train(cfg, data, dir),
      (dir) => sameJson(trainCk, dir, jsons),
    );
    console.log(`train checkpoint: ${JSON.stringify(r)}`);
    assert.ok(r.refused >= 300, `only ${r.refused} refused`);
  });

  it('EM checkpoint: 330 seeded mutations, each refused in one line naming it', async () => {
    const jsons = ['em.json', 'surrogate/checkpoint.json'];
    const ms = mutations(2, 330, jsons, ['noise.bin', 'surrogate/weights.bin']);
    const fp = datasetFingerprint(data.train);
    const r = await fuzz(
      emCk,
      ms,
      async (dir) => {
        const snap = await loadEmCheckpoint(dir, em, fp, data.train.images.length);
        await generateEm(data.train, em, {}, snap);
      },
      (dir) => sameJson(emCk, dir, jsons),
    );
    console.log(`EM checkpoint: ${JSON.stringify(r)}`);
    assert.ok(r.refused >= 300, `only ${r.refused} refused`);
  });

  it('checkpoints written before the checksum (format 1: no metaSha256, no dataset) still resume', async () => {
    const legacy = async (file: string) => {
      const m = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
      delete m.metaSha256;
      delete m.dataset;
      if (m.format === 'onepixel-checkpoint-2') m.format = 'onepixel-checkpoint-1';
      await writeFile(file, JSON.stringify(m));
    };
    const dir = path.join(await tmp(), 'ck');
    await cp(trainCk, dir, { recursive: true });
    await legacy(path.join(dir, 'checkpoint.json'));
    const run = await train(cfg, data, dir);
    assert.equal(run.history.length, 1);
    const emDir = path.join(await tmp(), 'em');
    await cp(emCk, emDir, { recursive: true });
    const emJson = JSON.parse(await readFile(path.join(emDir, 'em.json'), 'utf8')) as {
      metaSha256?: string;
    };
    delete emJson.metaSha256;
    await writeFile(path.join(emDir, 'em.json'), JSON.stringify(emJson));
    await legacy(path.join(emDir, 'surrogate', 'checkpoint.json'));
    const fp = datasetFingerprint(data.train);
    const snap = await loadEmCheckpoint(emDir, em, fp, data.train.images.length);
    assert.equal(snap?.state.round, 1);
  });

  it('the CLI refuses a sample with exit 1, one error line, and leaves the checkpoint as it was', async () => {
    const work0 = await tmp();
    const emArgs = (out: string, dir: string) => [
      ...['protect', '--dataset', 'npy', '--data-dir', folder, '--out', out],
      ...['--method', 'em', '--em-steps', '2', '--em-train-steps', '2'],
      ...['--em-batch-size', '16', '--max-rounds', '1', '--backend', 'wasm'],
      ...['--checkpoint', dir],
    ];
    const trainArgs = (work: string, dir: string) => [
      ...['train', '--data', folder, '--model', 'lenet5', '--strategy', 'standard'],
      ...['--epochs', '1', '--batch-size', '32', '--backend', 'wasm', '--workers', '1'],
      ...['--results', path.join(work, 'results.json'), '--checkpoint', dir],
    ];
    // Checkpoints the CLI itself wrote, which it resumes when intact.
    const cliTrain = path.join(work0, 'train.ckpt');
    const cliEm = path.join(work0, 'em.ckpt');
    assert.equal((await runCli(trainArgs(work0, cliTrain), 60_000)).code, 0);
    assert.equal((await runCli(emArgs(path.join(work0, 'o'), cliEm), 60_000)).code, 0);
    const ok = await runCli([...trainArgs(work0, cliTrain), '--resume'], 60_000);
    assert.equal(ok.code, 0, ok.stderr);
    const okEm = await runCli([...emArgs(path.join(work0, 'o2'), cliEm), '--resume'], 60_000);
    assert.equal(okEm.code, 0, okEm.stderr);

    const trainMs = mutations(3, 8, ['checkpoint.json'], ['weights.bin']);
    const emMs = mutations(4, 8, ['em.json', 'surrogate/checkpoint.json'], ['noise.bin']);
    const cases = [
      ...trainMs.map((m, i) => ({ m, pristine: cliTrain, resume: i % 3 !== 0, em: false })),
      ...emMs.map((m) => ({ m, pristine: cliEm, resume: true, em: true })),
    ];
    for (const { m, pristine, resume, em: isEm } of cases) {
      const work = await tmp();
      const dir = path.join(work, 'ck');
      await cp(pristine, dir, { recursive: true });
      await m.apply(dir);
      const before = await snapshotOf(dir);
      const args = isEm ? emArgs(path.join(work, 'o'), dir) : trainArgs(work, dir);
      const r = await runCli([...args, ...(resume ? ['--resume'] : [])], 60_000);
      if (r.code === 0) {
        const jsons = isEm ? ['em.json', 'surrogate/checkpoint.json'] : ['checkpoint.json'];
        assert.ok(await sameJson(pristine, dir, jsons), `${m.what}: accepted`);
        continue;
      }
      assert.equal(r.code, 1, `${m.what}: ${r.stderr}`);
      assert.match(r.stderr, /^onepixel: error: [^\n]+\n$/, `${m.what}: ${r.stderr}`);
      assert.ok(r.stderr.includes(dir), `${m.what}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.deepEqual(await snapshotOf(dir), before, `${m.what}: the checkpoint was changed`);
    }
  });
});
