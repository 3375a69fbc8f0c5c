/**
 * GPU training speed: images per second of a training step and of a PGD input-gradient step on the
 * `webgpu` backend, with onepixel's kernels and with tfjs' stock ones, side by side with PyTorch
 * (CUDA, fp32: TF32 off) on the same GPU in the same run (bench/peer_train_torch.py --device cuda).
 *
 *   node dist/bench/gpu.js [--only NAME[,NAME…]] [--kernels K[,K…]] [--no-peer] [--steps N]
 *                          [--profile]   (GPU time per shader program over one step)
 *
 * Each onepixel measurement runs in a child process of its own, once per kernel choice
 * (ONEPIXEL_WEBGPU_KERNELS, read when the backend starts: `batched`, onepixel's default, `splitk`,
 * or `stock` for tfjs' own kernels; see src/nn/backends/webgpu/kernels.ts). Default: batched,stock. The step is the one
 * bench/train.ts times (variableGrads over the model in training mode, mean softmax cross-entropy,
 * SGD with momentum), on a fixed random batch of 128 32×32×3 images; the loss is read back each
 * step, which waits for the GPU. stdout: one JSON object per measurement (`name`, `backend`,
 * `model`, `batch`, `imagesPerSecond`, `peer`, `peerImagesPerSecond`, `ratio`); a table on stderr.
 */
import { spawn } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { initEngine } from '../src/nn/engine.js';
import { buildModel, type ModelName } from '../src/nn/models/index.js';
import { webgpuInfo } from '../src/nn/backends/webgpu/index.js';
import { SGD } from '../src/nn/optim.js';
import { pgd } from '../src/nn/pgd.js';
import { Rng } from '../src/nn/rng.js';

const BATCH = 128;
const CLASSES = 10;
const here = dirname(fileURLToPath(import.meta.url));
const PEER = resolve(here, '..', '..', 'bench', 'peer_train_torch.py');

interface Spec {
  name: string;
  model: ModelName;
  mode: 'train' | 'inputgrad';
  kernels: string;
}

function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.neg(tf.mean(tf.sum(tf.mul(targets, tf.logSoftmax(logits)), -1))) as tf.Scalar;
}

async function child(
  spec: Spec,
  steps: number,
  profile: boolean,
): Promise<Record<string, unknown>> {
  await initEngine('webgpu');
  const rng = new Rng(7);
  const x = tf.tensor4d(
    Float32Array.from({ length: BATCH * 32 * 32 * 3 }, () => rng.uniform()),
    [BATCH, 32, 32, 3],
  );
  const labels = Int32Array.from({ length: BATCH }, () => Math.floor(rng.uniform() * CLASSES));
  const targets = tf.oneHot(tf.tensor1d(labels, 'int32'), CLASSES);
  const model = buildModel(spec.model, { height: 32, width: 32, channels: 3 }, CLASSES, {
    seed: 1,
  });
  const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const sgd = new SGD(vars, { momentum: 0.9, weightDecay: 5e-4 });
  const compute = () =>
    tf.tidy(() => {
      if (spec.mode === 'inputgrad')
        return tf.sum(
          pgd((xa) => crossEntropy(model.apply(xa, { training: false }) as tf.Tensor, targets), x, {
            steps: 1,
            randomStart: false,
            rng,
          }),
        );
      const { value, grads } = tf.variableGrads(
        () => crossEntropy(model.apply(x, { training: true }) as tf.Tensor, targets),
        vars,
      );
      sgd.step(grads, 0.01);
      return value;
    });
  const step = async () => {
    const out = compute();
    await out.data();
    out.dispose();
  };
  const warmup = 3;
  const seconds: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    await step();
    if (i >= warmup) seconds.push((performance.now() - t0) / 1000);
  }
  const total = seconds.reduce((a, b) => a + b, 0);
  const report: Record<string, unknown> = {
    imagesPerSecond: (BATCH * steps) / total,
    stepSeconds: seconds,
    adapter: webgpuInfo(),
  };
  if (profile) {
    // GPU time per shader program over one step (timestamp queries), summed by program.
    let out: tf.Tensor | null = null;
    const info = (await tf.time(() => {
      out = compute();
    })) as unknown as Omit<tf.TimingInfo, 'getExtraProfileInfo'> & {
      getExtraProfileInfo?: () => { name: string; ms: number }[] | string;
    };
    (out as tf.Tensor | null)?.dispose();
    const by = new Map<string, { ms: number; count: number }>();
    const programs = info.getExtraProfileInfo?.();
    for (const { name, ms } of Array.isArray(programs) ? programs : []) {
      const e = by.get(name) ?? { ms: 0, count: 0 };
      e.ms += ms;
      e.count++;
      by.set(name, e);
    }
    const profiled = await tf.profile(() => compute());
    tf.dispose(profiled.result as tf.Tensor);
    report.profile = {
      wallMs: info.wallMs,
      kernelMs: info.kernelMs,
      kernels: profiled.kernelNames,
      programs: [...by.entries()]
        .sort((a, b) => b[1].ms - a[1].ms)
        .map(([name, e]) => ({ name, ...e })),
    };
  }
  return report;
}

