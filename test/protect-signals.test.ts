/**
 * A signal stops any protect promptly: the real CLI on the real CIFAR-10 gets SIGTERM (or SIGINT)
 * shortly after start, exits 143 (130) within seconds, and leaves neither --out nor a temporary
 * folder. random-noise used to ignore it (long synchronous loops) and exit 0.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, it } from 'node:test';
import { streamOf } from '../src/data/dataset.js';
import { npyHeader, writeNpy } from '../src/data/npy.js';
import {
  CIFAR_DIR,
  CLI,
  childEnv,
  cifarClassNames,
  cifarDataset,
  cifarRecords,
  tempDirs,
} from './helpers.js';

const tmp = tempDirs('protect-signals');
const NO_CIFAR = existsSync(path.join(CIFAR_DIR, 'data_batch_5.bin'))
  ? false
  : `no CIFAR-10 at ${CIFAR_DIR}`;

const READY = '[test: SIGTERM handler installed]';
let preloadPath: string | null = null;

/** A module run before the CLI that reports on stderr once the CLI listens for SIGTERM. */
async function preload(): Promise<string> {
  if (preloadPath) return preloadPath;
  const p = path.join(await tmp(), 'ready.mjs');
  await writeFile(
    p,
    'const t = setInterval(() => {\n' +
      "  if (process.listenerCount('SIGTERM') > 0) {\n" +
      `    process.stderr.write(${JSON.stringify(READY + '\n')});\n` +
      '    clearInterval(t);\n  }\n}, 5);\nt.unref();\n',
  );
  return (preloadPath = p);
}

const CIFAR = ['--dataset', 'cifar10', '--data-dir', CIFAR_DIR];

/**
 * Runs `protect ...args --out <fresh>` and sends `signal` afterMs after the CLI listens for it
 * (and, with `waitFor`, after stdout matched it).
 */
async function interrupt(
  args: string[],
  signal: NodeJS.Signals,
  afterMs: number,
  waitFor?: RegExp,
) {
  const parent = await tmp();
  const out = path.join(parent, 'out');
  const child = spawn(
    process.execPath,
    ['--import', await preload(), CLI, 'protect', ...args, '--out', out],
    { env: childEnv() },
  );
  let stderr = '';
  let stdout = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  const closed = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  let exited = false;
  void closed.then(() => (exited = true));
  // Wait until the CLI has installed its handler (the preload below says so on stderr), then
  // let it work for afterMs: on a loaded machine start-up alone can take seconds.
  for (let i = 0; i < 6000 && !exited && !stderr.includes(READY); i++)
    await new Promise((r) => setTimeout(r, 10));
  for (let i = 0; i < 30000 && waitFor && !exited && !waitFor.test(stdout); i++)
    await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, afterMs));
  assert.equal(exited, false, `finished before the signal: ${stderr}`);
  const sent = Date.now();
  child.kill(signal);
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await closed;
  clearTimeout(killer);
  const left = await readdir(parent);
  return { code, seconds: (Date.now() - sent) / 1000, stderr, out, left };
}

describe('protect on a signal', { skip: NO_CIFAR }, () => {
  const cases: Array<[string, string[], NodeJS.Signals, number, number]> = [
    ['ops', [], 'SIGTERM', 143, 300],
    ['random-noise (noise generation)', ['--method', 'random-noise'], 'SIGTERM', 143, 2000],
    ['random-noise (SIGINT)', ['--method', 'random-noise'], 'SIGINT', 130, 1000],
  ];
  for (const [name, args, signal, expected, afterMs] of cases)
    it(`${name}: ${signal} → exit ${expected}, nothing left`, async () => {
      const r = await interrupt([...CIFAR, ...args], signal, afterMs);
      assert.equal(r.code, expected, r.stderr);
      assert.ok(r.seconds < 5, `exited ${r.seconds} s after the signal`);
      assert.match(r.stderr, new RegExp(`interrupted \\(${signal}\\)`));
      assert.equal(existsSync(r.out), false);
      assert.deepEqual(r.left, [], 'temporary folders left');
    });

  it('random-noise during the write phase: SIGTERM → 143, nothing left', async () => {
    // Generation takes about 3 s on a quiet machine; writing the npy copy about as long again.
    const r = await interrupt(
      [...CIFAR, '--method', 'random-noise', '--format', 'npy'],
      'SIGTERM',
      5000,
    );
    assert.equal(r.code, 143, r.stderr);
    assert.ok(r.seconds < 5, `exited ${r.seconds} s after the signal`);
    assert.equal(existsSync(r.out), false);
    assert.deepEqual(r.left, []);
  });

  it('em with --noise (reading, checking, writing): SIGTERM → 143, nothing left', async () => {
    // The test makes its noise: zeros (within any ε) for the 50000 training images, a sparse
    // file, so it costs no disk, yet the CLI reads, checks and applies all 614 MB of it.
    const noise = path.join(await tmp(), 'noise.npy');
    const fh = await open(noise, 'w');
    const header = npyHeader('<f4', [50000, 32, 32, 3]);
    await fh.write(header);
    await fh.truncate(header.length + 50000 * 32 * 32 * 3 * 4);
    await fh.close();
    const r = await interrupt([...CIFAR, '--method', 'em', '--noise', noise], 'SIGTERM', 4000);
    assert.equal(r.code, 143, r.stderr);
    assert.ok(r.seconds < 5, `exited ${r.seconds} s after the signal`);
    assert.equal(existsSync(r.out), false);
    assert.deepEqual(r.left, []);
  });
});

describe('EM generation on a signal', () => {
  it('writes a checkpoint and stops: SIGTERM → 143, no --out', async () => {
    const data = await tmp();
    const names = await cifarClassNames();
    await writeNpy(data, [
      {
        name: 'train',
        stream: streamOf(cifarDataset(await cifarRecords('data_batch_1.bin', 100), names)),
      },
    ]);
    const fast = ['--em-steps', '1', '--em-train-steps', '1', '--em-batch-size', '16'];
    const args = [
      '--dataset',
      'npy',
      '--data-dir',
      data,
      '--method',
      'em',
      '--max-rounds',
      '200',
      ...fast,
    ];
    const r = await interrupt(args, 'SIGTERM', 0, /EM round {3}1 /);
    assert.equal(r.code, 143, r.stderr);
    assert.match(r.stderr, /writing an EM checkpoint/);
    assert.equal(existsSync(r.out), false);
    assert.deepEqual(r.left, ['out.em-checkpoint']);
    assert.ok(existsSync(path.join(r.out + '.em-checkpoint', 'em.json')));
  });
});
