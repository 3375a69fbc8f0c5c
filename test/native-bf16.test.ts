// bf16 in the native backend (issue 22), kernel by kernel: convolutions (forward, input gradient,
// filter gradient) and matrix products, on the addon directly, against PyTorch's bf16 autocast on
// the CPU (channels_last) and against exact float64 references (test/torch_bf16.py).
//
// Where the tolerances come from. bf16 keeps 8 significant bits (7 stored): rounding to nearest
// moves a value by at most u = 2^-8 of itself (half its ulp; fp32's u is 2^-24), so a product of
// two rounded inputs is off by at most (1 + u)² − 1 ≈ 2u = 2^-7 of |product|. oneDNN multiplies bf16 pairs exactly in fp32 and
// accumulates in fp32, which adds at most γ_K = K·2^-24 of Σ|products| over a reduction of length K
// (the standard bound for a sum of K terms). With S = Σ|products| per output element (computed in
// float64 from the rounded inputs' absolute values), for every element:
//   against the exact result on the bf16-rounded inputs:    |native − round| ≤ γ_K·S
// (the filter gradient is written in bf16, as PyTorch's autocast writes it, and then reordered to
// fp32: its bounds have u·|reference| more: oneDNN 2.6's bf16 kernel with an fp32 filter gradient
// is several times slower on strided convolutions)
//   against the exact result on the unrounded inputs:       |native − exact| ≤ (2^-7 + γ_K)·S
//   against PyTorch autocast, whose outputs are bf16 (each rounded once more, by ≤ u of itself,
//   and accumulated in its own order):                    |native − torch| ≤ u·|torch| + 2γ_K·S
// A small absolute slack (1e-30) covers S = 0.
//
// Proof that bf16 ran, not fp32: oneDNN names the implementation (`jit_bf16…`, `brg…bf16`, with
// the source type this addon appends), and the values say it too: the bf16 output is closer to the
// exact result on rounded inputs than to the exact result on unrounded ones, by a wide margin; the
// same kernels in fp32 are the other way round (checked below on the same inputs, so the check can
// fail).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadNative, type NativeAddon } from '../src/nn/backends/native/addon.js';
import { initEngine, resolvePrecision, usePrecision } from '../src/nn/engine.js';
import { buildModel, type ModelName } from '../src/nn/models/index.js';
import { jobConfig } from '../src/train/job.js';
import { cellFolder, type CellIdentity } from '../src/audit/matrix.js';
import { cifarDataset, cifarRecords, PYTHON, random, tempDirs } from './helpers.js';
import { noNative, usingNative } from './native-helpers.js';

const SCRIPT = path.resolve('test/torch_bf16.py');
const U = 2 ** -8;
const newDir = tempDirs('bf16');

interface ConvCase {
  kind: 'conv';
  n: number;
  h: number;
  w: number;
  ci: number;
  kh: number;
  kw: number;
  co: number;
  stride: number;
  pad: number;
}
interface MatMulCase {
  kind: 'matmul';
  m: number;
  k: number;
  n: number;
  ta: 0 | 1;
  tb: 0 | 1;
}
type Case = ConvCase | MatMulCase;

/** The shapes the models run: ResNet-18's 3×3 and strided 1×1 convolutions, its first layer (3 input channels), LeNet's 5×5 ones and dense layers (and the transposed products of their gradients). */
const CASES: Case[] = [
  { kind: 'conv', n: 4, h: 8, w: 8, ci: 64, kh: 3, kw: 3, co: 64, stride: 1, pad: 1 },
  { kind: 'conv', n: 4, h: 8, w: 8, ci: 32, kh: 3, kw: 3, co: 64, stride: 2, pad: 1 },
  { kind: 'conv', n: 4, h: 8, w: 8, ci: 32, kh: 1, kw: 1, co: 64, stride: 2, pad: 0 },
  { kind: 'conv', n: 4, h: 16, w: 16, ci: 3, kh: 3, kw: 3, co: 16, stride: 1, pad: 1 },
  { kind: 'conv', n: 4, h: 14, w: 14, ci: 6, kh: 5, kw: 5, co: 16, stride: 1, pad: 0 },
  { kind: 'matmul', m: 32, k: 400, n: 120, ta: 0, tb: 0 },
  { kind: 'matmul', m: 32, k: 120, n: 84, ta: 0, tb: 1 },
  { kind: 'matmul', m: 400, k: 32, n: 120, ta: 1, tb: 0 },
];

