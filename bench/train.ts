/**
 * Training speed: images per second of a training step (forward + backward + SGD step) and of a
 * PGD input-gradient step, for onepixel's engine and, side by side in the same run, PyTorch on the
 * same architectures (bench/peer_train_torch.py).
 *
 *   npm run build && node dist/bench/train.js
 *   node dist/bench/train.js [--only NAME[,NAME…]] [--backends B[,B…]] [--peers P[,P…]]
 *                            [--no-peer] [--no-parallel] [--resnet-batch N]
 *                            [--wasm-resnet-batch N] [--quick]
 *   npm run bench:bf16       the bf16 rows (issue 22) for a quiet window: LeNet-5, the small CNN,
 *                            ResNet-18 (train, and PGD input gradient), native fp32 and bf16 beside
 *                            all three PyTorch configurations, raw JSONL to results/bf16-speed/
 *   npm run bench:fast94     the 94 % network's step (train-airbench94, inputgrad-airbench94; batch
 *                            1024, native only) beside the same PyTorch configurations
 *
 * --only NAME,…      run only these measurements (names as in the table, e.g. train-smallcnn)
 * --backends B,…     onepixel engines to measure: native, native-bf16 (--precision bf16), wasm,
 *                    wasm-2workers (default: all four; native only where its addon is built,
 *                    native-bf16 only where the CPU runs bf16)
 * --peers P,…        PyTorch configurations beside each row: nchw (fp32, NCHW), fp32-cl (fp32,
 *                    channels_last), bf16-cl (bf16 autocast, channels_last); default
 *                    fp32-cl,bf16-cl: PyTorch at its best. A row's ratio is against the one of its
 *                    precision (fp32 rows: fp32-cl; native-bf16: bf16-cl)
 * --no-peer          skip PyTorch (and the matmul limit)
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
 * ResNet-18 1 + 3 (wasm's ResNet-18 1 + 2), airbench94 (the fast94 network, batch 1024, on native
 * only; every weight trained here, the whitening filters too, where the recipe freezes them) 1 + 3.
 *
 * Before the rows, the peer script measures the machine's limit, a 2048² matrix product in fp32 and
 * bf16 (PyTorch, same threads), and names the BLAS library PyTorch mapped; every row's line repeats
 * the CPU (model, family, model number, SIMD flags), oneDNN's ISA and that BLAS.
 *
 * Each onepixel measurement runs in its own child process (a fresh wasm heap; a wasm abort cannot
 * take the bench down); the PyTorch peer (2 threads) runs right after the onepixel rows of the
 * same model and mode, so both see about the same machine load; it runs twice, under libgomp's
 * PASSIVE wait policy and under PyTorch's default, and the faster counts (both are in the line;
 * OMP_WAIT_POLICY set in the environment: that one only). A table goes to stderr; stdout
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
import { initEngine, nativeAvailable, usePrecision } from '../src/nn/engine.js';
import { loadNative } from '../src/nn/backends/native/addon.js';
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

type Backend = 'native' | 'native-bf16' | 'wasm' | 'wasm-2workers';
/**
 * PyTorch configurations run beside each (model, mode, batch): `nchw` (fp32, PyTorch's default
 * layout), `fp32-cl` (fp32, channels_last), `bf16-cl` (bf16 autocast, channels_last).
 */
type PeerKind = 'nchw' | 'fp32-cl' | 'bf16-cl';
const PEER_KINDS: readonly PeerKind[] = ['nchw', 'fp32-cl', 'bf16-cl'];
const PEER_ARGS: Record<PeerKind, string[]> = {
  nchw: [],
  'fp32-cl': ['--channels-last'],
  'bf16-cl': ['--channels-last', '--autocast', 'bf16'],
};
/** The peer a row is compared with: the same precision, PyTorch at its best. */
function peerFor(b: Backend): PeerKind {
  return b === 'native-bf16' ? 'bf16-cl' : 'fp32-cl';
}
type Mode = 'train' | 'inputgrad';

interface Spec {
  name: string;
  /** FLOPs of one image's step (a multiply-add is 2): forward, ×3 for a training step. */
  flopsPerImage?: number;
  backend: Backend;
  model: 'lenet5' | 'smallcnn' | 'resnet18' | 'airbench94';
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
  blas?: string[];
  /** The libgomp setting this report ran under (the faster of {@link PEER_ENVS}). */
  waitPolicy?: string;
  /** img/s under each setting tried. */
  waitPolicies?: Record<string, number>;
}

