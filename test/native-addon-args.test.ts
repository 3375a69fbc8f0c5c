// The addon checks every argument before it touches memory: the raw functions (no tfjs around
// them), called with too-short arrays, wrong array types, negative or zero sizes, strides and
// windows, inconsistent geometries and shapes that do not broadcast, throw a JavaScript TypeError
// or RangeError naming the function and the argument. The calls run in one child process, which
// reports each call before making it: a crash (an out-of-bounds access) fails the test, naming
// the call, instead of killing the test runner.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { ADDON_PATH } from '../src/nn/backends/native/addon.js';
import { noNative } from './native-helpers.js';

const skip = noNative();

interface Case {
  call: string;
  /** The error class and a pattern of its message; null: the call must succeed. */
  error: ['TypeError' | 'RangeError', RegExp] | null;
}

// f(n): a Float32Array of n values; i([...]): an Int32Array. Conv geometry (kernels.h):
// N H W Ci kh kw Co Ho Wo sh sw dh dw pt pl pb pr; this one: x 1×4×4×2 (32), w 3×3×2×3 (54),
// y 1×2×2×3 (12).
const CONV = 'i([1,4,4,2,3,3,3,2,2,1,1,1,1,0,0,0,0])';
const convWith = (k: number, v: number) => {
  const p = [1, 4, 4, 2, 3, 3, 3, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0];
  p[k] = v;
  return `i([${p}])`;
};
// Pool geometry: N H W C kh kw Ho Wo sh sw pt pl pb pr isMax; x 1×4×4×2 (32), y 1×2×2×2 (8).
const POOL = 'i([1,4,4,2,2,2,2,2,2,2,0,0,0,0,1])';
const R = 'RangeError';
const T = 'TypeError';

