/**
 * Training speed: images per second of a training step (forward + backward + SGD step) and of a
 * PGD input-gradient step, for onepixel's engine and, side by side in the same run, PyTorch on the
 * same architectures (bench/peer_train_torch.py).
 *
 *   npm run build && node dist/bench/train.js
 *   node dist/bench/train.js [--only NAME[,NAME…]] [--backends B[,B…]] [--no-peer]
 *                            [--no-parallel] [--resnet-batch N] [--wasm-resnet-batch N] [--quick]
 *
 * --only NAME,…      run only these measurements (names as in the table, e.g. train-smallcnn)
 * --backends B,…     onepixel engines to measure: native, wasm, wasm-2workers (default: all three;
 *                    native only where its addon is built)
 * --no-peer          skip PyTorch
 * --no-parallel      skip the `wasm-2workers` rows (src/nn/backends/wasm/parallel.ts)
 * --resnet-batch N   ResNet-18's batch on native and PyTorch (default 128)
 * --wasm-resnet-batch N  ResNet-18's batch on wasm (default 32: its 4 GB heap aborts at 128);
 *                    0 skips ResNet-18 on wasm
 * --quick            fewer timed steps
 *
 * What is timed, per step, on a fixed random batch (uniform [0, 1] NHWC images, random labels,
 * 10 classes, one-hot soft targets):
 * - `train-*`: src/train/loop.ts's step — `tf.variableGrads` over `model.apply(x, {training: true})`
 *   and the mean softmax cross-entropy on soft targets, then `SGD.step` (momentum 0.9, weight decay
 *   5e-4), then reading the loss back. `wasm-2workers`: the same step with the gradients computed by
 *   `createParallelTrainer` (two worker threads, one wasm engine each, half the batch each).
 * - `inputgrad-*`: one inner step of src/nn/pgd.ts's `pgd` (steps 1, no random start):
 *   the gradient of the loss with respect to the input, model in inference mode, then the signed
 *   step and the projection.
 *
 * Steps per measurement (warm-up + timed; `--quick` halves the timed ones): LeNet-5 10 + 50 (its
 * step is 10–30 ms, so a handful of steps measured mostly the machine's noise), the small CNN and
 * ResNet-18 1 + 3 (wasm's ResNet-18 1 + 2).
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
import { initEngine, nativeAvailable } from '../src/nn/engine.js';
import { nativeLoadError } from '../src/nn/backends/native/addon.js';
import { buildModel, trainableParamCount } from '../src/nn/models/index.js';
import { SGD } from '../src/nn/optim.js';
import { pgd } from '../src/nn/pgd.js';
import { Rng } from '../src/nn/rng.js';

const CLASSES = 10;
const SIZE = 32;
const CHANNELS = 3;
const LR = 0.01;
const CHILD_TIMEOUT_S = 300;
const PEER_TIMEOUT_S = 300;
const PEER_THREADS = 2;

type Backend = 'native' | 'wasm' | 'wasm-2workers';
type Mode = 'train' | 'inputgrad';

interface Spec {
  name: string;
  /** FLOPs of one image's step (a multiply-add is 2): forward, ×3 for a training step. */
  flopsPerImage?: number;
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
  /** Peak resident set size of the process, MiB (getrusage). */
  peakRssMB: number;
  /** Forward multiply-adds of one image (convolutions and dense layers). */
  forwardMacs: number;
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
  peakRssMB?: number;
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
const PARALLEL_MODULE = join(here, '..', 'src', 'nn', 'backends', 'wasm', 'parallel.js');
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

/**
 * Forward multiply-adds per image: every Conv2D (out H·W · k·k · Cin · Cout) and Dense (in · out)
 * layer of the model; batch norm, pooling and element-wise work are left out (a few per cent).
 */
function forwardMacs(model: LayersModel): number {
  let macs = 0;
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    const out = layer.outputShape as number[];
    const kernel = layer.getWeights()[0];
    if (kernel === undefined) continue;
    const k = kernel.shape as number[];
    if (cls === 'Conv2D') macs += out[1] * out[2] * k[0] * k[1] * k[2] * k[3];
    else if (cls === 'Dense') macs += k[0] * k[1];
  }
  return macs;
}

async function child(spec: Spec): Promise<ChildReport> {
  const backend = await initEngine(spec.backend === 'native' ? 'native' : 'wasm');
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
  } else if (spec.backend === 'wasm' || spec.backend === 'native') {
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
    if (create === null)
      throw new Error('src/nn/backends/wasm/parallel.js has no createParallelTrainer');
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
    peakRssMB: process.resourceUsage().maxRSS / 1024,
    forwardMacs: forwardMacs(model),
  };
}

// ---------------------------------------------------------------------------------------------
// Parent.

/** Runs a command; resolves with its stdout (stderr passes through), or rejects with the reason. */
function runCapture(
  cmd: string,
  args: string[],
  timeoutS: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
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
    // Idle OpenMP threads sleep, as onepixel's native backend sets for itself: with other work on
    // the machine, spinning threads cost PyTorch more than they gain it.
    { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' },
  ).then((out) => lastJson<PeerReport>(out));
}

