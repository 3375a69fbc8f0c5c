/**
 * Training speed: images per second of a training step (forward + backward + SGD step) and of a
 * PGD input-gradient step, for onepixel's engine and, side by side in the same run, PyTorch on the
 * same architectures (bench/peer_train_torch.py).
 *
 *   npm run build && node dist/bench/train.js
 *   node dist/bench/train.js [--only NAME[,NAME…]] [--no-peer] [--no-parallel]
 *                            [--resnet-batch N] [--quick]
 *
 * --only NAME,…      run only these measurements (names as in the table, e.g. train-smallcnn)
 * --no-peer          skip PyTorch
 * --no-parallel      skip the `wasm-2workers` rows (src/nn/engine-parallel.ts)
 * --resnet-batch N   ResNet-18's batch (default 32: batch 128 is slow on wasm and its 4 GB heap)
 * --quick            fewer timed steps
 *
 * What is timed, per step, on a fixed random batch (uniform [0, 1] NHWC images, random labels,
 * 10 classes, one-hot soft targets):
 * - `train-*`: src/train/loop.ts's step — `tf.variableGrads` over `model.apply(x, {training: true})`
 *   and the mean softmax cross-entropy on soft targets, then `SGD.step` (momentum 0.9, weight decay
 *   5e-4), then reading the loss back. `wasm-2workers`: the same step with the gradients computed by
 *   `createParallelTrainer` (two worker threads, one wasm engine each, half the batch each).
 * - `inputgrad-*`: one inner step of src/train/adversarial.ts's `pgd` (steps 1, no random start):
 *   the gradient of the loss with respect to the input, model in inference mode, then the signed
 *   step and the projection.
 *
 * Each onepixel measurement runs in its own child process (a fresh wasm heap; a wasm abort cannot
 * take the bench down); the PyTorch peer (2 threads) runs right after the onepixel rows of the
 * same model and mode, so both see about the same machine load. A table goes to stderr; stdout
 * gets one JSON object per line: `machine`, one per measurement, then `machine-end`.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import type { LayersModel } from '@tensorflow/tfjs-layers';
import { initEngine } from '../src/nn/engine.js';
import { buildModel, trainableParamCount } from '../src/nn/models/index.js';
import { SGD } from '../src/nn/optim.js';
import { pgd } from '../src/train/adversarial.js';
import { Rng } from '../src/train/rng.js';

const CLASSES = 10;
const SIZE = 32;
const CHANNELS = 3;
const LR = 0.01;
const CHILD_TIMEOUT_S = 300;
const PEER_TIMEOUT_S = 180;
const PEER_THREADS = 2;

type Backend = 'wasm' | 'wasm-2workers';
type Mode = 'train' | 'inputgrad';

interface Spec {
  name: string;
  backend: Backend;
  model: 'lenet5' | 'smallcnn' | 'resnet18';
  mode: Mode;
  batch: number;
  warmup: number;
  steps: number;
}

/** What a child reports. */
interface ChildReport {
  params: number;
  backend: string;
  workers?: number;
  stepSeconds: number[];
  /** CPU seconds (user + system, all threads of the process) per timed step. */
  cpuSeconds: number[];
  imagesPerSecond: number;
  firstStepSeconds: number;
}

interface PeerReport {
  batch: number;
  threads: number;
  params: number;
  stepSeconds: number[];
  /** CPU seconds of the Python process per timed step. */
  cpuSeconds: number[];
  imagesPerSecond: number;
  torch: string;
  python: string;
}

interface Row {
  spec: Spec;
  load1: number;
  report?: ChildReport;
  error?: string;
  peer?: PeerReport;
  peerError?: string;
}

/** The parallel engine's API as this bench uses it (it may be absent from a build). */
interface ParallelTrainer {
  workers: number;
  backend: string;
  gradients(batch: {
    x: Float32Array;
    shape: number[];
    labels: Int32Array;
    classes: number;
  }): Promise<{ loss: number; grads: tf.NamedTensorMap }>;
  close(): Promise<void>;
}
type CreateParallelTrainer = (
  model: LayersModel,
  options: { workers?: number; backend?: 'wasm' },
) => Promise<ParallelTrainer>;

const here = dirname(fileURLToPath(import.meta.url));
const PARALLEL_MODULE = join(here, '..', 'src', 'nn', 'engine-parallel.js');
/** The peer script sits in bench/ of the source tree: dist/bench/../../bench. */
const PEER_SCRIPT = resolve(here, '..', '..', 'bench', 'peer_train_torch.py');