const CASES: Case[] = [
  // conv2d (x, w, bias, y, p, relu)
  { call: `A.conv2d(f(32), f(54), f(3), f(12), ${CONV}, true)`, error: null },
  {
    call: `A.conv2d(f(31), f(54), null, f(12), ${CONV}, false)`,
    error: [R, /^conv2d: x \(argument 1\) has 31 elements, expected 32$/],
  },
  {
    call: `A.conv2d(f(32), f(53), null, f(12), ${CONV}, false)`,
    error: [R, /^conv2d: w \(argument 2\) has 53/],
  },
  {
    call: `A.conv2d(f(32), f(54), f(2), f(12), ${CONV}, false)`,
    error: [R, /^conv2d: bias \(argument 3\) has 2/],
  },
  {
    call: `A.conv2d(f(32), f(54), null, f(11), ${CONV}, false)`,
    error: [R, /^conv2d: y \(argument 4\) has 11/],
  },
  {
    call: `A.conv2d(f(32), f(54), null, f(12), i([1,4,4,2]), false)`,
    error: [R, /^conv2d: p \(argument 5\) has 4 elements, expected 17$/],
  },
  {
    call: `A.conv2d(f(32), f(54), null, f(12), ${convWith(1, -4)}, false)`,
    error: [R, /^conv2d: p: H = -4 is outside/],
  },
  {
    call: `A.conv2d(f(32), f(54), null, f(12), ${convWith(4, 0)}, false)`,
    error: [R, /^conv2d: p: kh = 0 is outside/],
  },
  {
    call: `A.conv2d(f(32), f(54), null, f(12), ${convWith(9, 0)}, false)`,
    error: [R, /^conv2d: p: sh = 0 is outside/],
  },
  {
    call: `A.conv2d(f(32), f(54), null, f(12), ${convWith(13, -1)}, false)`,
    error: [R, /^conv2d: p: pt = -1 is outside/],
  },
  {
    call: `A.conv2d(f(32), f(54), null, f(12), ${convWith(7, 3)}, false)`,
    error: [R, /^conv2d: p: Ho = 3 does not follow .* \(2\)$/],
  },
  {
    call: `A.conv2d(f(32), f(54), null, f(12), ${convWith(0, 1 << 30)}, false)`,
    error: [R, /^conv2d: x \(argument 1\) has 32 elements, expected 34359738368$/],
  },
  {
    call: `A.conv2d(new Float64Array(32), f(54), null, f(12), ${CONV}, false)`,
    error: [T, /^conv2d: x \(argument 1\) must be a Float32Array$/],
  },
  {
    call: `A.conv2d(f(32), f(54), null, f(12), [1,4,4,2,3,3,3,2,2,1,1,1,1,0,0,0,0], false)`,
    error: [T, /^conv2d: p \(argument 5\) must be an Int32Array$/],
  },
  { call: 'A.conv2d()', error: [T, /^conv2d: p \(argument 5\) must be an Int32Array$/] },
  {
    call: `A.conv2d(f(32), f(54), null, f(12), ${CONV}, 1)`,
    error: [T, /^conv2d: relu \(argument 6\) must be a boolean$/],
  },
  // the gradients (dy, w, dx, p) and (x, dy, dw, p), and convImpl (p, which)
  { call: `A.conv2dBackpropInput(f(12), f(54), f(32), ${CONV})`, error: null },
  {
    call: `A.conv2dBackpropInput(f(11), f(54), f(32), ${CONV})`,
    error: [R, /^conv2dBackpropInput: dy \(argument 1\) has 11/],
  },
  {
    call: `A.conv2dBackpropInput(f(12), f(54), f(31), ${CONV})`,
    error: [R, /^conv2dBackpropInput: dx \(argument 3\) has 31/],
  },
  { call: `A.conv2dBackpropFilter(f(32), f(12), f(54), ${CONV})`, error: null },
  {
    call: `A.conv2dBackpropFilter(f(32), f(12), f(53), ${CONV})`,
    error: [R, /^conv2dBackpropFilter: dw \(argument 3\) has 53/],
  },
  {
    call: `A.conv2dBackpropFilter(f(32), f(12), f(54), ${convWith(8, 5)})`,
    error: [R, /^conv2dBackpropFilter: p: Wo = 5 does not follow/],
  },
  {
    call: `A.convImpl(${CONV}, 3)`,
    error: [R, /^convImpl: which \(argument 2\) must be an integer in \[0, 2\], got 3$/],
  },
  // matMul (a, b, bias, c, p: batchA batchB M K N transA transB, relu)
  { call: 'A.matMul(f(6), f(12), f(4), f(8), i([1,1,2,3,4,0,0]), false)', error: null },
  {
    call: 'A.matMul(f(5), f(12), null, f(8), i([1,1,2,3,4,0,0]), false)',
    error: [R, /^matMul: a \(argument 1\) has 5 elements, expected 6$/],
  },
  {
    call: 'A.matMul(f(6), f(12), null, f(7), i([1,1,2,3,4,0,0]), false)',
    error: [R, /^matMul: c \(argument 4\) has 7/],
  },
  {
    call: 'A.matMul(f(6), f(12), f(3), f(8), i([1,1,2,3,4,0,0]), false)',
    error: [R, /^matMul: bias \(argument 3\) has 3/],
  },
  {
    call: 'A.matMul(f(12), f(36), null, f(24), i([2,3,2,3,4,0,0]), false)',
    error: [R, /^matMul: p: batchA = 2 and batchB = 3 do not broadcast$/],
  },
  {
    call: 'A.matMul(f(6), f(12), null, f(8), i([1,1,2,0,4,0,0]), false)',
    error: [R, /^matMul: p: K = 0 is outside/],
  },
  {
    call: 'A.matMul(f(6), f(12), null, f(8), i([1,1,-2,3,4,0,0]), false)',
    error: [R, /^matMul: p: M = -2 is outside/],
  },
  {
    call: 'A.matMul(f(6), f(12), null, f(8), i([1,1,2,3,4,2,0]), false)',
    error: [R, /^matMul: p: transA = 2 is outside/],
  },
  // pool (x, y, p) and poolGrad (dy, x, dx, p)
  { call: `A.pool(f(32), f(8), ${POOL})`, error: null },
  { call: `A.pool(f(32), f(7), ${POOL})`, error: [R, /^pool: y \(argument 2\) has 7/] },
  {
    call: `A.pool(f(32), f(8), i([1,4,4,2,2,2,2,2,2,2,2,0,0,0,1]))`,
    error: [R, /^pool: p: pads must be smaller than the window$/],
  },
  {
    call: `A.pool(f(32), f(8), i([1,4,4,2,2,2,3,2,2,2,0,0,0,0,1]))`,
    error: [R, /^pool: p: Ho = 3 does not follow/],
  },
  {
    call: `A.pool(f(32), f(8), i([1,4,4,2,2,2,2,2,2,2,0,0,0,0,2]))`,
    error: [R, /^pool: p: isMax = 2 is outside/],
  },
  {
    call: `A.poolGrad(f(8), f(32), f(31), ${POOL})`,
    error: [R, /^poolGrad: dx \(argument 3\) has 31/],
  },
  {
    call: `A.poolGrad(f(7), f(32), f(32), ${POOL})`,
    error: [R, /^poolGrad: dy \(argument 1\) has 7/],
  },
  // batchNorm (x, scale, shift, mean, var, y, rows, c, eps, training, relu)
  {
    call: 'A.batchNorm(f(12), f(3), f(3), f(3), f(3), f(12), 4, 3, 1e-5, true, false)',
    error: null,
  },
  {
    call: 'A.batchNorm(f(12), f(2), f(3), f(3), f(3), f(12), 4, 3, 1e-5, true, false)',
    error: [R, /^batchNorm: scale \(argument 2\) has 2/],
  },
  {
    call: 'A.batchNorm(f(12), f(3), f(3), f(3), f(3), f(11), 4, 3, 1e-5, true, false)',
    error: [R, /^batchNorm: y \(argument 6\) has 11/],
  },
  {
    call: 'A.batchNorm(f(12), f(3), f(3), f(3), f(3), f(12), 5, 3, 1e-5, false, false)',
    error: [R, /^batchNorm: x \(argument 1\) has 12 elements, expected 15$/],
  },
  {
    call: 'A.batchNorm(f(12), f(3), f(3), f(3), f(3), f(12), -4, 3, 1e-5, false, false)',
    error: [R, /^batchNorm: rows \(argument 7\) must be an integer/],
  },
  {
    call: 'A.batchNorm(f(0), f(0), f(0), f(0), f(0), f(0), 4, 0, 1e-5, false, false)',
    error: [R, /^batchNorm: channels \(argument 8\) must be an integer/],
  },
  {
    call: 'A.batchNorm(f(12), f(3), f(3), f(3), f(3), f(12), 4, 3, NaN, true, false)',
    error: [R, /^batchNorm: epsilon \(argument 9\) must be finite$/],
  },
  {
    call: 'A.batchNorm(f(12), f(3), f(3), f(3), f(3), f(12), 4.5, 3, 1e-5, true, false)',
    error: [R, /^batchNorm: rows \(argument 7\) must be an integer .*, got 4.5$/],
  },
  // batchNormGrad (x, dy, y, scale, mean, var, dx, dscale, dshift, rows, c, eps)
  {
    call: 'A.batchNormGrad(f(12), f(12), null, f(3), f(3), f(3), f(12), f(3), f(3), 4, 3, 1e-5)',
    error: null,
  },
  {
    call: 'A.batchNormGrad(f(12), f(12), f(11), f(3), f(3), f(3), f(12), f(3), f(3), 4, 3, 1e-5)',
    error: [R, /^batchNormGrad: y \(argument 3\) has 11/],
  },
  {
    call: 'A.batchNormGrad(f(12), f(12), null, f(3), f(3), f(3), f(12), f(2), f(3), 4, 3, 1e-5)',
    error: [R, /^batchNormGrad: dscale \(argument 8\) has 2/],
  },
  {
    call: 'A.batchNormGrad(f(12), f(12), null, f(3), f(3), f(3), f(12), f(3), f(3), 0, 3, 1e-5)',
    error: [R, /^batchNormGrad: rows \(argument 10\)/],
  },
  // binary (op, a, aShape, b, bShape, out, outShape)
  { call: 'A.binary(0, f(6), i([2,3]), f(2), i([2,1]), f(6), i([2,3]))', error: null },
  {
    call: 'A.binary(0, f(6), i([2,3]), f(2), i([1,2]), f(6), i([2,3]))',
    error: [
      R,
      /^binary: axis 1 of aShape \(3\) or bShape \(2\) does not broadcast to outShape's \(3\)$/,
    ],
  },
  {
    call: 'A.binary(0, f(6), i([2,3]), f(2), i([2]), f(6), i([2,3]))',
    error: [R, /^binary: bShape \(argument 5\) has 1 elements, expected 2$/],
  },
  {
    call: 'A.binary(0, f(5), i([2,3]), f(2), i([2,1]), f(6), i([2,3]))',
    error: [R, /^binary: a \(argument 2\) has 5/],
  },
  {
    call: 'A.binary(0, f(6), i([2,3]), f(2), i([2,1]), f(5), i([2,3]))',
    error: [R, /^binary: out \(argument 6\) has 5/],
  },
  {
    call: 'A.binary(0, f(6), i([2,-3]), f(2), i([2,1]), f(6), i([2,-3]))',
    error: [R, /^binary: outShape: a size = -3 is outside/],
  },
  {
    call: 'A.binary(9, f(6), i([2,3]), f(2), i([2,1]), f(6), i([2,3]))',
    error: [R, /^binary: op \(argument 1\) must be an integer in \[0, 6\], got 9$/],
  },
  {
    call: 'A.binary(0, f(1), i([]), f(1), i([]), f(1), i([]))',
    error: [R, /^binary: outShape \(argument 7\) must have at least one axis$/],
  },
  // unary (op, x, y, alpha), softmax (x, y, rows, cols, log), addN (xs, y)
  { call: 'A.unary(0, f(10), f(10), 0)', error: null },
  {
    call: 'A.unary(0, f(10), f(9), 0)',
    error: [R, /^unary: y \(argument 3\) has 9 elements, expected 10$/],
  },
  { call: 'A.unary(7, f(10), f(10), 0)', error: [R, /^unary: op \(argument 1\)/] },
  { call: 'A.softmax(f(12), f(12), 3, 4, false)', error: null },
  {
    call: 'A.softmax(f(12), f(12), 4, 4, false)',
    error: [R, /^softmax: x \(argument 1\) has 12 elements, expected 16$/],
  },
  { call: 'A.softmax(f(0), f(0), 3, 0, false)', error: [R, /^softmax: cols \(argument 4\)/] },
  { call: 'A.addN([f(5), f(5)], f(5))', error: null },
  { call: 'A.addN([f(5), f(4)], f(5))', error: [R, /^addN: xs\[1\] has 4 elements, y has 5$/] },
  { call: 'A.addN([], f(5))', error: [R, /^addN: xs \(argument 1\) must not be empty$/] },
  {
    call: 'A.addN([f(5), new Int32Array(5)], f(5))',
    error: [T, /^addN: xs\[1\] must be a Float32Array$/],
  },
  { call: 'A.addN(f(5), f(5))', error: [T, /^addN: xs \(argument 1\) must be an array$/] },
  // reduce (op, x, y, outer, mid, inner)
  { call: 'A.reduce(2, f(24), f(8), 2, 3, 4)', error: null },
  {
    call: 'A.reduce(2, f(0), f(8), 2, 0, 4)',
    error: [R, /^reduce: mid \(argument 5\) must be an integer in \[1,/],
  },
  { call: 'A.reduce(0, f(23), f(8), 2, 3, 4)', error: [R, /^reduce: x \(argument 2\) has 23/] },
  { call: 'A.reduce(0, f(24), f(6), 2, 3, 4)', error: [R, /^reduce: y \(argument 3\) has 6/] },
  // sgd (w, g, buf, lr, momentum, weightDecay, dampening, nesterov, first)
  { call: 'A.sgd(f(5), f(5), f(5), 0.1, 0.9, 5e-4, 0, false, true)', error: null },
  { call: 'A.sgd(f(5), f(5), f(0), 0.1, 0, 5e-4, 0, false, true)', error: null },
  {
    call: 'A.sgd(f(5), f(4), f(5), 0.1, 0.9, 5e-4, 0, false, true)',
    error: [R, /^sgd: g \(argument 2\) has 4/],
  },
  {
    call: 'A.sgd(f(5), f(5), f(0), 0.1, 0.9, 5e-4, 0, false, false)',
    error: [R, /^sgd: buf \(argument 3\) has 0 elements, expected 5$/],
  },
  {
    call: 'A.sgd(f(5), f(5), f(5), Infinity, 0.9, 5e-4, 0, false, false)',
    error: [R, /^sgd: lr \(argument 4\) must be finite$/],
  },
  // pad (x, xShape, y, pads, value), slice (x, xShape, y, begin, size), reluGrad (dy, x, dx)
  { call: 'A.pad(f(6), i([2,3]), f(20), i([1,0,1,2]), 0)', error: null },
  {
    call: 'A.pad(f(6), i([2,3]), f(19), i([1,0,1,2]), 0)',
    error: [R, /^pad: y \(argument 3\) has 19 elements, expected 20$/],
  },
  {
    call: 'A.pad(f(6), i([2,3]), f(20), i([1,0,1]), 0)',
    error: [R, /^pad: pads \(argument 4\) has 3 elements, expected 4$/],
  },
  {
    call: 'A.pad(f(6), i([2,3]), f(6), i([1,0,-1,0]), 0)',
    error: [R, /^pad: pads: a pad = -1 is outside/],
  },
  {
    call: 'A.pad(f(1), new Int32Array(17).fill(1), f(1), new Int32Array(34), 0)',
    error: [R, /^pad: xShape \(argument 2\) must have 1 to 16 axes$/],
  },
  { call: 'A.slice(f(12), i([3,4]), f(4), i([1,1]), i([2,2]))', error: null },
  {
    call: 'A.slice(f(12), i([3,4]), f(6), i([2,1]), i([2,3]))',
    error: [R, /^slice: size: a size = 2 is outside \[0, 1\]$/],
  },
  {
    call: 'A.slice(f(12), i([3,4]), f(4), i([1,-1]), i([2,2]))',
    error: [R, /^slice: begin: a start = -1 is outside/],
  },
  {
    call: 'A.slice(f(12), i([3,4]), f(3), i([1,1]), i([2,2]))',
    error: [R, /^slice: y \(argument 3\) has 3 elements, expected 4$/],
  },
  {
    call: 'A.slice(f(11), i([3,4]), f(4), i([1,1]), i([2,2]))',
    error: [R, /^slice: x \(argument 1\) has 11/],
  },
  { call: 'A.reluGrad(f(8), f(8), f(8))', error: null },
  { call: 'A.reluGrad(f(8), f(7), f(8))', error: [R, /^reluGrad: x \(argument 2\) has 7/] },
  {
    call: 'A.threads(0)',
    error: [R, /^threads: n \(argument 1\) must be an integer in \[1, 4096\], got 0$/],
  },
];

// The child: loads the addon, prints `start k` before call k and its outcome after, as JSON.
const CHILD = String.raw`
const A = require(process.argv[1]);
const cases = JSON.parse(process.argv[2]);
const f = (n) => new Float32Array(n).fill(0.5);
const i = (a) => Int32Array.from(a);
cases.forEach((code, k) => {
  console.log('start ' + k);
  let r;
  try {
    const out = new Function('A', 'f', 'i', 'return ' + code)(A, f, i);
    r = { ok: true, out: out === undefined ? null : String(out) };
  } catch (e) {
    r = { ok: false, name: e.constructor.name, message: e.message };
  }
  console.log(JSON.stringify(r));
});
// After every bad call, the addon still computes: ReLU of [-1, 2, -3, 4].
const y = new Float32Array(4);
A.unary(0, Float32Array.from([-1, 2, -3, 4]), y, 0);
console.log('relu ' + Array.from(y).join(','));
`;

test(
  'every addon function refuses bad arguments with a JS error, and crashes on none',
  { skip },
  () => {
    const r = spawnSync(
      process.execPath,
      ['-e', CHILD, ADDON_PATH, JSON.stringify(CASES.map((c) => c.call))],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const lines = r.stdout.trim().split('\n');
    const started = lines.filter((l) => l.startsWith('start ')).length;
    assert.ok(
      r.status === 0 && r.signal === null,
      `the child died (status ${r.status}, signal ${r.signal}) during: ${CASES[started - 1]?.call}\n${r.stderr}`,
    );
    const results = lines
      .filter((l) => l.startsWith('{'))
      .map(
        (l) =>
          JSON.parse(l) as {
            ok: boolean;
            name?: string;
            message?: string;
          },
      );
    assert.equal(results.length, CASES.length);
    CASES.forEach((c, k) => {
      const got = results[k];
      if (c.error === null) {
        assert.ok(got.ok, `${c.call} threw ${got.name}: ${got.message}`);
        return;
      }
      assert.ok(!got.ok, `${c.call} did not throw`);
      assert.equal(got.name, c.error[0], `${c.call}: ${got.message}`);
      assert.match(got.message ?? '', c.error[1], c.call);
    });
    assert.equal(lines[lines.length - 1], 'relu 0,2,0,4');
    // Every exported kernel is covered.
    const called = new Set(CASES.map((c) => /^A\.(\w+)\(/.exec(c.call)?.[1]));
    for (const fn of [
      'conv2d',
      'conv2dBackpropInput',
      'conv2dBackpropFilter',
      'convImpl',
      'matMul',
      'pool',
      'poolGrad',
      'batchNorm',
      'batchNormGrad',
      'binary',
      'unary',
      'softmax',
      'addN',
      'reduce',
      'sgd',
      'pad',
      'slice',
      'reluGrad',
      'threads',
    ])
      assert.ok(called.has(fn), `no case calls ${fn}`);
  },
);
