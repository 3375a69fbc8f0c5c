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
import { loadNative, type NativeAddon } from '../src/nn/backends/native/addon.js';
import { PYTHON, random, tempDirs } from './helpers.js';
import { noNative } from './native-helpers.js';

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
          const toRound = worst(out.v, r.round, (j) => gamma * r.abs[j]);
          const toExact = worst(out.v, r.exact, (j) => (2 * U + gamma) * r.abs[j]);
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
          const bfRound = rel(out.v, r.round);
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