async function loadParallel(): Promise<CreateParallelTrainer | null> {
  if (!existsSync(PARALLEL_MODULE)) return null;
  try {
    const mod = (await import(pathToFileURL(PARALLEL_MODULE).href)) as {
      createParallelTrainer?: unknown;
    };
    return typeof mod.createParallelTrainer === 'function'
      ? (mod.createParallelTrainer as CreateParallelTrainer)
      : null;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Child: one measurement.

/** Mean cross-entropy of logits against soft targets (as src/train/loop.ts computes it). */
function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1))) as tf.Scalar;
}

function cpuNow(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function child(spec: Spec): Promise<ChildReport> {
  const backend = await initEngine('wasm');
  const rng = new Rng(12345);
  const n = spec.batch;
  const shape: [number, number, number, number] = [n, SIZE, SIZE, CHANNELS];
  const xData = new Float32Array(n * SIZE * SIZE * CHANNELS);
  for (let i = 0; i < xData.length; i++) xData[i] = rng.uniform();
  const labels = new Int32Array(n);
  const soft = new Float32Array(n * CLASSES);
  for (let i = 0; i < n; i++) {
    labels[i] = Math.floor(rng.uniform() * CLASSES);
    soft[i * CLASSES + labels[i]] = 1;
  }
  const model = buildModel(spec.model, { height: SIZE, width: SIZE, channels: CHANNELS }, CLASSES, {
    seed: 1,
  });
  const params = trainableParamCount(model);
  const x = tf.tensor4d(xData, shape);
  const targets = tf.tensor2d(soft, [n, CLASSES]);
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const sgd = new SGD(vars, { momentum: 0.9, weightDecay: 5e-4 });
  let trainer: ParallelTrainer | null = null;
  let step: () => Promise<void>;

  if (spec.mode === 'inputgrad') {
    step = async () => {
      const adv = pgd(
        (xa) => crossEntropy(model.apply(xa, { training: false }) as tf.Tensor, targets),
        x,
        { steps: 1, randomStart: false, rng },
      );
      adv.dataSync();
      adv.dispose();
    };
  } else if (spec.backend === 'wasm') {
    step = async () => {
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(
          () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, targets),
          vars,
        );
        sgd.step(grads, LR);
        value.dataSync();
      });
    };
  } else {
    const create = await loadParallel();
    if (create === null) throw new Error('src/nn/engine-parallel.js has no createParallelTrainer');
    const t = await create(model, { workers: 2, backend: 'wasm' });
    trainer = t;
    step = async () => {
      const { grads } = await t.gradients({ x: xData, shape, labels, classes: CLASSES });
      sgd.step(grads, LR);
      tf.dispose(Object.values(grads));
    };
  }

  const stepSeconds: number[] = [];
  const cpuSeconds: number[] = [];
  let firstStepSeconds = 0;
  for (let i = 0; i < spec.warmup + spec.steps; i++) {
    const t0 = performance.now();
    const c0 = cpuNow();
    await step();
    const dt = (performance.now() - t0) / 1000;
    const dc = cpuNow() - c0;
    if (i === 0) firstStepSeconds = dt;
    if (i >= spec.warmup) {
      stepSeconds.push(dt);
      cpuSeconds.push(dc);
    }
    process.stderr.write(
      `  ${spec.name} [${spec.backend}] step ${i + 1}/${spec.warmup + spec.steps}` +
        `${i < spec.warmup ? ' (warm-up)' : ''}: ${dt.toFixed(2)} s\n`,
    );
  }
  const total = stepSeconds.reduce((a, b) => a + b, 0);
  await trainer?.close();
  return {
    params,
    backend: trainer ? `${trainer.backend} x${trainer.workers} workers` : backend,
    workers: trainer?.workers,
    stepSeconds,
    cpuSeconds,
    imagesPerSecond: (n * spec.steps) / total,
    firstStepSeconds,
  };
}

// ---------------------------------------------------------------------------------------------
// Parent.

/** Runs a command; resolves with its stdout (stderr passes through), or rejects with the reason. */
function runCapture(cmd: string, args: string[], timeoutS: number): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => {
      const s = d.toString();
      err += s;
      process.stderr.write(s);
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutS * 1000);
    p.on('error', (e) => {
      clearTimeout(timer);
      rej(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) res(out);
      else {
        const why = signal ? `killed by ${signal} (timeout ${timeoutS} s?)` : `exit code ${code}`;
        const all = err.trim().split('\n');
        const telling = all.filter((l) => /abort|error|xnn|out of memory/i.test(l)).slice(0, 3);
        const tail = (telling.length > 0 ? telling : all.slice(-3)).join(' | ');
        rej(new Error(`${why}${tail ? `: ${tail}` : ''}`));
      }
    });
  });
}

