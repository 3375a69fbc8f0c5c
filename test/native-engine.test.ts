// The native backend as a whole: `auto` picks it, a missing addon is explained (CLI and doctor),
// fallback kernels share memory safely with pooled arrays, the in-place SGD equals the tensor
// path, memory stays flat over many training steps, and a run's results name its thread count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { initEngine, NATIVE_FIX } from '../src/nn/engine.js';
import { nativePoolBytes } from '../src/nn/backends/native/index.js';
import { SGD } from '../src/nn/optim.js';
import { buildModel } from '../src/nn/models/index.js';
import { noNative, rand, random, usingNative } from './native-helpers.js';
import { npyFixture, tempDirs } from './helpers.js';

const skip = noNative();
const CLI = path.resolve('dist/src/cli/main.js');

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const e = { ...process.env, ...env };
  delete e.NODE_TEST_CONTEXT;
  return spawnSync(process.execPath, [CLI, ...args], { env: e, encoding: 'utf8', timeout: 60_000 });
}

test(
  "a native run's results name oneDNN's thread count: ONEPIXEL_NATIVE_THREADS's, else every core",
  { skip },
  async () => {
    // (A run repeats bit for bit only at the same count: oneDNN adds its reductions in its order.)
    const dir = await tempDirs('threads')();
    await npyFixture(path.join(dir, 'data'), 'data_batch_1.bin', 64, 16);
    for (const [env, want] of [
      [{ ONEPIXEL_NATIVE_THREADS: '1' }, 1],
      [{ ONEPIXEL_NATIVE_THREADS: '' }, os.availableParallelism()],
    ] as const) {
      const results = path.join(dir, `r${want}.json`);
      const r = cli(
        [
          ...['train', '--data', path.join(dir, 'data'), '--backend', 'native', '--model'],
          ...['lenet5', '--epochs', '1', '--batch-size', '32', '--results', results],
        ],
        env,
      );
      assert.equal(r.status, 0, r.stderr);
      const saved = JSON.parse(await readFile(results, 'utf8')) as { threads?: number };
      assert.equal(saved.threads, want, JSON.stringify(env));
    }
    // Not on other backends.
    const results = path.join(dir, 'wasm.json');
    const r = cli([
      ...['train', '--data', path.join(dir, 'data'), '--backend', 'wasm', '--model', 'lenet5'],
      ...['--epochs', '1', '--batch-size', '32', '--results', results],
    ]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(!('threads' in JSON.parse(await readFile(results, 'utf8'))));
  },
);

test('auto picks native when the addon loads', { skip }, async () => {
  assert.equal(await initEngine(), 'native');
  assert.equal(tf.getBackend(), 'native');
});

test('onepixel doctor reports every backend, and exits 0 while one works', () => {
  const r = cli(['doctor', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const reports = JSON.parse(r.stdout) as { backend: string; usable: boolean; detail: string }[];
  assert.deepEqual(reports.map((x) => x.backend).sort(), [
    'auto',
    'cpu',
    'native',
    'wasm',
    'webgpu',
  ]);
  const by = Object.fromEntries(reports.map((x) => [x.backend, x]));
  assert.equal(by.wasm.usable, true);
  assert.equal(by.native.usable, skip === false);
  assert.match(by.auto.detail, new RegExp(`picks ${skip === false ? 'native' : 'wasm'}`));
  if (skip === false)
    assert.match(by.native.detail, /oneDNN \d+\.\d+\.\d+ \(OpenMP\), \d+ threads/);
});

test('without the addon: doctor names what is missing and the fix, --backend native refuses', () => {
  const env = { ONEPIXEL_NATIVE_ADDON: '/nonexistent/onepixel_native.node' };
  const d = cli(['doctor'], env);
  assert.equal(d.status, 0, d.stderr);
  assert.match(
    d.stdout,
    /native\s+missing\s+the addon is not built \(\/nonexistent\/onepixel_native\.node is missing\)/,
  );
  assert.ok(d.stdout.includes(`fix: ${NATIVE_FIX}`), d.stdout);
  assert.match(d.stdout, /auto\s+ok\s+picks wasm/);
  const t = cli(['train', '--data', '/nonexistent', '--backend', 'native'], env);
  assert.equal(t.status, 1);
  assert.match(t.stderr, /backend 'native' is not available: the addon is not built/);
  assert.ok(t.stderr.includes(NATIVE_FIX), t.stderr);
});

test(
  'fallback kernels run on the same memory; their views of pooled arrays get their own copy',
  { skip },
  async () => {
    await initEngine('native');
    const x = tf.relu(rand([4, 8], 1)); // a native kernel: pooled output
    const expected = Float32Array.from(x.dataSync());
    const s = tf.slice(x, [1, 0], [2, 8]); // the cpu kernel returns a subarray for this slice
    const t = tf.transpose(x); // a cpu kernel
    x.dispose();
    const y = tf.relu(rand([4, 8], 2)); // reuses x's pooled array
    assert.deepEqual(Array.from(s.dataSync()), Array.from(expected.subarray(8, 24)));
    const tv = t.dataSync();
    for (let i = 0; i < 4; i++)
      for (let j = 0; j < 8; j++) assert.equal(tv[j * 4 + i], expected[i * 8 + j]);
    // dataSync of a pooled tensor is a copy: writing to it leaves the tensor alone.
    const copy = y.dataSync() as Float32Array;
    const before = copy[0];
    copy[0] = 42;
    assert.equal(y.dataSync()[0], before);
    tf.dispose([s, t, y]);
  },
);

for (const opts of [
  { momentum: 0.9, weightDecay: 5e-4 },
  { momentum: 0.9, weightDecay: 5e-4, nesterov: true },
  { momentum: 0.5, weightDecay: 1e-3, dampening: 0.1, decayBiasAndBn: false },
  { momentum: 0, weightDecay: 5e-4 },
]) {
  test(
    `in-place native SGD equals the tensor path on cpu, bit for bit: ${JSON.stringify(opts)}`,
    { skip },
    async () => {
      const run = async (backend: 'cpu' | 'native') => {
        await initEngine(backend);
        const params = { w: tf.variable(rand([3, 3, 4, 5], 3)), b: tf.variable(rand([5], 4)) };
        const before = params.w.dataSync()[0];
        const sgd = new SGD(params, opts);
        for (let step = 0; step < 4; step++) {
          const grads = { w: rand([3, 3, 4, 5], 10 + step), b: rand([5], 20 + step) };
          sgd.step(grads, 0.1 / (step + 1));
          tf.dispose(Object.values(grads));
        }
        const out = [params.w.dataSync().slice(), params.b.dataSync().slice()];
        const state = await sgd.state();
        sgd.dispose();
        tf.dispose(Object.values(params));
        return { out, state, before };
      };
      const cpu = await run('cpu');
      const native = await usingNative('sgd', ['addon:sgd'], () => run('native'));
      assert.deepEqual(native.out, cpu.out);
      assert.deepEqual(native.state, cpu.state);
    },
  );
}

test(
  'native SGD updates a private variable in place, and copies it while another tensor shares it',
  { skip },
  async () => {
    await initEngine('native');
    const values = (t: tf.Tensor) =>
      (tf.backend() as unknown as { f32(t: tf.TensorInfo): Float32Array }).f32(t);
    const w = tf.variable(rand([4, 5], 3));
    const sgd = new SGD({ w }, { momentum: 0.9, weightDecay: 5e-4 });
    const step = () => {
      const g = rand([4, 5], 4);
      sgd.step({ w: g }, 0.1);
      g.dispose();
    };
    step();
    const array = values(w);
    step();
    step();
    assert.equal(values(w), array, 'a later step copied the weights');
    const alias = tf.clone(w); // the same data
    const before = alias.dataSync().slice();
    step();
    assert.deepEqual(alias.dataSync(), before, 'the update reached a tensor sharing the data');
    assert.notDeepEqual(w.dataSync(), before, 'the weights did not move');
    sgd.dispose();
    tf.dispose([alias, w]);
  },
);

test(
  'memory stays flat over 40 native training steps (tensors, pooled bytes, RSS)',
  { skip },
  async () => {
    await initEngine('native');
    const model = buildModel('smallcnn', { height: 32, width: 32, channels: 3 }, 10, { seed: 1 });
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    const sgd = new SGD(vars, { momentum: 0.9, weightDecay: 5e-4 });
    const x = tf.tensor4d(random(32 * 32 * 32 * 3, 5), [32, 32, 32, 3]);
    const y = tf.oneHot(
      tf.tensor1d(
        Int32Array.from({ length: 32 }, (_, i) => i % 10),
        'int32',
      ),
      10,
    );
    const step = () =>
      tf.tidy(() => {
        const { value, grads } = tf.variableGrads(
          () =>
            tf.losses.softmaxCrossEntropy(
              y,
              model.apply(x, { training: true }) as tf.Tensor,
            ) as tf.Scalar,
          vars,
        );
        sgd.step(grads, 0.01);
        return value.dataSync()[0];
      });
    for (let i = 0; i < 10; i++) step();
    const tensors = tf.memory().numTensors;
    const pooled = nativePoolBytes();
    const rss = process.memoryUsage().rss;
    for (let i = 0; i < 30; i++) step();
    assert.equal(tf.memory().numTensors, tensors, 'tensors leaked');
    assert.equal(nativePoolBytes(), pooled, 'the pool grew');
    const grown = (process.memoryUsage().rss - rss) / 2 ** 20;
    assert.ok(grown < 40, `RSS grew by ${grown.toFixed(1)} MB over 30 steps`);
    sgd.dispose();
    model.dispose();
    tf.dispose([x, y]);
  },
);

for (const shared of [false, true]) {
  test(
    `a ZeroPadding2D before a valid convolution folds into it on native${shared ? ' (the padded copy also feeds another layer)' : ''}`,
    { skip },
    async () => {
      const run = async (backend: 'cpu' | 'native') => {
        await initEngine(backend);
        const input = tfl.input({ shape: [9, 9, 3] });
        const padded = tfl.layers.zeroPadding2d({ padding: 1 }).apply(input) as tfl.SymbolicTensor;
        const init = tfl.initializers.randomUniform({ minval: -0.5, maxval: 0.5, seed: 4 });
        let out = tfl.layers
          .conv2d({
            filters: 4,
            kernelSize: 3,
            strides: 2,
            useBias: false,
            kernelInitializer: init,
          })
          .apply(padded) as tfl.SymbolicTensor;
        out = tfl.layers.flatten().apply(out) as tfl.SymbolicTensor;
        if (shared) {
          const other = tfl.layers.flatten().apply(padded) as tfl.SymbolicTensor;
          out = tfl.layers.concatenate().apply([out, other]) as tfl.SymbolicTensor;
        }
        const model = tfl.model({ inputs: input, outputs: out });
        const x = tf.tensor4d(random(2 * 9 * 9 * 3, 6), [2, 9, 9, 3]);
        const r = tf.tensor(random((out.shape[1] as number) * 2, 7), [2, out.shape[1] as number]);
        const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
        const { value, grads } = tf.variableGrads(
          () => tf.sum(tf.mul(model.apply(x, { training: true }) as tf.Tensor, r)) as tf.Scalar,
          vars,
        );
        const result = [value.dataSync()[0], ...grads[vars[0].name].dataSync()];
        tf.dispose([x, r, value, ...Object.values(grads)]);
        model.dispose();
        return result;
      };
      const cpu = await run('cpu');
      // Folded: the convolution reads the unpadded input, and no PadV2 runs unless shared.
      const kernels = ['FusedConv2D', 'Conv2DBackpropFilter', shared ? 'PadV2' : '!PadV2'];
      const native = await usingNative('folded padding', kernels, () => run('native'));
      native.forEach((v, i) =>
        assert.ok(
          Math.abs(v - cpu[i]) <= 1e-4 * Math.max(1, Math.abs(cpu[i])),
          `value ${i}: ${v} vs ${cpu[i]}`,
        ),
      );
    },
  );
}
