/**
 * Faults of the machine, injected: every command writing to a full disk (a small tmpfs, when the
 * tests run as root; skipped with the reason otherwise) or a read-only file system fails in one
 * line naming the path, the operation and the reason, exits 1, leaves no temporary file, folder or
 * lock, and keeps an earlier output or checkpoint intact and usable. One writer per output: a
 * second process is refused at once naming the holder, a dead holder's lock is cleared (and what
 * it left half-done cleaned up), a final rename never replaces an output that appeared meanwhile.
 * kill -9 at random points of a protect: the same command afterwards gives the same bytes.
 * Permission denied (EACCES), on an output folder the user cannot write to and on an input file it
 * cannot read: one line naming the path, exit 1, nothing written (as root, the CLI runs as nobody).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  rmdir,
  stat,
  statfs,
  writeFile,
} from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { OnepixelError } from '../src/errors.js';
import { holdOutput, lockPath, writeAtomically, writeFileAtomic } from '../src/output.js';
import {
  CIFAR_DIR,
  CLI,
  childEnv,
  FASHION_DIR,
  NO_FASHION,
  npyFixture,
  runCli,
  sha256,
  smallAudit,
  tempDirs,
} from './helpers.js';

const tmp = tempDirs('faults');

// ---------------------------------------------------------------------------------------------
// Small file systems

const mounts: string[] = [];
after(async () => {
  for (const m of mounts.reverse()) {
    spawnSync('umount', ['-l', m]);
    await rmdir(m).catch(() => undefined);
  }
});

/** Why a tmpfs cannot be mounted here (not root, no mount), or false when it can. */
function noTmpfs(): string | false {
  if (process.getuid?.() !== 0)
    return 'needs root to mount a small tmpfs (a full disk); this machine runs the tests as another user';
  const probe = spawnSync('sh', [
    '-c',
    'd=$(mktemp -d) && mount -t tmpfs -o size=16k tmpfs "$d" && umount "$d"; r=$?; rmdir "$d"; exit $r',
  ]);
  return probe.status === 0 ? false : `mount -t tmpfs failed: ${String(probe.stderr).trim()}`;
}
const NO_TMPFS = noTmpfs();

/** A fresh tmpfs of `kb` KiB (read-only with `ro`). */
async function tmpfs(kb: number, ro = false): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'onepixel-faults-fs-'));
  const r = spawnSync('mount', [
    '-t',
    'tmpfs',
    '-o',
    `size=${kb}k${ro ? ',ro' : ''}`,
    'tmpfs',
    dir,
  ]);
  assert.equal(r.status, 0, `mount: ${String(r.stderr)}`);
  mounts.push(dir);
  return dir;
}

/** Fills the file system of `dir` up to `leaveKb` KiB free. */
async function fill(dir: string, leaveKb: number): Promise<string> {
  const s = await statfs(dir);
  const free = s.bavail * s.bsize - leaveKb * 1024;
  const filler = path.join(dir, 'filler');
  if (free > 0) await writeFile(filler, Buffer.alloc(free));
  return filler;
}

/** Every path under `dir`, relative. */
async function tree(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map(String).sort();
}

/** Files under `dir` with the sha256 of their bytes. */
async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const p = path.join(e.parentPath ?? e.path, e.name);
    out[path.relative(dir, p)] = sha256(await readFile(p));
  }
  return out;
}

