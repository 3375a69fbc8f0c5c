/**
 * L∞ PGD with random start on a small fixed linear softmax model: the result stays in the ε-ball
 * and in [0, 1], raises the loss over the clean input, is reproducible for a seed, takes the
 * sign-of-gradient step (an exact sign, also of gradients under 1e-7 and on every backend), and
 * leaks no tensors.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { PGD_DEFAULTS, pgd } from '../src/nn/pgd.js';
import { Rng } from '../src/nn/rng.js';
import { attackAt } from '../src/train/loop.js';
import { jobConfig } from '../src/train/job.js';
import { type BackendName, initEngine, nativeAvailable } from '../src/nn/engine.js';
import { usingNative } from './native-helpers.js';

before(async () => {
  await tf.setBackend('cpu');
});

const N = 6;
const H = 8;
const W = 8;
const C = 3;
const D = H * W * C;
const K = 5;

/** A fixed linear model (weights from a seeded Rng) and its mean cross-entropy on `labels`. */
function linearModel(seed: number) {
  const rng = new Rng(seed);
  const w = tf.tensor2d(
    Float32Array.from({ length: D * K }, () => 0.1 * rng.normal()),
    [D, K],
  );
  const b = tf.tensor1d(Float32Array.from({ length: K }, () => 0.1 * rng.normal()));
  const labels = tf.oneHot(
    tf.tensor1d(
      Int32Array.from({ length: N }, (_, i) => i % K),
      'int32',
    ),
    K,
  );
  const lossOf = (x: tf.Tensor4D): tf.Scalar =>
    tf.tidy(() => {
      const logits = tf.add(tf.matMul(tf.reshape(x, [x.shape[0], D]), w), b);
      return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
    });
  const dispose = () => [w, b, labels].forEach((t) => t.dispose());
  return { lossOf, dispose };
}

/** Images in [0, 1] with some pixels at exactly 0 and 1 (so the [0, 1] clipping matters). */
function images(seed: number): tf.Tensor4D {
  const rng = new Rng(seed);
  const v = Float32Array.from({ length: N * D }, () => {
    const u = rng.uniform();
    return u < 0.1 ? 0 : u > 0.9 ? 1 : Math.fround(rng.int(256) / 255);
  });
  return tf.tensor4d(v, [N, H, W, C]);
}