function specs(
  resnetBatch: number,
  wasmResnetBatch: number,
  quick: boolean,
  backends: Backend[],
): Spec[] {
  const q = (steps: number) => (quick ? Math.max(1, Math.ceil(steps / 2)) : steps);
  const out: Spec[] = [];
  const models = [
    { model: 'lenet5', batch: 128, warmup: 10, steps: q(50) },
    { model: 'smallcnn', batch: 128, warmup: 1, steps: q(3) },
    { model: 'resnet18', batch: resnetBatch, warmup: 1, steps: q(3) },
  ] as const;
  const on = (b: Backend, m: (typeof models)[number]) => {
    if (!backends.includes(b)) return null;
    if (b === 'native' || m.model !== 'resnet18') return m;
    if (wasmResnetBatch === 0) return null;
    return { ...m, batch: wasmResnetBatch, steps: q(2) };
  };
  for (const mode of ['train', 'inputgrad'] as const)
    for (const m of models) {
      if (mode === 'inputgrad' && m.model === 'lenet5' && !backends.includes('native')) continue;
      for (const b of ['native', 'wasm', 'wasm-2workers'] as const) {
        if (mode === 'inputgrad' && b === 'wasm-2workers') continue;
        const mm = on(b, m);
        if (mm !== null) out.push({ name: `${mode}-${m.model}`, backend: b, mode, ...mm });
      }
    }
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

/**
 * FP32 peak of the machine in GFLOP/s, assuming AVX-512 with two 512-bit FMA pipes per core (Zen 4
 * has two 256-bit pipes, half of this; Zen 5 and recent Xeons have this), at the clock
 * /proc/cpuinfo reports; null without AVX-512 or a clock.
 */
function peakGflops(info: Record<string, unknown>): number | null {
  const simd = (info.simd as string[] | undefined) ?? [];
  const mhz = info.cpuMHz as number | undefined;
  if (!simd.includes('avx512f') || !mhz) return null;
  return ((info.cores as number) * 64 * mhz) / 1000;
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
  const resnetBatch = Number(value('--resnet-batch') ?? 128);
  if (!Number.isInteger(resnetBatch) || resnetBatch < 1) throw new Error('bad --resnet-batch');
  const wasmResnetBatch = Number(value('--wasm-resnet-batch') ?? 32);
  if (!Number.isInteger(wasmResnetBatch) || wasmResnetBatch < 0)
    throw new Error('bad --wasm-resnet-batch');
  let backends = (value('--backends')?.split(',') ?? [
    'native',
    'wasm',
    'wasm-2workers',
  ]) as Backend[];
  if (backends.includes('native') && !nativeAvailable()) {
    process.stderr.write(`native backend not built (${nativeLoadError()}): no native rows\n`);
    backends = backends.filter((b) => b !== 'native');
  }
  const only = value('--only')?.split(',');
  let parallel = !flag('--no-parallel') && backends.includes('wasm-2workers');
  if (parallel && (await loadParallel()) === null) {
    process.stderr.write(
      'src/nn/backends/wasm/parallel.js absent or unusable: no wasm-2workers rows\n',
    );
    parallel = false;
  }
  if (!parallel) backends = backends.filter((b) => b !== 'wasm-2workers');
  const peerOn = !flag('--no-peer');
  const list = specs(resnetBatch, wasmResnetBatch, flag('--quick'), backends).filter(
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

  const peak = peakGflops(info);
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
    pad('GFLOP/s', 7, true),
    pad('%peak', 5, true),
    pad('RSS MB', 6, true),
    pad('peer RSS', 8, true),
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
    // A training step is ~3 forward passes (forward, input and weight gradients); an input
    // gradient ~2 (forward and input gradient).
    const flopsPerImage = rep ? 2 * rep.forwardMacs * (s.mode === 'train' ? 3 : 2) : undefined;
    const gflops = rep && flopsPerImage ? (rep.imagesPerSecond * flopsPerImage) / 1e9 : undefined;
    const share = gflops !== undefined && peak !== null ? (100 * gflops) / peak : undefined;
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
        pad(fmt(gflops, 1), 7, true),
        pad(fmt(share, 1), 5, true),
        pad(fmt(rep?.peakRssMB, 0), 6, true),
        pad(fmt(r.peer?.peakRssMB, 0), 8, true),
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
        flopsPerImage: flopsPerImage ?? null,
        gflops: gflops ?? null,
        percentOfPeak: share ?? null,
        peakRssMB: rep?.peakRssMB ?? null,
        peerPeakRssMB: r.peer?.peakRssMB ?? null,
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
    `GFLOP/s from the model's convolution and dense multiply-adds (×3 per training image, ×2 per ` +
      `input gradient); %peak of ${fmt(peak ?? undefined, 0)} GFLOP/s = cores × 64 FP32 FLOP/cycle ` +
      `(AVX-512: 2 FMA pipes × 16 lanes × 2) × the clock /proc/cpuinfo reports`,
    `RSS MB: peak resident set of the onepixel process (peer RSS: of the Python process)`,
    `load average at start ${(info.loadavg as number[]).join(' ')}, at end ${end.join(' ')}`,
  );
  process.stderr.write('\n' + lines.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