/** The machine's limit: PyTorch's 2048² matrix product, GFLOP/s. */
interface LimitReport {
  gflops: { fp32: number; bf16: number };
  blas: string[];
  torch: string;
}

interface Row {
  spec: Spec;
  load1: number;
  report?: ChildReport;
  error?: string;
  peers: Partial<Record<PeerKind, PeerReport>>;
  peerErrors: Partial<Record<PeerKind, string>>;
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
    // The kernel, wherever it sits among the layer's weights (airbench94's whitening layer lists
    // its bias first).
    const kernel = layer.getWeights().find((w) => w.rank === (cls === 'Conv2D' ? 4 : 2));
    if (kernel === undefined) continue;
    const k = kernel.shape as number[];
    if (cls === 'Conv2D') macs += out[1] * out[2] * k[0] * k[1] * k[2] * k[3];
    else if (cls === 'Dense') macs += k[0] * k[1];
  }
  return macs;
}

async function child(spec: Spec): Promise<ChildReport> {
  const onNative = spec.backend === 'native' || spec.backend === 'native-bf16';
  const backend = await initEngine(onNative ? 'native' : 'wasm');
  if (onNative) usePrecision(spec.backend === 'native-bf16' ? 'bf16' : 'fp32');
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
  } else if (spec.backend !== 'wasm-2workers') {
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

// Idle OpenMP threads sleep, as onepixel's native backend sets for itself: with other work on
// the machine, spinning threads cost PyTorch more than they gain it.
const PEER_ENV = { ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' };
/**
 * The libgomp settings every peer measurement runs under; the row keeps the faster, so the peer is
 * at its best on a quiet machine too: PASSIVE (idle threads sleep: what native does, and robust
 * beside other work) and PyTorch's own default (threads spin a while between kernels: 16–21 %
 * faster on LeNet-5 when quiet, results/bf16-speed/wait-policy-*). With OMP_WAIT_POLICY set in
 * the environment, that setting only.
 */
const PEER_ENVS: Record<string, NodeJS.ProcessEnv> = process.env.OMP_WAIT_POLICY
  ? { [process.env.OMP_WAIT_POLICY]: process.env }
  : {
      PASSIVE: PEER_ENV,
      'default (unset)': Object.fromEntries(
        Object.entries(process.env).filter(([k]) => k !== 'OMP_WAIT_POLICY'),
      ),
    };

async function runPeer(spec: Spec, kind: PeerKind): Promise<PeerReport> {
  let best: PeerReport | undefined;
  const waitPolicies: Record<string, number> = {};
  for (const [policy, env] of Object.entries(PEER_ENVS)) {
    const r = await runPeerUnder(spec, kind, policy, env);
    waitPolicies[policy] = r.imagesPerSecond;
    if (best === undefined || r.imagesPerSecond > best.imagesPerSecond)
      best = { ...r, waitPolicy: policy };
  }
  return { ...(best as PeerReport), waitPolicies };
}

function runPeerUnder(
  spec: Spec,
  kind: PeerKind,
  policy: string,
  env: NodeJS.ProcessEnv,
): Promise<PeerReport> {
  process.stderr.write(
    `  peer ${spec.mode} ${spec.model} batch ${spec.batch} (PyTorch ${kind}, libgomp ${policy})\n`,
  );
  return runCapture(
    python(),
    [
      PEER_SCRIPT,
      ...PEER_ARGS[kind],
      ...['--model', spec.model, '--mode', spec.mode, '--batch', String(spec.batch)],
      ...['--warmup', String(spec.warmup), '--steps', String(spec.steps)],
      ...['--threads', String(PEER_THREADS), '--classes', String(CLASSES)],
    ],
    PEER_TIMEOUT_S,
    env,
  ).then((out) => lastJson<PeerReport>(out));
}

function runLimit(): Promise<LimitReport> {
  process.stderr.write('  limit: PyTorch 2048² matrix product, fp32 and bf16\n');
  return runCapture(
    python(),
    [PEER_SCRIPT, '--model', 'lenet5', '--mode', 'matmul', '--threads', String(PEER_THREADS)],
    PEER_TIMEOUT_S,
    PEER_ENV,
  ).then((out) => lastJson<LimitReport>(out));
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
    // The 94 % network at the fast94 recipe's batch (native only: wasm would take minutes a step).
    { model: 'airbench94', batch: 1024, warmup: 1, steps: q(3) },
  ] as const;
  const on = (b: Backend, m: (typeof models)[number]) => {
    if (!backends.includes(b)) return null;
    if (b === 'native' || b === 'native-bf16') return m;
    if (m.model === 'airbench94') return null;
    if (m.model !== 'resnet18') return m;
    if (wasmResnetBatch === 0) return null;
    return { ...m, batch: wasmResnetBatch, steps: q(2) };
  };
  for (const mode of ['train', 'inputgrad'] as const)
    for (const m of models) {
      if (mode === 'inputgrad' && m.model === 'lenet5' && !backends.includes('native')) continue;
      for (const b of ['native', 'native-bf16', 'wasm', 'wasm-2workers'] as const) {
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
      simd: ['avx2', 'fma', 'avx512f', 'avx512_bf16', 'avx512_vnni', 'avx_vnni', 'amx_bf16'].filter(
        (f) => flags.has(f),
      ),
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
    'native-bf16',
    'wasm',
    'wasm-2workers',
  ]) as Backend[];
  if (!nativeAvailable()) {
    if (backends.some((b) => b.startsWith('native')))
      process.stderr.write(`native backend not built (${nativeLoadError()}): no native rows\n`);
    backends = backends.filter((b) => !b.startsWith('native'));
  } else if (backends.includes('native-bf16') && !loadNative()?.info().bf16) {
    process.stderr.write(
      `no native bf16 on this CPU (oneDNN ISA ${loadNative()?.info().isaName}): no native-bf16 rows\n`,
    );
    backends = backends.filter((b) => b !== 'native-bf16');
  }
  const peerKinds = (value('--peers')?.split(',') ?? ['fp32-cl', 'bf16-cl']) as PeerKind[];
  for (const k of peerKinds)
    if (!PEER_KINDS.includes(k)) throw new Error(`bad --peers ${k}: ${PEER_KINDS.join(', ')}`);
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
  const native = nativeAvailable() ? loadNative()?.info() : undefined;
  if (native) Object.assign(info, { onednn: native.onednn, onednnIsa: native.isaName });
  // The measured limit (PyTorch's 2048² matrix product in fp32 and bf16) and the peer's BLAS.
  let limit: LimitReport | undefined;
  if (peerOn)
    try {
      limit = await runLimit();
      Object.assign(info, { limitGflops: limit.gflops, peerBlas: limit.blas });
    } catch (e) {
      process.stderr.write(`  limit failed: ${(e as Error).message}\n`);
    }
  process.stdout.write(JSON.stringify(info) + '\n');
  /** CPU and peer, repeated in every measurement line (a line read alone names its machine). */
  const where = {
    cpu: info.cpu,
    cpuFamily: info.cpuFamily,
    cpuModel: info.cpuModel,
    simd: info.simd,
    onednnIsa: info.onednnIsa ?? null,
    peerBlas: limit?.blas ?? null,
  };
  process.stderr.write(
    `machine: ${String(info.cpu)}, ${String(info.cores)} cores, load average ` +
      `${(info.loadavg as number[]).join(' ')}\n`,
  );

  const rows: Row[] = [];
  const self = fileURLToPath(import.meta.url);
  let torch: { torch: string; python: string } | undefined;
  for (let i = 0; i < list.length; i++) {
    const spec = list[i];
    const row: Row = {
      spec,
      load1: Math.round(os.loadavg()[0] * 100) / 100,
      peers: {},
      peerErrors: {},
    };
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
      const mine = rows.filter((r) => sameKey(r.spec, spec) && Object.keys(r.peers).length === 0);
      for (const kind of peerKinds) {
        try {
          const peer = await runPeer(spec, kind);
          torch = { torch: peer.torch, python: peer.python };
          for (const r of mine) r.peers[kind] = peer;
        } catch (e) {
          const why = (e as Error).message;
          process.stderr.write(`  peer ${kind} failed: ${why}\n`);
          for (const r of mine) r.peerErrors[kind] = why;
        }
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
    ...peerKinds.map((k) => pad(`pt ${k}`, 10, true)),
    pad('ratio', 6, true),
    pad('vs', 7),
    pad('GFLOP/s', 7, true),
    pad('%limit', 6, true),
    pad('RSS MB', 6, true),
    pad('load1', 5, true),
  ].join('  ');
  const lines = [header, '-'.repeat(header.length)];
  for (const r of rows) {
    const s = r.spec;
    const rep = r.report;
    const cpu = rep ? (s.batch * s.steps) / rep.cpuSeconds.reduce((a, b) => a + b, 0) : undefined;
    const vs = peerFor(s.backend);
    const peer = r.peers[vs];
    const ratio = rep && peer ? rep.imagesPerSecond / peer.imagesPerSecond : undefined;
    // A training step is ~3 forward passes (forward, input and weight gradients); an input
    // gradient ~2 (forward and input gradient).
    const flopsPerImage = rep ? 2 * rep.forwardMacs * (s.mode === 'train' ? 3 : 2) : undefined;
    const gflops = rep && flopsPerImage ? (rep.imagesPerSecond * flopsPerImage) / 1e9 : undefined;
    const share = gflops !== undefined && peak !== null ? (100 * gflops) / peak : undefined;
    // Against the measured limit of the row's own precision (PyTorch's 2048² matrix product).
    const lim = limit ? limit.gflops[s.backend === 'native-bf16' ? 'bf16' : 'fp32'] : undefined;
    const ofLimit = gflops !== undefined && lim ? (100 * gflops) / lim : undefined;
    const peerRate = (k: PeerKind) => r.peers[k]?.imagesPerSecond;
    lines.push(
      [
        pad(s.name, 20),
        pad(s.backend, 14),
        pad(String(s.batch), 5, true),
        pad(`${s.warmup}+${s.steps}`, 5, true),
        pad(rep ? fmt(rep.imagesPerSecond, 2) : 'failed', 8, true),
        ...peerKinds.map((k) => pad(fmt(peerRate(k), 2), 10, true)),
        pad(ratio === undefined ? '—' : `${ratio.toFixed(3)}`, 6, true),
        pad(vs, 7),
        pad(fmt(gflops, 1), 7, true),
        pad(fmt(ofLimit, 1), 6, true),
        pad(fmt(rep?.peakRssMB, 0), 6, true),
        pad(fmt(r.load1, 2), 5, true),
      ].join('  '),
    );
    const peerCpu = (k: PeerKind) => {
      const p = r.peers[k];
      return p ? (p.batch * p.stepSeconds.length) / p.cpuSeconds.reduce((a, b) => a + b, 0) : null;
    };
    process.stdout.write(
      JSON.stringify({
        name: s.name,
        backend: s.backend,
        precision: s.backend === 'native-bf16' ? 'bf16' : 'fp32',
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
        comparedWith: peer ? vs : null,
        ratio: ratio ?? null,
        peers: Object.fromEntries(
          peerKinds.map((k) => [
            k,
            {
              imagesPerSecond: r.peers[k]?.imagesPerSecond ?? null,
              imagesPerCpuSecond: peerCpu(k),
              stepSeconds: r.peers[k]?.stepSeconds ?? null,
              cpuSeconds: r.peers[k]?.cpuSeconds ?? null,
              params: r.peers[k]?.params ?? null,
              peakRssMB: r.peers[k]?.peakRssMB ?? null,
              waitPolicy: r.peers[k]?.waitPolicy ?? null,
              waitPolicies: r.peers[k]?.waitPolicies ?? null,
              error: r.peerErrors[k] ?? null,
            },
          ]),
        ),
        flopsPerImage: flopsPerImage ?? null,
        gflops: gflops ?? null,
        percentOfPeak: share ?? null,
        limitGflops: lim ?? null,
        percentOfLimit: ofLimit ?? null,
        peakRssMB: rep?.peakRssMB ?? null,
        loadavg1AtStart: r.load1,
        ...where,
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
    `ratio = onepixel img/s ÷ PyTorch img/s (${PEER_THREADS} threads) of the column 'vs': ` +
      'fp32 rows against PyTorch fp32 channels_last, native-bf16 against PyTorch bf16 autocast ' +
      `channels_last; peer BLAS ${limit?.blas.join(', ') ?? '?'}; each peer figure the faster ` +
      `of libgomp ${Object.keys(PEER_ENVS).join(' and ')} (the JSON lines have both)`,
    `%limit: GFLOP/s against PyTorch's 2048² matrix product in the row's precision on this ` +
      `machine (fp32 ${fmt(limit?.gflops.fp32, 0)}, bf16 ${fmt(limit?.gflops.bf16, 0)} GFLOP/s)`,
    `GFLOP/s from the model's convolution and dense multiply-adds (×3 per training image, ×2 per ` +
      `input gradient); %peak of ${fmt(peak ?? undefined, 0)} GFLOP/s = cores × 64 FP32 FLOP/cycle ` +
      `(AVX-512: 2 FMA pipes × 16 lanes × 2) × the clock /proc/cpuinfo reports`,
    `RSS MB: peak resident set of the onepixel process`,
    `load average at start ${(info.loadavg as number[]).join(' ')}, at end ${end.join(' ')}`,
  );
  process.stderr.write('\n' + lines.join('\n') + '\n');
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