describe('pgd', () => {
  it('stays in the ε-ball and [0, 1], and raises the loss', () => {
    const model = linearModel(1);
    const x = images(2);
    const start = tf.memory().numTensors;
    const adv = pgd(model.lossOf, x, { ...PGD_DEFAULTS, rng: new Rng(3) });
    assert.equal(tf.memory().numTensors, start + 1, 'only the result is left');
    assert.deepEqual(adv.shape, x.shape);
    const a = adv.dataSync();
    const c = x.dataSync();
    const eps = 8 / 255;
    let atBound = 0;
    for (let i = 0; i < a.length; i++) {
      assert.ok(a[i] >= 0 && a[i] <= 1, `adv[${i}] = ${a[i]} outside [0, 1]`);
      assert.ok(Math.abs(a[i] - c[i]) <= eps + 1e-6, `adv[${i}] moved ${a[i] - c[i]} > ε`);
      if (Math.abs(Math.abs(a[i] - c[i]) - eps) < 1e-6) atBound++;
    }
    // a linear model's loss is maximised at the corners of the box: most pixels end at ±ε
    assert.ok(atBound > 0.5 * a.length, `${atBound} of ${a.length} at the ε bound`);
    const clean = model.lossOf(x);
    const attacked = model.lossOf(adv);
    const noisy = tf.tidy(() =>
      model.lossOf(pgd(model.lossOf, x, { ...PGD_DEFAULTS, steps: 0, rng: new Rng(3) })),
    );
    const [l0, l1, ln] = [clean.dataSync()[0], attacked.dataSync()[0], noisy.dataSync()[0]];
    assert.ok(l1 > l0 + 0.1, `loss ${l0} → ${l1}`);
    assert.ok(l1 > ln, `PGD steps beat the random start alone (${ln} → ${l1})`);
    [adv, x, clean, attacked, noisy].forEach((t) => t.dispose());
    model.dispose();
  });

  it('is reproducible for a seed; another seed starts elsewhere', () => {
    const model = linearModel(4);
    const x = images(5);
    const run = (seed: number, steps: number) => {
      const adv = pgd(model.lossOf, x, {
        epsilon: 8 / 255,
        step: 2 / 255,
        steps,
        rng: new Rng(seed),
      });
      const out = Array.from(adv.dataSync());
      adv.dispose();
      return out;
    };
    assert.deepEqual(run(7, 3), run(7, 3));
    assert.notDeepEqual(run(7, 0), run(8, 0));
    x.dispose();
    model.dispose();
  });

  it('one step without random start is clip(x + step·sign(∇x loss))', () => {
    const model = linearModel(6);
    const x = images(7);
    const step = 2 / 255;
    const adv = pgd(model.lossOf, x, {
      epsilon: 8 / 255,
      step,
      steps: 1,
      rng: new Rng(0),
      randomStart: false,
    });
    const expected = tf.tidy(() => {
      const g = tf.grad((t: tf.Tensor) => model.lossOf(t as tf.Tensor4D))(x);
      return tf.clipByValue(tf.add(x, tf.mul(tf.sign(g), step)), 0, 1);
    });
    const a = adv.dataSync();
    const e = expected.dataSync();
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - e[i]) < 1e-7, `[${i}]`);
    // with no steps and no random start, x itself
    const same = pgd(model.lossOf, x, { steps: 0, rng: new Rng(0), randomStart: false });
    assert.deepEqual(same.dataSync(), x.dataSync());
    [adv, expected, same, x].forEach((t) => t.dispose());
    model.dispose();
  });

  it('moves every pixel whose gradient is not 0, however small, on every backend', async () => {
    // tfjs-backend-wasm's tf.sign gives 0 for |g| < 1e-7; a batch-mean loss's input gradients
    // are that small (LeNet-5 at init, CIFAR-10 batch of 64: 4.8 % of them), and PGD on wasm left
    // those pixels unmoved. The loss Σ w·x has the gradient w exactly; the sign is by hand.
    const w = [1e-12, -1e-12, 1e-9, -1e-9, 5e-8, -5e-8, 1e-7, -1e-7, 2e-7, -2e-7, 0, 3];
    const expected = w.map((v) => 0.5 + 0.01 * (v > 0 ? 1 : v < 0 ? -1 : 0));
    const backends: BackendName[] = [
      'wasm',
      'cpu',
      ...(nativeAvailable() ? ['native' as const] : []),
    ];
    try {
      for (const name of backends) {
        assert.equal(await initEngine(name), name);
        // on native, the sign's kernels run in the addon (not tfjs-backend-cpu's fallback loops)
        const run = <T>(body: () => T) =>
          name === 'native' ? usingNative('exactSign', ['Step', 'Neg', 'Sub'], body) : body();
        const adv = await run(() =>
          tf.tidy(() => {
            const weights = tf.tensor4d(w, [1, 2, 2, 3]);
            const x = tf.fill([1, 2, 2, 3], 0.5) as tf.Tensor4D;
            return pgd((t) => tf.sum(tf.mul(t, weights)), x, {
              epsilon: 0.1,
              step: 0.01,
              steps: 1,
              rng: new Rng(0),
              randomStart: false,
            });
          }),
        );
        const got = Array.from(await adv.data());
        adv.dispose();
        got.forEach((v, i) =>
          assert.ok(Math.abs(v - expected[i]) < 1e-7, `${name}: w ${w[i]} moved x to ${v}`),
        );
      }
    } finally {
      await initEngine('cpu');
    }
  });

  it('refuses bad settings', () => {
    const x = tf.zeros([1, 2, 2, 1]) as tf.Tensor4D;
    const lossOf = (t: tf.Tensor4D) => tf.sum(t) as tf.Scalar;
    assert.throws(() => pgd(lossOf, x, { epsilon: -1, rng: new Rng(0) }), /epsilon/);
    assert.throws(() => pgd(lossOf, x, { steps: 1.5, rng: new Rng(0) }), /steps/);
    assert.throws(() => pgd(lossOf, x, { steps: -1, rng: new Rng(0) }), /pgd: steps -1 must be/);
    assert.throws(() => pgd(lossOf, x, { step: -1, rng: new Rng(0) }), /pgd: step -1 must be ≥ 0/);
    assert.throws(() => pgd(lossOf, x, { step: NaN, rng: new Rng(0) }), /pgd: step NaN/);
    assert.throws(
      () => pgd(lossOf, x, { noise: -1, rng: new Rng(0) }),
      /pgd: noise -1 must be ≥ 0/,
    );
    assert.throws(() => pgd(lossOf, x, { epsilon: NaN, rng: new Rng(0) }), /pgd: epsilon NaN/);
    x.dispose();
  });

  it('accepts 0 for ε, step and noise: the attack then leaves x where it is', () => {
    // loss = Σ x: its gradient is 1 everywhere, so any non-zero step would move every pixel.
    const lossOf = (t: tf.Tensor4D) => tf.sum(t) as tf.Scalar;
    const x = tf.tensor4d([0.25, 0.5, 0.75, 1], [1, 2, 2, 1]);
    for (const o of [{ epsilon: 0 }, { step: 0, randomStart: false }, { noise: 0, steps: 0 }]) {
      const adv = pgd(lossOf, x, { ...o, rng: new Rng(1) });
      assert.deepEqual(Array.from(adv.dataSync()), [0.25, 0.5, 0.75, 1], JSON.stringify(o));
      adv.dispose();
    }
    x.dispose();
  });

  it('descend steps against the gradient (error-minimizing noise); the default ascends', () => {
    // loss = Σ x (gradient +1): by hand, one step of 2/255 from x moves every pixel up, or down
    // with descend, inside [x − ε, x + ε] ∩ [0, 1].
    const lossOf = (t: tf.Tensor4D) => tf.sum(t) as tf.Scalar;
    const v = [0, 0.25, 0.5, 1];
    const x = tf.tensor4d(v, [1, 2, 2, 1]);
    const s = 2 / 255;
    const run = (descend?: boolean) => {
      const adv = pgd(lossOf, x, {
        steps: 1,
        step: s,
        rng: new Rng(0),
        randomStart: false,
        descend,
      });
      const out = Array.from(adv.dataSync());
      adv.dispose();
      return out;
    };
    const up = v.map((a) => Math.fround(Math.min(1, a + s)));
    const down = v.map((a) => Math.fround(Math.max(0, a - s)));
    for (const [got, want] of [
      [run(), up],
      [run(false), up],
      [run(true), down],
    ])
      got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) < 1e-7, `${g} vs ${want[i]}`));
    x.dispose();
  });

  it('starts from `start` (clipped into the ball) when given, not from a random point', () => {
    const lossOf = (t: tf.Tensor4D) => tf.sum(t) as tf.Scalar;
    const x = tf.tensor4d([0.5, 0.5, 0.5, 0.5], [1, 2, 2, 1]);
    const eps = 8 / 255;
    // inside, above the ball, below it, and at x
    const start = tf.tensor4d([0.5 + eps / 2, 0.9, 0.1, 0.5], [1, 2, 2, 1]);
    const adv = pgd(lossOf, x, { epsilon: eps, steps: 0, rng: new Rng(0), start });
    const want = [0.5 + eps / 2, 0.5 + eps, 0.5 - eps, 0.5].map(Math.fround);
    Array.from(adv.dataSync()).forEach((g, i) =>
      assert.ok(Math.abs(g - want[i]) < 1e-7, `[${i}] ${g} vs ${want[i]}`),
    );
    tf.dispose([adv, x, start]);
  });

  it('a random start draws exactly one uniform per element (the generator continues from there)', () => {
    // N-FGSM's starts are replayed from the generator in the PyTorch comparison: one extra draw
    // would shift every later batch's start.
    const lossOf = (t: tf.Tensor4D) => tf.sum(t) as tf.Scalar;
    const x = tf.fill([2, 3, 3, 2], 0.5) as tf.Tensor4D;
    const rng = new Rng(9);
    pgd(lossOf, x, { steps: 0, rng }).dispose();
    const again = new Rng(9);
    for (let i = 0; i < x.size; i++) again.uniform();
    assert.equal(rng.uniform(), again.uniform());
    x.dispose();
  });

  it('ε warm-up: ε and step grow linearly over the warm-up epochs, then stay; none without it', () => {
    const a = { epsilon: 8 / 255, step: 2 / 255, steps: 10, warmupEpochs: 2 };
    const spe = 10; // steps per epoch: the warm-up lasts 20 steps
    assert.equal(attackAt(a, 0, spe).epsilon, (8 / 255) * (1 / 20));
    assert.equal(attackAt(a, 9, spe).step, (2 / 255) * (10 / 20));
    assert.equal(attackAt(a, 19, spe).epsilon, 8 / 255);
    assert.equal(attackAt(a, 500, spe).epsilon, 8 / 255);
    const paper = { epsilon: 8 / 255, step: 2 / 255, steps: 10 };
    assert.deepEqual(attackAt(paper, 0, spe), paper);
  });

  it('the quick preset warms ε up over 5 epochs; the paper preset and --attack-warmup 0 do not', () => {
    assert.equal(jobConfig({ strategy: 'at', seed: 0 }, 'cpu').adversarial?.warmupEpochs, 5);
    const paper = jobConfig({ strategy: 'at', seed: 0, preset: 'paper' }, 'cpu').adversarial;
    assert.deepEqual(paper, { epsilon: 8 / 255, step: 2 / 255, steps: 10 });
    const off = jobConfig({ strategy: 'at', seed: 0, attackWarmup: 0 }, 'cpu').adversarial;
    assert.equal(off?.warmupEpochs, undefined);
  });

  it('fast94 trains against N-FGSM (step ε, start in [−2ε, 2ε], unprojected) with a whitening floor of 12(ε/σ)²; quick and paper keep their exact PGD-10 configs', () => {
    const fast = jobConfig({ strategy: 'at', seed: 0, preset: 'fast94' }, 'cpu').adversarial;
    assert.deepEqual(fast, {
      epsilon: 8 / 255,
      step: 8 / 255,
      steps: 1,
      noise: 16 / 255,
      project: false,
      // 12 (ε/σ)², σ = 0.2435: 0.19920, by hand.
      whitenFloor: 12 * (8 / 255 / 0.2435) ** 2,
    });
    assert.equal(fast?.whitenFloor?.toFixed(5), '0.19920');
    const small = jobConfig({ strategy: 'at', seed: 0, preset: 'fast94', epsilon: 4 / 255 }, 'cpu');
    assert.deepEqual(small.adversarial, {
      epsilon: 4 / 255,
      step: 4 / 255,
      steps: 1,
      noise: 8 / 255,
      project: false,
      whitenFloor: 12 * (4 / 255 / 0.2435) ** 2,
    });
    // The key order decides an audit cell's identity hash: the same as before N-FGSM existed.
    const quick = jobConfig({ strategy: 'at', seed: 0 }, 'cpu').adversarial;
    assert.equal(
      JSON.stringify(quick),
      JSON.stringify({ epsilon: 8 / 255, step: 2 / 255, steps: 10, warmupEpochs: 5 }),
    );
  });

  it('N-FGSM by hand: x + δ clipped to [0, 1], then one step of ε along the gradient sign, clipped to [0, 1] only', () => {
    const { lossOf, dispose } = linearModel(11);
    const x = images(12);
    const eps = 8 / 255;
    const rng = new Rng(3);
    const adv = pgd(lossOf, x, {
      epsilon: eps,
      step: eps,
      steps: 1,
      noise: 2 * eps,
      project: false,
      rng,
    });
    // The same draws, by hand.
    const again = new Rng(3);
    const xs = x.dataSync();
    const start = Float32Array.from(xs, (v) =>
      Math.min(1, Math.max(0, v + (2 * again.uniform() - 1) * 2 * eps)),
    );
    const g = tf
      .grad((t: tf.Tensor) => lossOf(t as tf.Tensor4D))(tf.tensor4d(start, x.shape))
      .dataSync();
    const got = adv.dataSync();
    let outside = 0;
    for (let i = 0; i < got.length; i++) {
      const want = Math.min(1, Math.max(0, start[i] + eps * Math.sign(g[i])));
      assert.ok(Math.abs(got[i] - want) < 1e-6, `value ${i}: ${got[i]} vs ${want}`);
      if (Math.abs(got[i] - xs[i]) > eps + 1e-6) outside++;
    }
    // Unprojected: some values end farther than ε from x (a projected attack has none).
    assert.ok(outside > 0, 'no value left the ε-ball');
    tf.dispose([adv, x]);
    dispose();
  });
});