/** Temporaries and locks of onepixel under `dir`. */
async function leftovers(dir: string): Promise<string[]> {
  return (await tree(dir)).filter((p) => /\.tmp-\d+|\.old-\d+|\.lock$|\.stale-\d+/.test(p));
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Asserts the run failed in one line `onepixel: error: …` matching every pattern. */
function oneLine(r: Run, ...patterns: RegExp[]): void {
  assert.equal(r.code, 1, `exit ${r.code}; stderr:\n${r.stderr}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `not one line:\n${r.stderr}`);
  assert.match(lines[0], /^onepixel: error: /);
  for (const p of patterns) assert.match(lines[0], p);
}

// ---------------------------------------------------------------------------------------------
// Data

let data: string; // 100 training + 10 test CIFAR-10 images as npy
const EM_FAST = ['--em-steps', '1', '--em-train-steps', '1', '--em-batch-size', '16'];
const EM_ONE = ['--max-rounds', '1', '--em-noise-batch', '50', ...EM_FAST];
const NPY = () => ['--dataset', 'npy', '--data-dir', data];
const HAVE_CIFAR = existsSync(path.join(CIFAR_DIR, 'data_batch_5.bin'));

before(async () => {
  data = await tmp();
  await npyFixture(data, 'data_batch_1.bin', 100, 10);
});

// ---------------------------------------------------------------------------------------------

describe('a full disk: one line, exit 1, nothing left behind', { skip: NO_TMPFS }, () => {
  const protects: Array<[string, string[]]> = [
    ['ops npy', ['--format', 'npy']],
    ['ops png', ['--format', 'png']],
    ['random-noise npy', ['--method', 'random-noise', '--format', 'npy']],
    ['em npy', ['--method', 'em', ...EM_ONE, '--format', 'npy']],
    ['cifar10s png', ['--method', 'cifar10s', ...EM_ONE, '--format', 'png']],
  ];
  for (const [name, args] of protects)
    it(`protect ${name}`, async () => {
      const fs = await tmpfs(64);
      const out = path.join(fs, 'out');
      // The EM checkpoint goes elsewhere: this is the output's write.
      const ck = args.includes('em') || args.includes('cifar10s');
      const extra = ck ? ['--checkpoint', path.join(await tmp(), 'ck')] : [];
      const r = await runCli(['protect', ...NPY(), '--out', out, ...args, ...extra]);
      oneLine(r, new RegExp(`${fs}/out\\b`), /write failed|cannot write/, /ENOSPC|No space/);
      assert.deepEqual(await tree(fs), []);
    });

  for (const format of ['cifar', 'cifar-python'])
    it(
      `protect the real CIFAR-10 (records path, --format ${format})`,
      {
        skip: HAVE_CIFAR ? false : `no CIFAR-10 at ${CIFAR_DIR}`,
      },
      async () => {
        const fs = await tmpfs(256);
        const out = path.join(fs, 'out');
        const r = await runCli([
          'protect',
          '--dataset',
          'cifar10',
          '--data-dir',
          CIFAR_DIR,
          '--out',
          out,
          '--format',
          format,
        ]);
        oneLine(r, new RegExp(`${fs}/out/data_batch_1`), /write failed/, /ENOSPC/);
        assert.deepEqual(await tree(fs), []);
      },
    );

  it('protect Fashion-MNIST to IDX (gzipped through a stream)', { skip: NO_FASHION }, async () => {
    const fs = await tmpfs(256);
    const out = path.join(fs, 'out');
    const r = await runCli([
      'protect',
      '--dataset',
      'fashion-mnist',
      '--data-dir',
      FASHION_DIR,
      '--out',
      out,
    ]);
    oneLine(r, new RegExp(`${fs}/out/train-images`), /write failed/, /ENOSPC/);
    assert.deepEqual(await tree(fs), []);
  });

  it('the EM checkpoint', async () => {
    const fs = await tmpfs(64);
    const ck = path.join(fs, 'ck');
    const out = path.join(await tmp(), 'out');
    const r = await runCli([
      'protect',
      ...NPY(),
      '--out',
      out,
      '--method',
      'em',
      ...EM_ONE,
      '--checkpoint',
      ck,
    ]);
    oneLine(r, new RegExp(`${fs}/ck\\b`), /write failed/, /ENOSPC/);
    assert.deepEqual(await tree(fs), []);
    assert.equal(existsSync(out), false);
  });

  it('EM: a failed checkpoint write keeps the earlier one, and --resume then works', async () => {
    const fs = await tmpfs(8192);
    const ck = path.join(fs, 'ck');
    const out = path.join(await tmp(), 'out');
    const args = (rounds: number) => [
      ...['protect', ...NPY(), '--out', out, '--method', 'em', '--checkpoint', ck, '--force'],
      ...[...EM_ONE, '--max-rounds', String(rounds)],
    ];
    const first = await runCli(args(1));
    assert.equal(first.code, 0, first.stderr);
    const before = await snapshot(ck);
    const filler = await fill(fs, 16);
    const r = await runCli([...args(2), '--resume']);
    oneLine(r, new RegExp(`${fs}/ck\\b`), /write failed/, /ENOSPC/);
    assert.deepEqual(await tree(fs).then((t) => t.filter((p) => !p.startsWith('ck'))), ['filler']);
    assert.deepEqual(await snapshot(ck), before, 'the earlier checkpoint changed');
    await rm(filler);
    const again = await runCli([...args(2), '--resume']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /EM round {3}2 /);
    assert.doesNotMatch(again.stdout, /EM round {3}1 /);
    assert.deepEqual(await leftovers(fs), []);
  });

  it('sharded protect: statistics, plan, shard writing', async () => {
    const work = await tmp();
    const stats = path.join(work, 'stats.json');
    const ok = await runCli([
      'protect',
      ...NPY(),
      '--shard',
      '0/1',
      '--stats-only',
      '--out',
      stats,
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const plan = path.join(work, 'plan.json');
    assert.equal((await runCli(['protect', '--merge-stats', stats, '--out', plan])).code, 0);

    let fs = await tmpfs(8);
    let r = await runCli([
      'protect',
      ...NPY(),
      '--shard',
      '0/1',
      '--stats-only',
      '--out',
      path.join(fs, 's.json'),
    ]);
    oneLine(r, new RegExp(`${fs}/s\\.json`), /write failed/, /ENOSPC/);
    assert.deepEqual(await tree(fs), []);

    fs = await tmpfs(4);
    await fill(fs, 0);
    r = await runCli(['protect', '--merge-stats', stats, '--out', path.join(fs, 'p.json')]);
    oneLine(r, new RegExp(`${fs}/`), /ENOSPC/);
    assert.deepEqual(await tree(fs), ['filler']);

    fs = await tmpfs(64);
    r = await runCli([
      'protect',
      ...NPY(),
      '--plan',
      plan,
      '--shard',
      '0/1',
      '--out',
      path.join(fs, 'o'),
    ]);
    oneLine(r, new RegExp(`${fs}/o`), /ENOSPC/);
    assert.deepEqual(await leftovers(fs), []);
  });

  it('train: a failed checkpoint write keeps the earlier one, and --resume then works', async () => {
    const fs = await tmpfs(2048);
    const args = [
      ...['train', '--data', data, '--dataset', 'npy', '--model', 'lenet5', '--backend', 'wasm'],
      ...['--batch-size', '25', '--epochs', '30', '--results', path.join(fs, 'r.json')],
    ];
    // A first checkpoint: stopped (SIGTERM) after epoch 1.
    const child = spawn(process.execPath, [CLI, ...args], { env: childEnv() });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const closed = new Promise((r) => child.on('close', r));
    for (let i = 0; i < 60000 && !/epoch {3}1 /.test(stdout); i++)
      await new Promise((r) => setTimeout(r, 5));
    child.kill('SIGTERM');
    await closed;
    const ckpt = path.join(fs, 'r.ckpt');
    const before = await snapshot(ckpt);
    const filler = await fill(fs, 16);
    const r = await runCli([...args, '--resume']);
    oneLine(r, new RegExp(`${fs}/r\\.`), /write failed/, /ENOSPC/);
    assert.deepEqual(await leftovers(fs), []);
    assert.deepEqual(await snapshot(ckpt), before, 'the earlier checkpoint changed');
    await rm(filler);
    const again = await runCli([...args, '--resume']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /epoch {2}30 /);
    assert.doesNotMatch(again.stdout, /epoch {3}1 /);
    assert.deepEqual(await leftovers(fs), []);
  });

  it('audit: its folder on a full disk', async () => {
    const fs = await tmpfs(16);
    const flags = await smallAudit(await tmp(), 'data_batch_1.bin');
    const r = await runCli([
      'audit',
      ...flags,
      '--backend',
      'wasm',
      '--out',
      path.join(fs, 'audit'),
    ]);
    oneLine(r, new RegExp(`${fs}/audit`), /ENOSPC/);
    assert.deepEqual(await leftovers(fs), []);
  });

  it('slurm: the scripts on a read-only file system', async () => {
    const fs = await tmpfs(16, true);
    const r = await runCli([
      ...['slurm', 'protect', '--dataset', 'npy', '--data-dir', data, '--out', '/tmp/x'],
      ...['--shards', '2', '--jobs', path.join(fs, 'jobs')],
    ]);
    oneLine(r, new RegExp(`${fs}/jobs`), /read-only file system/, /EROFS/);
  });

  it('protect and train on a read-only file system: refused before any work', async () => {
    const fs = await tmpfs(16, true);
    let r = await runCli(['protect', ...NPY(), '--out', path.join(fs, 'out')]);
    oneLine(r, new RegExp(`${fs}/out`), /EROFS/);
    r = await runCli([
      'train',
      '--data',
      data,
      '--dataset',
      'npy',
      '--results',
      path.join(fs, 'r.json'),
    ]);
    oneLine(r, new RegExp(`${fs}/r`), /EROFS/);
  });
});

describe('permission denied (EACCES): one line, exit 1, nothing written', () => {
  // Root passes every permission check: run the CLI as nobody, the way any other user runs it.
  const AS_USER =
    process.getuid?.() === 0
      ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--']
      : [];
  let open: string; // world-readable: the fixture
  let locked: string; // read and list only (0555)
  before(async () => {
    open = await mkdtemp(path.join(tmpdir(), 'onepixel-faults-eacces-'));
    await chmod(open, 0o755);
    await npyFixture(path.join(open, 'data'), 'data_batch_1.bin', 100, 10);
    locked = path.join(open, 'locked');
    await mkdir(locked);
    await chmod(locked, 0o555);
  });
  after(() => rm(open, { recursive: true, force: true }));

  const cli = (args: string[]) => runCli(args, 300_000, AS_USER);
  const data = () => ['--dataset', 'npy', '--data-dir', path.join(open, 'data')];

  it('protect (OPS, EM), train and audit into a folder it cannot write', async () => {
    const d = path.join(open, 'data');
    const to = (f: string) => ['--out', path.join(locked, f)];
    const runs: Array<[string[], string]> = [
      [['protect', ...data(), ...to('out')], 'out'],
      [['protect', ...data(), '--method', 'em', ...EM_ONE, ...to('em')], 'em'],
      [['train', '--data', d, '--dataset', 'npy', '--results', path.join(locked, 'r.json')], 'r'],
      [['audit', '--clean', d, '--protected', d, '--epochs', '1', ...to('a')], 'a'],
    ];
    for (const [args, name] of runs) {
      const r = await cli(args);
      oneLine(r, new RegExp(`${locked}/${name}`), /not writable|permission denied/, /EACCES/);
    }
    assert.deepEqual(await readdir(locked), []);
  });

  it('an input file it cannot read', async () => {
    const copy = path.join(open, 'unreadable');
    await npyFixture(copy, 'data_batch_1.bin', 100, 10);
    await chmod(path.join(copy, 'x_train.npy'), 0o000);
    const writable = path.join(open, 'writable');
    await mkdir(writable);
    await chmod(writable, 0o777);
    const out = path.join(writable, 'out');
    const r = await cli(['protect', '--dataset', 'npy', '--data-dir', copy, '--out', out]);
    oneLine(r, /x_train\.npy/, /permission denied|EACCES/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(await readdir(writable), []);
    if (!HAVE_CIFAR) return;
    // CIFAR-10's binary layout (10 records a file), one batch unreadable.
    const cifar = path.join(open, 'cifar');
    await mkdir(cifar);
    for (const f of [
      'batches.meta.txt',
      'test_batch.bin',
      ...[1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
    ]) {
      const b = await readFile(path.join(CIFAR_DIR, f));
      await writeFile(path.join(cifar, f), f.endsWith('.bin') ? b.subarray(0, 10 * 3073) : b);
    }
    await chmod(path.join(cifar, 'data_batch_2.bin'), 0o000);
    const r2 = await cli(['protect', '--dataset', 'cifar10', '--data-dir', cifar, '--out', out]);
    oneLine(r2, /data_batch_2\.bin/, /permission denied/, /EACCES/);
    assert.deepEqual(await readdir(writable), []);
  });
});

describe('an input that vanishes', () => {
  it('inspect of a protected copy whose data file was removed: one line', async () => {
    const out = path.join(await tmp(), 'out');
    assert.equal((await runCli(['protect', ...NPY(), '--out', out, '--format', 'npy'])).code, 0);
    await rm(path.join(out, 'x_train.npy'));
    const r = await runCli(['inspect', out]);
    oneLine(r, /x_train\.npy/);
  });
});

// ---------------------------------------------------------------------------------------------

describe('one writer per output', () => {
  const CIFAR = ['--dataset', 'cifar10', '--data-dir', CIFAR_DIR];
  const skip = HAVE_CIFAR ? false : `no CIFAR-10 at ${CIFAR_DIR}`;

  function start(args: string[]) {
    const child = spawn(process.execPath, [CLI, ...args], { env: childEnv() });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const done = new Promise<Run>((r) => child.on('close', (code) => r({ code, stdout, stderr })));
    return { child, done };
  }

  it('a second protect on the same --out is refused at once, naming the holder', async () => {
    const out = path.join(await tmp(), 'out');
    // The first run is a long EM generation, so it surely holds --out while the second starts.
    const first = start([
      'protect',
      ...NPY(),
      '--out',
      out,
      '--method',
      'em',
      '--max-rounds',
      '1000',
      ...EM_FAST,
    ]);
    let exited = false;
    void first.done.then(() => (exited = true));
    const lock = lockPath(out);
    for (let i = 0; i < 6000 && !existsSync(lock); i++) await new Promise((r) => setTimeout(r, 10));
    assert.ok(existsSync(lock), 'the first run took no lock');
    const t0 = Date.now();
    const second = await runCli(['protect', ...NPY(), '--out', out, '--pixels', '2']);
    const ms = Date.now() - t0;
    oneLine(
      second,
      new RegExp(`--out ${out}: in use by another onepixel \\(pid ${first.child.pid}`),
      /onepixel protect .*--method em --max-rounds 1000/,
    );
    assert.equal(exited, false, 'the first run ended before the second was refused');
    console.log(`refused ${ms} ms after its start (node's start-up included)`);
    first.child.kill('SIGTERM');
    const r1 = await first.done;
    assert.equal(r1.code, 143, r1.stderr);
    assert.equal(existsSync(out), false);
    assert.equal(existsSync(lock), false, 'the lock outlived its run');
  });

  it(
    'two protects started together: one succeeds, the other is told, the output is the winner’s',
    { skip },
    async () => {
      const out = path.join(await tmp(), 'out');
      const runs = await Promise.all(
        [1, 2].map((k) => start(['protect', ...CIFAR, '--out', out, '--pixels', String(k)]).done),
      );
      const won = runs.findIndex((r) => r.code === 0);
      assert.notEqual(won, -1, runs.map((r) => r.stderr).join('\n'));
      const lost = runs[1 - won];
      oneLine(lost, /in use by another onepixel|already exists/);
      const m = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8')) as {
        pixelsPerClass: number;
      };
      assert.equal(m.pixelsPerClass, won + 1);
    },
  );

  it('two trains on one checkpoint: the second is refused', async () => {
    const work = await tmp();
    const results = path.join(work, 'r.json');
    const release = await holdOutput(path.join(work, 'r.ckpt'), '--checkpoint');
    try {
      const r = await runCli(['train', '--data', data, '--dataset', 'npy', '--results', results]);
      oneLine(
        r,
        /--checkpoint .*r\.ckpt: in use by another onepixel/,
        new RegExp(`pid ${process.pid}`),
      );
      assert.equal(existsSync(results), false);
    } finally {
      await release();
    }
  });

  it('a lock whose holder is dead (kill -9) is cleared; what it left is cleaned up', async () => {
    const work = await tmp();
    const out = path.join(work, 'out');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']);
    const pid = Number(dead.stdout);
    const holder = {
      pid,
      start: '1',
      host: hostname(),
      command: 'onepixel protect (killed)',
      since: '',
    };
    await writeFile(lockPath(out), JSON.stringify(holder));
    // Its half-written folder, and a previous output it had moved aside to replace.
    await mkdir(path.join(work, `.out.tmp-${pid}`));
    await writeFile(path.join(work, `.out.tmp-${pid}`, 'half'), 'x');
    await mkdir(path.join(work, `.out.old-${pid}`));
    await writeFile(path.join(work, `.out.old-${pid}`, 'manifest.json'), '{}');
    const r = await runCli(['protect', ...NPY(), '--out', out]);
    // The previous output was put back first, so this run (without --force) keeps it.
    const [note, ...rest] = r.stderr.split('\n');
    assert.match(
      note,
      new RegExp(`cleared the lock of pid ${pid} \\(onepixel protect \\(killed\\)\\)`),
    );
    oneLine({ ...r, stderr: rest.join('\n') }, /already exists; pass --force/);
    assert.deepEqual(await tree(work), ['out', 'out/manifest.json']);
  });

  it('a lock of a pid now given to another process is stale too', async () => {
    const out = path.join(await tmp(), 'out');
    // This test's own pid, alive, but with another start time.
    const holder = { pid: process.pid, start: '1', host: hostname(), command: 'x', since: '' };
    await writeFile(lockPath(out), JSON.stringify(holder));
    const r = await runCli(['protect', ...NPY(), '--out', out, '--format', 'npy']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`cleared the lock of pid ${process.pid}`));
    assert.equal(existsSync(lockPath(out)), false);
  });

  it('a live holder on another host is not second-guessed', async () => {
    const out = path.join(await tmp(), 'out');
    const holder = {
      pid: 1,
      start: null,
      host: 'elsewhere',
      command: 'onepixel protect',
      since: '',
    };
    await writeFile(lockPath(out), JSON.stringify(holder));
    const r = await runCli(['protect', ...NPY(), '--out', out]);
    oneLine(r, /in use by another onepixel \(pid 1 on elsewhere/, /remove .*\.out\.lock/);
    assert.equal(existsSync(out), false);
  });

  it('the final rename never replaces an output that appeared meanwhile', async () => {
    const work = await tmp();
    const out = path.join(work, 'out');
    await assert.rejects(
      writeAtomically(
        out,
        async (dir) => {
          await writeFile(path.join(dir, 'mine'), 'onepixel');
          await mkdir(out);
          await writeFile(path.join(out, 'theirs'), 'another program');
        },
        { replace: false },
      ),
      (e: Error) =>
        e instanceof OnepixelError && /appeared while onepixel was writing/.test(e.message),
    );
    assert.deepEqual(await tree(work), ['out', 'out/theirs']);
    const file = path.join(work, 'f.json');
    await writeFile(file, 'theirs');
    await assert.rejects(writeFileAtomic(file, 'mine', { replace: false }), /appeared/);
    assert.equal(await readFile(file, 'utf8'), 'theirs');
    assert.deepEqual(await leftovers(work), []);
  });
});