function convOut(c: ConvCase): [number, number] {
  return [
    Math.floor((c.h + 2 * c.pad - c.kh) / c.stride) + 1,
    Math.floor((c.w + 2 * c.pad - c.kw) / c.stride) + 1,
  ];
}

/** The addon's conv geometry (N H W Ci kh kw Co Ho Wo sh sw dh dw pt pl pb pr). */
function convParams(c: ConvCase): Int32Array {
  const [ho, wo] = convOut(c);
  const s = c.stride;
  return Int32Array.from(
    [c.n, c.h, c.w, c.ci, c.kh, c.kw, c.co, ho, wo, s, s, 1, 1].concat([
      c.pad,
      c.pad,
      c.pad,
      c.pad,
    ]),
  );
}

/** Inputs of a case, as the addon takes them. */
function inputs(c: Case, i: number): Record<string, Float32Array> {
  if (c.kind === 'matmul') return { a: random(c.m * c.k, 100 + i), b: random(c.k * c.n, 200 + i) };
  const [ho, wo] = convOut(c);
  return {
    x: random(c.n * c.h * c.w * c.ci, 300 + i),
    w: random(c.kh * c.kw * c.ci * c.co, 400 + i),
    dy: random(c.n * ho * wo * c.co, 500 + i),
  };
}

/** Runs a case's kernels in the addon's current precision: the outputs, and each one's implementation and reduction length. */
function runNative(
  addon: NativeAddon,
  c: Case,
  ins: Record<string, Float32Array>,
): Record<string, { v: Float32Array; impl: string; k: number }> {
  if (c.kind === 'matmul') {
    const p = Int32Array.from([1, 1, c.m, c.k, c.n, c.ta, c.tb]);
    const v = new Float32Array(c.m * c.n);
    addon.matMul(ins.a, ins.b, null, v, p, false);
    return { c: { v, impl: addon.matMulImpl(p), k: c.k } };
  }
  const p = convParams(c);
  const [ho, wo] = convOut(c);
  const y = new Float32Array(c.n * ho * wo * c.co);
  const dx = new Float32Array(ins.x.length);
  const dw = new Float32Array(ins.w.length);
  addon.conv2d(ins.x, ins.w, null, y, p, false);
  addon.conv2dBackpropInput(ins.dy, ins.w, dx, p);
  addon.conv2dBackpropFilter(ins.x, ins.dy, dw, p);
  return {
    y: { v: y, impl: addon.convImpl(p, 0), k: c.kh * c.kw * c.ci },
    dx: { v: dx, impl: addon.convImpl(p, 1), k: c.kh * c.kw * c.co },
    dw: { v: dw, impl: addon.convImpl(p, 2), k: c.n * ho * wo },
  };
}

