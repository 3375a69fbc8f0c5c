/**
 * Every long command stops promptly on SIGTERM, checkpoints, exits 143, and resumes: real child
 * processes on the native engine (`train` and `audit` with PGD adversarial training, whose
 * synchronous steps used to starve the signal handler for over a minute) and EM's noise pass.
 * EM's resumed noise.npy is compared byte for byte with an uninterrupted run's, from the files.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import { loadCheckpoint } from '../src/nn/checkpoint.js';
import type { TrainResults } from '../src/train/results.js';
import { CLI, type CliResult, childEnv, npyFixture, runCli, tempDirs } from './helpers.js';

const tmp = tempDirs('signals');

/** Starts the CLI; `stdout()` is what it printed so far, `done` its end. */
function start(args: string[]) {
  const child = spawn(process.execPath, [CLI, ...args], { env: childEnv() });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const done = new Promise<CliResult & { at: number }>((resolve) =>
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout, stderr, at: performance.now() }),
    ),
  );
  return { child, done, stdout: () => stdout };
}

/** Waits until `ready()` holds (polling), failing after `ms`. */
async function waitFor(ready: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = performance.now();
  while (!ready()) {
    if (performance.now() - t0 > ms) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Sends SIGTERM, returns the child's result and the seconds it took to exit. */
async function terminate(p: ReturnType<typeof start>) {
  const t0 = performance.now();
  p.child.kill('SIGTERM');
  const r = await p.done;
  return { ...r, seconds: (r.at - t0) / 1000 };
}

describe('SIGTERM during long work', () => {
  let data: string;
  before(async () => {
    data = await tmp();
    await npyFixture(data, 'data_batch_1.bin', 320, 100);
  });

  it('train --strategy at (native): exits 143 within seconds mid-epoch with a valid checkpoint, and --resume finishes', async () => {
    const work = await tmp();
    const results = path.join(work, 'r.json');
    const args = [
      ...['train', '--data', data, '--backend', 'native', '--strategy', 'at'],
      ...['--model', 'lenet5', '--batch-size', '32', '--epochs', '3', '--results', results],
    ];
    const p = start(args);
    // The first epoch is done (its CSV row is written): the kill lands in a later epoch's steps
    // (which one depends on the machine's speed: an epoch here is under a second).
    await waitFor(() => /epoch {3}1 /.test(p.stdout()), 120_000, 'epoch 1');
    await new Promise((r) => setTimeout(r, 100));
    const printed = (p.stdout().match(/^epoch +\d+ /gm) ?? []).length;
    const r = await terminate(p);
    assert.equal(r.code, 143, r.stderr);
    assert.ok(r.seconds < 5, `exited ${r.seconds} s after SIGTERM`);
    assert.match(r.stderr, /SIGTERM: stopping after this step; writing a checkpoint/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    const ck = await loadCheckpoint(path.join(work, 'r.ckpt'));
    // The epoch under way when the signal came (0-based: `printed` epochs were done by then, one
    // more may have ended before the handler ran).
    assert.ok(
      ck.meta.epoch >= printed && ck.meta.epoch <= Math.min(printed + 1, 2),
      `stopped in epoch ${ck.meta.epoch + 1} (${printed} printed before the signal)`,
    );
    console.log(
      `train: exit ${r.seconds.toFixed(2)} s after SIGTERM, at epoch ${ck.meta.epoch + 1} step ${ck.meta.step}`,
    );
    const stopped = JSON.parse(await readFile(results, 'utf8')) as TrainResults;
    assert.equal(stopped.finished, false);
    const again = await runCli([...args, '--resume']);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /epoch {3}1 /);
    assert.match(again.stdout, /epoch {3}3 /);
    const done = JSON.parse(await readFile(results, 'utf8')) as TrainResults;
    assert.equal(done.finished, true);
    assert.equal(done.trainLoss.length, 3);
    assert.equal(done.trainLoss[0], stopped.trainLoss[0], 'epoch 1 kept from the checkpoint');
  });

  it('audit --strategies at (native): exits 143 within seconds with the cell checkpointed; the same command resumes', async () => {
    const work = await tmp();
    const prot = path.join(work, 'copy');
    await cp(data, prot, { recursive: true });
    const out = path.join(work, 'audit');
    const args = [
      ...['audit', '--clean', data, '--protected', prot, '--strategies', 'at'],
      ...['--models', 'lenet5', '--epochs', '2', '--backend', 'native', '--out', out],
    ];
    const p = start(args);
    const cells = path.join(out, 'cells');
    // Cells are folders cells/<name>/ with log.csv once their first epoch is done.
    const logs = async () =>
      existsSync(cells)
        ? (await readdir(cells)).filter((n) => existsSync(path.join(cells, n, 'log.csv')))
        : [];
    let seen: string[] = [];
    await waitFor(
      () => {
        void logs().then((f) => (seen = f));
        return seen.length > 0;
      },
      120_000,
      "the first cell's first epoch",
    );
    const r = await terminate(p);
    assert.equal(r.code, 143, r.stderr);
    assert.ok(r.seconds < 5, `exited ${r.seconds} s after SIGTERM`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    // A stopped audit writes no report (the report step re-reads every dataset folder).
    assert.equal(existsSync(path.join(out, 'report.html')), false, 'report.html after a stop');
    assert.match(r.stdout, /report not written/);
    // The cell under way when the signal came holds a valid checkpoint (on a loaded machine the
    // first cell may have finished and the second begun by then: either is a cell in progress).
    const withCkpt = (await readdir(cells)).filter((n) =>
      existsSync(path.join(cells, n, 'checkpoint', 'checkpoint.json')),
    );
    assert.ok(withCkpt.length >= 1, 'a cell checkpoint');
    const ck = await loadCheckpoint(path.join(cells, withCkpt[withCkpt.length - 1], 'checkpoint'));
    console.log(
      `audit: exit ${r.seconds.toFixed(2)} s after SIGTERM, ${withCkpt.join()} checkpointed at epoch ${ck.meta.epoch + 1} step ${ck.meta.step}`,
    );
    const again = await runCli(args);
    assert.equal(again.code, 0, again.stderr);
    const res = JSON.parse(await readFile(path.join(out, 'results.json'), 'utf8')) as {
      complete: boolean;
      cells: Array<{ results: TrainResults }>;
    };
    assert.equal(res.complete, true);
    assert.equal(res.cells.length, 2);
    for (const c of res.cells) assert.equal(c.results.trainLoss.length, 2);
  });

  it('protect --method em: SIGTERM mid-run exits 143 promptly with a checkpoint; the resumed noise.npy equals an uninterrupted run', async () => {
    const work = await tmp();
    const em = (out: string) => [
      ...['protect', '--dataset', 'npy', '--data-dir', data, '--out', out, '--method', 'em'],
      ...['--em-steps', '10', '--em-train-steps', '2', '--em-batch-size', '16'],
      ...['--em-noise-batch', '8', '--max-rounds', '3', '--stop-accuracy', '1'],
      ...['--backend', 'native'],
    ];
    const whole = path.join(work, 'whole');
    const w = await runCli(em(whole));
    assert.equal(w.code, 0, w.stderr);
    const cut = path.join(work, 'cut');
    const p = start(em(cut));
    await waitFor(() => /EM round {3}1 /.test(p.stdout()), 120_000, 'EM round 1');
    await new Promise((r) => setTimeout(r, 300));
    const r = await terminate(p);
    assert.equal(r.code, 143, r.stderr);
    assert.ok(r.seconds < 5, `exited ${r.seconds} s after SIGTERM`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(existsSync(cut), false, 'no output folder for an unfinished run');
    const meta = JSON.parse(await readFile(`${cut}.em-checkpoint/em.json`, 'utf8')) as {
      state: { round: number; trained: boolean; batch: number };
    };
    assert.ok(meta.state.round >= 1 && meta.state.round < 3, JSON.stringify(meta.state));
    console.log(
      `EM: exit ${r.seconds.toFixed(2)} s after SIGTERM, checkpoint at round ${meta.state.round + 1}` +
        ` (surrogate trained: ${meta.state.trained}, noise batch ${meta.state.batch} of 40)`,
    );
    const again = await runCli([...em(cut), '--resume']);
    assert.equal(again.code, 0, again.stderr);
    assert.doesNotMatch(again.stdout, /EM round {3}1 /);
    const a = await readFile(path.join(whole, 'noise.npy'));
    const b = await readFile(path.join(cut, 'noise.npy'));
    assert.ok(a.length > 320 * 3072 * 4, `${a.length} bytes`);
    assert.ok(a.equals(b), 'the resumed noise differs from the uninterrupted one');
  });
});