// ---------------------------------------------------------------------------------------------

describe('kill -9 at random points of a protect, then the same command', () => {
  let big: string; // 5000 images: the write takes long enough to be hit
  before(async () => {
    big = await tmp();
    await npyFixture(big, 'data_batch_2.bin', 5000, 1000);
  });

  it('gives the bytes of an uninterrupted run', async () => {
    const cmd = (out: string) => [
      'protect',
      '--dataset',
      'npy',
      '--data-dir',
      big,
      '--out',
      out,
      '--format',
      'png',
    ];
    const ref = path.join(await tmp(), 'out');
    const t0 = Date.now();
    assert.equal((await runCli(cmd(ref))).code, 0);
    const took = Date.now() - t0;
    const want = await snapshot(ref);
    // A seeded sequence of kill times across the whole run (start-up, search, writing, rename).
    let s = 12345;
    const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const outcomes: string[] = [];
    for (let k = 0; k < 5; k++) {
      const work = await tmp();
      const out = path.join(work, 'out');
      const child = spawn(process.execPath, [CLI, ...cmd(out)], {
        env: childEnv(),
        stdio: 'ignore',
      });
      const closed = new Promise((r) => child.on('close', r));
      const at = Math.round(200 + rand() * took);
      await new Promise((r) => setTimeout(r, at));
      child.kill('SIGKILL');
      await closed;
      const complete = existsSync(out);
      const again = await runCli(cmd(out));
      if (complete) oneLine(again, /already exists; pass --force/);
      else assert.equal(again.code, 0, again.stderr);
      const got = await snapshot(out);
      assert.deepEqual(got, want, `killed at ${at} ms`);
      assert.deepEqual(await leftovers(work), []);
      assert.deepEqual(await tree(work).then((t) => t.filter((p) => !p.startsWith('out'))), []);
      outcomes.push(`${at} ms: ${complete ? 'complete before the kill' : 'rerun'}`);
    }
    console.log(`uninterrupted ${took} ms; kills: ${outcomes.join(', ')}`);
    assert.ok((await stat(ref)).isDirectory());
  });
});