function capture(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'], env });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.on('error', rej);
    p.on('close', (code) =>
      code === 0 ? res(out.trim().split('\n').pop() ?? '{}') : rej(new Error(`exit ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const flag = (f: string) => args.includes(f);
  const value = (f: string) => (args.includes(f) ? args[args.indexOf(f) + 1] : undefined);
  const steps = Number(value('--steps') ?? 10);
  if (flag('--child')) {
    const report = await child(
      JSON.parse(value('--child') as string) as Spec,
      steps,
      flag('--profile'),
    );
    process.stdout.write(JSON.stringify(report) + '\n');
    return;
  }
  const only = value('--only')?.split(',');
  const all: Spec[] = [];
  for (const [model, mode] of [
    ['resnet18', 'train'],
    ['smallcnn', 'train'],
    ['lenet5', 'train'],
    ['resnet18', 'inputgrad'],
  ] as const)
    for (const kernels of (value('--kernels') ?? 'batched,stock').split(','))
      all.push({ name: `${mode}-${model}`, model, mode, kernels });
  const peerDone = new Map<string, Record<string, unknown> | string>();
  for (const spec of all.filter((s) => !only || only.includes(s.name))) {
    const env: NodeJS.ProcessEnv = { ...process.env, ONEPIXEL_WEBGPU_KERNELS: spec.kernels };
    // Dawn hides timestamp queries behind its "unsafe APIs" toggle.
    if (flag('--profile')) env.ONEPIXEL_DAWN_TOGGLES = 'enable-dawn-features=allow_unsafe_apis';
    const row: Record<string, unknown> = {
      name: spec.name,
      backend: 'webgpu',
      kernels: spec.kernels,
      model: spec.model,
      batch: BATCH,
    };
    try {
      const scriptArgs = [process.argv[1], '--child', JSON.stringify(spec), '--steps', `${steps}`];
      if (flag('--profile')) scriptArgs.push('--profile');
      Object.assign(row, JSON.parse(await capture(process.execPath, scriptArgs, env)));
    } catch (e) {
      row.error = (e as Error).message;
    }
    if (!flag('--no-peer') && !peerDone.has(spec.name)) {
      const peerArgs = [PEER, '--device', 'cuda', '--model', spec.model, '--mode', spec.mode];
      peerArgs.push('--batch', `${BATCH}`, '--warmup', '3', '--steps', `${steps * 5}`);
      const peer = await capture('python3', peerArgs, process.env)
        .then((s) => JSON.parse(s) as Record<string, unknown>)
        .catch((e: Error) => e.message);
      peerDone.set(spec.name, peer);
    }
    const peer = peerDone.get(spec.name);
    if (peer && typeof peer === 'object') {
      row.peer = `PyTorch ${String(peer.torch)} CUDA fp32 (${String(peer.deviceName)})`;
      row.peerImagesPerSecond = peer.imagesPerSecond;
      row.ratio = Number(row.imagesPerSecond) / Number(peer.imagesPerSecond);
    } else if (peer) row.peerError = peer;
    process.stdout.write(JSON.stringify(row) + '\n');
    process.stderr.write(
      `${spec.name.padEnd(20)} webgpu ${spec.kernels.padEnd(8)} ` +
        `${Number(row.imagesPerSecond ?? NaN)
          .toFixed(1)
          .padStart(9)} img/s   PyTorch ` +
        `${Number(row.peerImagesPerSecond ?? NaN)
          .toFixed(1)
          .padStart(9)} img/s   ratio ` +
        `${Number(row.ratio ?? NaN).toFixed(4)}${row.error ? `   error: ${String(row.error)}` : ''}\n`,
    );
  }
}

await main();