function lastJson<T>(out: string): T {
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

function python(): string {
  return existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
}

function runPeer(spec: Spec): Promise<PeerReport> {
  process.stderr.write(`  peer ${spec.mode} ${spec.model} batch ${spec.batch} (PyTorch)\n`);
  return runCapture(
    python(),
    [
      PEER_SCRIPT,
      ...['--model', spec.model, '--mode', spec.mode, '--batch', String(spec.batch)],
      ...['--warmup', String(spec.warmup), '--steps', String(spec.steps)],
      ...['--threads', String(PEER_THREADS), '--classes', String(CLASSES)],
    ],
    PEER_TIMEOUT_S,
  ).then((out) => lastJson<PeerReport>(out));
}

function specs(resnetBatch: number, quick: boolean, parallel: boolean): Spec[] {
  const q = (steps: number) => (quick ? Math.max(1, Math.ceil(steps / 2)) : steps);
  const out: Spec[] = [];
  const models = [
    { model: 'lenet5', batch: 128, warmup: 2, steps: q(5) },
    { model: 'smallcnn', batch: 128, warmup: 1, steps: q(3) },
    { model: 'resnet18', batch: resnetBatch, warmup: 1, steps: q(2) },
  ] as const;
  for (const m of models) {
    out.push({ name: `train-${m.model}`, backend: 'wasm', mode: 'train', ...m });
    if (parallel)
      out.push({ name: `train-${m.model}`, backend: 'wasm-2workers', mode: 'train', ...m });
  }
  for (const m of models.slice(1))
    out.push({ name: `inputgrad-${m.model}`, backend: 'wasm', mode: 'inputgrad', ...m });
  return out;
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function fmt(v: number | undefined, digits = 1): string {
  return v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits);
}

/** CPU family/model and the SIMD flags that decide native speed (Linux /proc/cpuinfo). */
function cpuDetails(): Record<string, unknown> {
  try {
    const text = readFileSync('/proc/cpuinfo', 'utf8');
    const field = (k: string) => new RegExp(`^${k}\\s*:\\s*(.*)$`, 'm').exec(text)?.[1];
    const flags = new Set((field('flags') ?? '').split(/\s+/));
    return {
      cpuFamily: Number(field('cpu family')),
      cpuModel: Number(field('model')),
      cpuMHz: Number(field('cpu MHz')),
      simd: ['avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx_vnni'].filter((f) => flags.has(f)),
    };
  } catch {
    return {};
  }
}

function machine(): Record<string, unknown> {
  const require = createRequire(import.meta.url);
  const tfjs = (require('@tensorflow/tfjs-core/package.json') as { version: string }).version;
  return {
    name: 'machine',
    cpu: os.cpus()[0]?.model ?? 'unknown',
    ...cpuDetails(),
    cores: os.availableParallelism(),
    memGB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    tfjs,
    loadavg: os.loadavg().map((v) => Math.round(v * 100) / 100),
    date: new Date().toISOString(),
  };
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const childAt = argv.indexOf('--child');
  if (childAt >= 0) {
    const report = await child(JSON.parse(argv[childAt + 1]) as Spec);
    process.stdout.write(JSON.stringify(report) + '\n');
    // Worker threads or wasm may keep the loop alive.
    process.exit(0);
  }
  const flag = (f: string) => argv.includes(f);
  const value = (f: string) => {
    const i = argv.indexOf(f);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const resnetBatch = Number(value('--resnet-batch') ?? 32);
  if (!Number.isInteger(resnetBatch) || resnetBatch < 1) throw new Error('bad --resnet-batch');
  const only = value('--only')?.split(',');
  let parallel = !flag('--no-parallel');
  if (parallel && (await loadParallel()) === null) {
    process.stderr.write('src/nn/engine-parallel.js absent or unusable: no wasm-2workers rows\n');
    parallel = false;
  }
  const peerOn = !flag('--no-peer');
  const list = specs(resnetBatch, flag('--quick'), parallel).filter(
    (s) => only === undefined || only.includes(s.name),
  );

  const info = machine();
  process.stdout.write(JSON.stringify(info) + '\n');
  process.stderr.write(
    `machine: ${String(info.cpu)}, ${String(info.cores)} cores, load average ` +
      `${(info.loadavg as number[]).join(' ')}\n`,
  );

  const rows: Row[] = [];
  const self = fileURLToPath(import.meta.url);
  let torch: { torch: string; python: string } | undefined;
  for (let i = 0; i < list.length; i++) {
    const spec = list[i];
    const row: Row = { spec, load1: Math.round(os.loadavg()[0] * 100) / 100 };
    try {
      const out = await runCapture(
        process.execPath,
        [self, '--child', JSON.stringify(spec)],
        CHILD_TIMEOUT_S,
      );
      row.report = lastJson<ChildReport>(out);
    } catch (e) {
      row.error = (e as Error).message;
      process.stderr.write(`  ${spec.name} [${spec.backend}] failed: ${row.error}\n`);
    }
    rows.push(row);
    // The peer runs after the last onepixel row of its (model, mode, batch).
    const next = list[i + 1];
    const sameKey = (a: Spec, b: Spec) =>
      a.model === b.model && a.mode === b.mode && a.batch === b.batch;
    if (peerOn && (next === undefined || !sameKey(next, spec))) {
      let peer: PeerReport | undefined;
      let peerError: string | undefined;
      try {
        peer = await runPeer(spec);
        torch = { torch: peer.torch, python: peer.python };
      } catch (e) {
        peerError = (e as Error).message;
        process.stderr.write(`  peer failed: ${peerError}\n`);
      }
      for (const r of rows)
        if (sameKey(r.spec, spec) && r.peer === undefined) {
          r.peer = peer;
          r.peerError = peerError;
        }
    }
  }

  const header = [
    pad('measurement', 20),
    pad('backend', 14),
    pad('batch', 5, true),
    pad('steps', 5, true),
    pad('img/s', 8, true),
    pad('img/CPU-s', 9, true),
    pad('peer img/s', 10, true),
    pad('peer/CPU-s', 10, true),
    pad('ratio', 6, true),
    pad('load1', 5, true),
  ].join('  ');
  const lines = [header, '-'.repeat(header.length)];
  for (const r of rows) {
    const s = r.spec;
    const rep = r.report;
    const cpu = rep ? (s.batch * s.steps) / rep.cpuSeconds.reduce((a, b) => a + b, 0) : undefined;
    const ratio = rep && r.peer ? rep.imagesPerSecond / r.peer.imagesPerSecond : undefined;
    const peerCpu = r.peer
      ? (r.peer.batch * r.peer.stepSeconds.length) / r.peer.cpuSeconds.reduce((a, b) => a + b, 0)
      : undefined;
    lines.push(
      [
        pad(s.name, 20),
        pad(s.backend, 14),
        pad(String(s.batch), 5, true),
        pad(`${s.warmup}+${s.steps}`, 5, true),
        pad(rep ? fmt(rep.imagesPerSecond, 2) : 'failed', 8, true),
        pad(fmt(cpu, 2), 9, true),
        pad(r.peer ? fmt(r.peer.imagesPerSecond, 2) : '—', 10, true),
        pad(fmt(peerCpu, 2), 10, true),
        pad(ratio === undefined ? '—' : `${ratio.toFixed(3)}`, 6, true),
        pad(fmt(r.load1, 2), 5, true),
      ].join('  '),
    );
    process.stdout.write(
      JSON.stringify({
        name: s.name,
        backend: s.backend,
        model: s.model,
        mode: s.mode,
        batch: s.batch,
        warmupSteps: s.warmup,
        timedSteps: s.steps,
        imagesPerSecond: rep?.imagesPerSecond ?? null,
        imagesPerCpuSecond: cpu ?? null,
        stepSeconds: rep?.stepSeconds ?? null,
        cpuSeconds: rep?.cpuSeconds ?? null,
        firstStepSeconds: rep?.firstStepSeconds ?? null,
        params: rep?.params ?? null,
        engine: rep?.backend ?? null,
        error: r.error ?? null,
        peer: peerOn ? `pytorch ${torch?.torch ?? '?'} (${PEER_THREADS} threads)` : null,
        peerImagesPerSecond: r.peer?.imagesPerSecond ?? null,
        peerImagesPerCpuSecond: peerCpu ?? null,
        peerStepSeconds: r.peer?.stepSeconds ?? null,
        peerCpuSeconds: r.peer?.cpuSeconds ?? null,
        peerParams: r.peer?.params ?? null,
        peerError: r.peerError ?? null,
        ratio: ratio ?? null,
        loadavg1AtStart: r.load1,
      }) + '\n',
    );
  }
  const end = os.loadavg().map((v) => Math.round(v * 100) / 100);
  process.stdout.write(
    JSON.stringify({
      name: 'machine-end',
      loadavg: end,
      torch: torch?.torch ?? null,
      python: torch?.python ?? null,
      date: new Date().toISOString(),
    }) + '\n',
  );
  lines.push(
    '',
    `ratio = onepixel img/s ÷ PyTorch img/s (${PEER_THREADS} threads); img/CPU-s = images per ` +
      'CPU-second of the onepixel process (peer/CPU-s: of the Python process)',
    `load average at start ${(info.loadavg as number[]).join(' ')}, at end ${end.join(' ')}`,
  );
  process.stderr.write('\n' + lines.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