function bytes(a: Float32Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

async function f32(file: string): Promise<Float32Array> {
  const b = await readFile(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

interface Reference {
  torch: Float32Array;
  round: Float32Array;
  exact: Float32Array;
  abs: Float32Array;
}

/** Every case's references from test/torch_bf16.py. */
async function references(all: Record<string, Float32Array>[]): Promise<Map<string, Reference>> {
  const dir = await newDir();
  await writeFile(path.join(dir, 'cases.json'), JSON.stringify(CASES));
  for (const [i, ins] of all.entries())
    for (const [name, v] of Object.entries(ins))
      await writeFile(path.join(dir, `${i}.${name}.f32`), bytes(v));
  const r = spawnSync(PYTHON, [SCRIPT, dir], { encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `torch_bf16.py failed:\n${r.stderr}`);
  const info = JSON.parse(await readFile(path.join(dir, 'out.json'), 'utf8')) as {
    torchDtype: string;
  }[];
  // PyTorch really ran in bf16 (its autocast output is bf16).
  for (const x of info) assert.equal(x.torchDtype, 'torch.bfloat16');
  const out = new Map<string, Reference>();
  for (const [i, c] of CASES.entries())
    for (const o of c.kind === 'matmul' ? ['c'] : ['y', 'dx', 'dw']) {
      const read = (kind: string) => f32(path.join(dir, `${i}.${o}.${kind}.f32`));
      out.set(`${i}.${o}`, {
        torch: await read('torch'),
        round: await read('round'),
        exact: await read('exact'),
        abs: await read('abs'),
      });
    }
  return out;
}

/** The largest ratio |a − b| / bound over the elements (≤ 1: within the bound everywhere). */
function worst(a: Float32Array, b: Float32Array, bound: (i: number) => number): number {
  assert.equal(a.length, b.length);
  let w = 0;
  for (let i = 0; i < a.length; i++) w = Math.max(w, Math.abs(a[i] - b[i]) / (bound(i) + 1e-30));
  return w;
}

/** Values rounded to bf16 (to nearest, ties to even), as float32. */
function toBf16(v: Float32Array): Float32Array {
  const out = Float32Array.from(v);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < bits.length; i++)
    bits[i] = ((bits[i] + 0x7fff + ((bits[i] >>> 16) & 1)) & 0xffff0000) >>> 0;
  return out;
}

/** max |a − b| / max |b|. */
function rel(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / s;
}

const noTorch = (() => {
  const r = spawnSync(PYTHON, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
  return r.status === 0 ? false : `${PYTHON} lacks torch or numpy`;
})();
const addon = noNative() ? null : loadNative();
const noBf16 = addon && !addon.info().bf16 ? 'this CPU runs no native bf16' : false;

test(
  'bf16 convolutions and matrix products: within the bf16 bounds of PyTorch autocast and of the exact results, and bf16 really ran',
  { skip: noNative() || noTorch || noBf16 },
  async (t) => {
    const a = addon as NativeAddon;
    const all = CASES.map((c, i) => inputs(c, i));
    const refs = await references(all);
    const before = a.precision();
    try {
      for (const [i, c] of CASES.entries()) {
        a.precision('fp32');
        const fp32 = runNative(a, c, all[i]);
        a.precision('bf16');
        const bf16 = runNative(a, c, all[i]);
        for (const [o, out] of Object.entries(bf16)) {
          const what = `case ${i} (${JSON.stringify(c)}) ${o}`;
          const r = refs.get(`${i}.${o}`) as Reference;
          const gamma = out.k * 2 ** -24;
          // oneDNN ran a bf16 kernel (not its reference code), and fp32 a fp32 one.
          assert.match(out.impl, /bf16.* bf16$/, `${what}: implementation ${out.impl}`);
          assert.doesNotMatch(out.impl, /^ref/, `${what}: implementation ${out.impl}`);
          assert.match(fp32[o].impl, / f32$/, `${what}: fp32 implementation ${fp32[o].impl}`);
          // The filter gradient leaves the kernel rounded to bf16 (≤ u of itself more).
          const out16 = o === 'dw' ? U : 0;
          const toRound = worst(
            out.v,
            r.round,
            (j) => gamma * r.abs[j] + out16 * Math.abs(r.round[j]),
          );
          const toExact = worst(
            out.v,
            r.exact,
            (j) => (2 * U + gamma) * r.abs[j] + out16 * Math.abs(r.exact[j]),
          );
          const toTorch = worst(
            out.v,
            r.torch,
            (j) => U * Math.abs(r.torch[j]) + 2 * gamma * r.abs[j],
          );
          t.diagnostic(
            `${what}: ${out.impl}; worst/bound: round ${toRound.toFixed(3)}, exact ` +
              `${toExact.toFixed(3)}, torch ${toTorch.toFixed(3)}; rel. to exact bf16 ` +
              `${rel(out.v, r.exact).toExponential(1)}, fp32 ${rel(fp32[o].v, r.exact).toExponential(1)}`,
          );
          assert.ok(toRound <= 1, `${what}: |bf16 − exact on rounded inputs| is ${toRound}× γ_K·S`);
          assert.ok(toExact <= 1, `${what}: |bf16 − exact| is ${toExact}× (2^-7 + γ_K)·S`);
          assert.ok(toTorch <= 1, `${what}: |bf16 − PyTorch autocast| is ${toTorch}× its bound`);
          // The values say which arithmetic ran: bf16 sits on the rounded inputs' result, fp32 on
          // the unrounded ones'.
          // (the filter gradient, written in bf16, against the rounded inputs' result in bf16)
          const bfRound = rel(out.v, o === 'dw' ? toBf16(r.round) : r.round);
          const bfExact = rel(out.v, r.exact);
          const fpRound = rel(fp32[o].v, r.round);
          const fpExact = rel(fp32[o].v, r.exact);
          assert.ok(
            bfRound * 10 < bfExact,
            `${what}: bf16 output is not bf16's (${bfRound} vs ${bfExact})`,
          );
          assert.ok(
            fpExact * 10 < fpRound,
            `${what}: fp32 output is not fp32's (${fpExact} vs ${fpRound})`,
          );
        }
      }
    } finally {
      a.precision(before);
    }
  },
);

test(
  'precision(): bf16 where the CPU has it, names its choices, refuses others',
  { skip: noNative() },
  () => {
    const a = addon as NativeAddon;
    const info = a.info();
    assert.equal(
      info.bf16,
      info.isaName === 'avx512_core_bf16' || info.isaName === 'avx512_core_amx',
    );
    assert.equal(a.precision(), 'fp32');
    assert.throws(() => a.precision('fp16' as 'fp32'), /'fp16' is not 'fp32' or 'bf16'/);
    if (info.bf16) {
      assert.equal(a.precision('bf16'), 'bf16');
      assert.equal(a.info().precision, 'bf16');
    } else assert.throws(() => a.precision('bf16'), /no native bf16/);
    assert.equal(a.precision('fp32'), 'fp32');
  },
);

// ---------------------------------------------------------------------------------------------
// Whole models: one training step's loss and gradients (every trainable weight) in bf16 against
// PyTorch's bf16 autocast (channels_last) and against float64, from the same weights and batch
// (8 real CIFAR-10 images; test/torch_models.py, as test/model-torch.test.ts uses it).
//
// Tolerance. Each convolution or dense product rounds its two operands (≤ 2u = 2^-7 relative per
// product, u = 2^-8), in the forward pass and in both backward products, and the filter gradient
// is rounded to bf16 once more, as in PyTorch's autocast. How far a whole gradient tensor moves
// then depends on cancellation: a first layer's filter gradient sums terms of both signs over
// every position of the batch, so its error measured against its largest element can reach tens
// of per cent for PyTorch's bf16 as for ours (measured below), and no bound of the form
// depth × 2^-7 holds for it. What is required: per tensor, max |g − g64| / max |g64| of native
// bf16 is at most twice PyTorch autocast's own error on that tensor plus 2^-7 (as accurate as
// PyTorch's bf16, up to how two orders of rounding differ); the loss within 2^-7 of float64
// (forward only: a few roundings of 2^-7 each, averaged by the mean over the batch). Proof that
// bf16 ran: summed over the tensors, the gradients' error against float64 is more than 10× that
// of the same step in fp32, and the addon's profile shows its conv kernels ran.

const BATCH = 8;

interface Grads {
  loss: number;
  grads: Float32Array[];
}

async function nativeStep(
  name: ModelName,
  precision: 'fp32' | 'bf16',
  x: Float32Array,
  labels: number[],
  weights: Float32Array[],
  manifest: { name: string; shape: number[] }[],
  trainable: string[],
): Promise<Grads> {
  assert.equal(await initEngine('native'), 'native');
  usePrecision(precision);
  try {
    const m = buildModel(name, { height: 32, width: 32, channels: 3 }, 10, { seed: 5 });
    if (weights.length > 0)
      tf.tidy(() =>
        m.setWeights(m.weights.map((w, i) => tf.tensor(weights[i], w.shape as number[]))),
      );
    else
      for (const w of m.weights) {
        weights.push(Float32Array.from(w.read().dataSync()));
        manifest.push({ name: w.originalName, shape: w.shape as number[] });
      }
    trainable.length = 0;
    trainable.push(...m.trainableWeights.map((w) => w.originalName));
    const vars = m.trainableWeights.map((w) => w.read() as tf.Variable);
    const out = tf.tidy(() => {
      const xt = tf.tensor4d(x, [BATCH, 32, 32, 3]);
      const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 10);
      const { value, grads } = tf.variableGrads(
        () =>
          tf.neg(
            tf.mean(
              tf.sum(tf.mul(y, tf.logSoftmax(m.apply(xt, { training: true }) as tf.Tensor)), -1),
            ),
          ) as tf.Scalar,
        vars,
      );
      return {
        loss: value.dataSync()[0],
        grads: vars.map((v) => Float32Array.from(grads[v.name].dataSync())),
      };
    });
    m.dispose();
    return out;
  } finally {
    usePrecision('fp32');
  }
}

async function torchGrads(
  name: ModelName,
  x: Float32Array,
  labels: number[],
  weights: Float32Array[],
  manifest: { name: string; shape: number[] }[],
  trainable: string[],
): Promise<{ exact: Grads; bf: Grads }> {
  const dir = await newDir();
  await writeFile(path.join(dir, 'weights.f32'), Buffer.concat(weights.map(bytes)));
  await writeFile(path.join(dir, 'x.f32'), bytes(x));
  const spec = {
    model: name,
    classes: 10,
    input: [BATCH, 32, 32, 3],
    labels,
    weights: manifest,
    trainable,
    lr: 0.1,
    momentum: 0.9,
    weight_decay: 5e-4,
    autocast: true,
  };
  await writeFile(path.join(dir, 'manifest.json'), JSON.stringify(spec));
  const r = spawnSync(PYTHON, [path.resolve('test/torch_models.py'), dir], {
    encoding: 'utf8',
    timeout: 300_000,
  });
  assert.equal(r.status, 0, `torch_models.py failed:\n${r.stderr}`);
  const out = JSON.parse(await readFile(path.join(dir, 'out.json'), 'utf8')) as Record<
    string,
    number
  >;
  const sizes = trainable.map((t) =>
    (manifest.find((w) => w.name === t) as { shape: number[] }).shape.reduce((p, q) => p * q, 1),
  );
  const split = (all: Float32Array) => {
    let off = 0;
    return sizes.map((n) => all.slice(off, (off += n)));
  };
  return {
    exact: { loss: out.loss64, grads: split(await f32(path.join(dir, 'grads64.f32'))) },
    bf: { loss: out.lossbf, grads: split(await f32(path.join(dir, 'gradsbf.f32'))) },
  };
}

// (smallcnn is left out: its step costs a minute of PyTorch float64 here and adds no new kernel)
for (const name of ['lenet5', 'resnet18'] as const)
  test(
    `${name}: a bf16 training step's loss and gradients are within bf16's bounds of float64 and as accurate as PyTorch's bf16 autocast`,
    { skip: noNative() || noTorch || noBf16 },
    async (t) => {
      const ds = cifarDataset(await cifarRecords('data_batch_1.bin', BATCH, 0), []);
      const x = Float32Array.from(ds.images, (v) => v / 255);
      const labels = Array.from(ds.labels);
      const weights: Float32Array[] = [];
      const manifest: { name: string; shape: number[] }[] = [];
      const trainable: string[] = [];
      const fp32 = await nativeStep(name, 'fp32', x, labels, weights, manifest, trainable);
      const bf16 = await usingNative(
        `${name} bf16`,
        ['FusedConv2D', 'Conv2DBackpropFilter', 'addon:conv2d', 'addon:conv2dBackpropFilter'],
        () => nativeStep(name, 'bf16', x, labels, weights, manifest, trainable),
      );
      const ref = await torchGrads(name, x, labels, weights, manifest, trainable);
      const lossErr = Math.abs(bf16.loss - ref.exact.loss) / Math.abs(ref.exact.loss);
      t.diagnostic(
        `loss: native bf16 ${bf16.loss}, torch autocast ${ref.bf.loss}, float64 ${ref.exact.loss} (rel. ${lossErr.toExponential(1)})`,
      );
      assert.ok(lossErr <= 2 * U, `loss off by ${lossErr}`);
      let worstNative = 0;
      let worstTorch = 0;
      let worstFp32 = 0;
      let sumBf16 = 0;
      let sumFp32 = 0;
      for (const [i, w] of trainable.entries()) {
        const e = rel(bf16.grads[i], ref.exact.grads[i]);
        const et = rel(ref.bf.grads[i], ref.exact.grads[i]);
        const e32 = rel(fp32.grads[i], ref.exact.grads[i]);
        worstNative = Math.max(worstNative, e);
        worstTorch = Math.max(worstTorch, et);
        worstFp32 = Math.max(worstFp32, e32);
        sumBf16 += e;
        sumFp32 += e32;
        t.diagnostic(
          `${w}: native bf16 ${e.toExponential(1)}, PyTorch autocast ${et.toExponential(1)}, native fp32 ${e32.toExponential(1)}`,
        );
        assert.ok(e <= 2 * et + 2 * U, `${w}: bf16 gradient off by ${e}, PyTorch autocast ${et}`);
      }
      t.diagnostic(
        `gradients, worst relative error against float64: native bf16 ${worstNative.toExponential(1)}, ` +
          `PyTorch autocast ${worstTorch.toExponential(1)}, native fp32 ${worstFp32.toExponential(1)}`,
      );
      assert.ok(
        sumBf16 > 10 * sumFp32,
        `bf16 did not change the arithmetic (${sumBf16} vs ${sumFp32})`,
      );
    },
  );

test(
  'precision flags: fp32 configs (and audit cells) keep their identity, bf16 is another cell, bf16 needs native',
  { skip: noNative() },
  async () => {
    // A cell trained before --precision existed (results/audit-t5-standard): its folder must
    // come out the same, so old audits resume.
    const old = 'clean__lenet5__standard__s0-8bdd336cfdc2';
    const saved = JSON.parse(
      await readFile(`results/audit-t5-standard/cells/${old}/cell.json`, 'utf8'),
    ) as CellIdentity;
    await initEngine('native');
    const id = (precision: 'fp32' | 'bf16' | 'auto'): CellIdentity => ({
      ...saved,
      config: jobConfig(
        { model: 'lenet5', strategy: 'standard', preset: 'quick', seed: 0, precision },
        'native',
      ),
    });
    assert.deepEqual(id('fp32'), saved);
    assert.equal(cellFolder(id('fp32')), old);
    assert.ok(!('precision' in id('fp32').config));
    if (addon?.info().bf16) {
      assert.equal(id('bf16').config.precision, 'bf16');
      assert.notEqual(cellFolder(id('bf16')), old);
      assert.deepEqual(id('auto'), id('bf16'));
    } else assert.deepEqual(id('auto'), saved);
    assert.throws(
      () => resolvePrecision('bf16', 'wasm'),
      /--precision bf16 needs the native backend/,
    );
    assert.equal(resolvePrecision('auto', 'wasm'), 'fp32');
  },
);