// ---------------------------------------------------------------------------------------------

describe('kill -9 during train and EM, then the same command with --resume', () => {
  // A seeded sequence of kill times: after the first checkpoint, somewhere in the next stretch.
  let s = 777;
  const rand = () => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;

  /** Runs `args` until `ready` matches its output, waits `ms` more, then kill -9. */
  async function killAfter(args: string[], ready: RegExp, ms: number): Promise<void> {
    const child = spawn(process.execPath, [CLI, ...args], { env: childEnv() });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    const closed = new Promise((r) => child.on('close', r));
    for (let i = 0; i < 24000 && !ready.test(stdout) && child.exitCode === null; i++)
      await new Promise((r) => setTimeout(r, 5));
    assert.ok(ready.test(stdout), `never printed ${ready}: ${stdout}`);
    await new Promise((r) => setTimeout(r, ms));
    child.kill('SIGKILL');
    await closed;
  }

  it('train: the resumed run gives the losses and accuracies of an uninterrupted one', async () => {
    const work = await tmp();
    const args = (r: string) => [
      ...['train', '--data', data, '--dataset', 'npy', '--model', 'lenet5', '--backend', 'wasm'],
      ...['--batch-size', '25', '--epochs', '6', '--seed', '3', '--results', r],
    ];
    const ref = path.join(work, 'ref.json');
    const t0 = Date.now();
    assert.equal((await runCli(args(ref))).code, 0);
    const epochMs = (Date.now() - t0) / 6;
    type R = { trainLoss: number[]; testAccuracy: number[]; trainAccuracy: number[] };
    const want = JSON.parse(await readFile(ref, 'utf8')) as R;
    const outcomes: string[] = [];
    for (let k = 0; k < 3; k++) {
      const r = path.join(work, `cut${k}.json`);
      const at = Math.round(rand() * 2 * epochMs);
      await killAfter(args(r), /epoch {3}1 /, at);
      const again = await runCli([...args(r), '--resume']);
      assert.equal(again.code, 0, again.stderr);
      const got = JSON.parse(await readFile(r, 'utf8')) as R;
      assert.deepEqual(
        [got.trainLoss, got.trainAccuracy, got.testAccuracy],
        [want.trainLoss, want.trainAccuracy, want.testAccuracy],
        `killed ${at} ms after epoch 1`,
      );
      const resumedFrom = /epoch {3}1 /.test(again.stdout) ? 'the start' : 'a checkpoint';
      outcomes.push(`${at} ms after epoch 1 → resumed from ${resumedFrom}`);
    }
    console.log(`train, epochs of ${epochMs.toFixed(0)} ms; kills: ${outcomes.join(', ')}`);
    assert.deepEqual(await leftovers(work), []);
  });

  it('protect --method em: the resumed noise.npy equals an uninterrupted run', async () => {
    const work = await tmp();
    const em = (out: string) => [
      ...['protect', '--dataset', 'npy', '--data-dir', data, '--out', out, '--method', 'em'],
      ...['--em-steps', '5', '--em-train-steps', '2', '--em-batch-size', '16'],
      ...['--em-noise-batch', '10', '--max-rounds', '3', '--stop-accuracy', '1'],
      ...['--backend', 'wasm'],
    ];
    const whole = path.join(work, 'whole');
    const t0 = Date.now();
    assert.equal((await runCli(em(whole))).code, 0);
    const roundMs = (Date.now() - t0) / 3;
    const want = await readFile(path.join(whole, 'noise.npy'));
    const outcomes: string[] = [];
    for (let k = 0; k < 3; k++) {
      const cut = path.join(work, `cut${k}`);
      const at = Math.round(rand() * roundMs);
      await killAfter(em(cut), /EM round {3}1 /, at);
      const done = existsSync(cut);
      const again = await runCli([...em(cut), ...(done ? [] : ['--resume'])]);
      if (done) oneLine(again, /already exists; pass --force/);
      else assert.equal(again.code, 0, again.stderr);
      assert.ok((await readFile(path.join(cut, 'noise.npy'))).equals(want), `killed at ${at} ms`);
      outcomes.push(`${at} ms after round 1 → ${done ? 'complete before the kill' : 'resumed'}`);
    }
    console.log(`EM, rounds of ${roundMs.toFixed(0)} ms; kills: ${outcomes.join(', ')}`);
    assert.deepEqual(await leftovers(work), []);
  });
});
