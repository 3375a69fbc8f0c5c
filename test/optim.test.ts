/**
 * SGD (momentum, weight decay) against a trajectory computed by hand and against torch.optim.SGD
 * fed the same gradients; learning-rate schedules against values computed with PyTorch 1.13
 * (hard-coded here, and recomputed by torch when /usr/bin/python3 imports it).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { SGD } from '../src/nn/optim.js';
import { constant, cosine, multistep, oneCycle, scheduleFor } from '../src/nn/schedule.js';
import { Rng } from '../src/nn/rng.js';
import { PYTHON, runPython } from './helpers.js';

/** False when /usr/bin/python3 imports torch, else why not (the reason a test is skipped). */
function noTorch(): false | string {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} not runnable (${r.error.message})`;
  if (r.status !== 0)
    return `${PYTHON} cannot import torch (apt-get install python3-torch): ${r.stderr.trim().split('\n').pop()}`;
  return false;
}
const NO_TORCH = noTorch();

before(async () => {
  await tf.setBackend('cpu');
});

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string) {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++)
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])),
      `${what}[${i}]: ${actual[i]} vs ${expected[i]}`,
    );
}

describe('SGD', () => {
  it('follows a hand-computed 3-step trajectory (momentum 0.9, wd 0.1, lr changing)', async () => {
    // Values chosen exact in float32 (or nearly), and a trajectory worked out by hand in doubles:
    // w0 = [1, -2]; grads g1 = [0.5, 0.25], g2 = [-1, 1], g3 = [0, 0.5]; lrs 0.1, 0.1, 0.01.
    // step 1: d = g1 + 0.1·w0 = [0.6, 0.05];  buf = d = [0.6, 0.05];          w1 = w0 − 0.1·buf = [0.94, −2.005]
    // step 2: d = g2 + 0.1·w1 = [−0.906, 0.7995];  buf = 0.9·[0.6, 0.05] + d = [−0.366, 0.8445]
    //         w2 = w1 − 0.1·buf = [0.9766, −2.08945]
    // step 3: d = g3 + 0.1·w2 = [0.09766, 0.291055];  buf = 0.9·buf + d = [−0.23174, 1.051105]
    //         w3 = w2 − 0.01·buf = [0.9789174, −2.09996105]
    const w = tf.variable(tf.tensor1d([1, -2]), true, 'w_hand');
    const opt = new SGD([w], { momentum: 0.9, weightDecay: 0.1 });
    const steps: Array<[number[], number, number[]]> = [
      [[0.5, 0.25], 0.1, [0.94, -2.005]],
      [[-1, 1], 0.1, [0.9766, -2.08945]],
      [[0, 0.5], 0.01, [0.9789174, -2.09996105]],
    ];
    for (const [k, [g, lr, expected]] of steps.entries()) {
      const grad = tf.tensor1d(g);
      opt.step({ w_hand: grad }, lr);
      grad.dispose();
      close(w.dataSync(), expected, 1e-6, `step ${k + 1}`);
    }
    assert.equal(opt.stepCount, 3);
    close((await opt.state()).buffers.w_hand.values, [-0.23174, 1.051105], 1e-6, 'momentum buffer');
    opt.dispose();
    w.dispose();
  });

  it('does not leak tensors and skips parameters without a gradient', async () => {
    const a = tf.variable(tf.ones([2, 2]), true, 'leak_a');
    const b = tf.variable(tf.ones([3]), true, 'leak_b');
    const opt = new SGD([a, b]);
    const g = tf.ones([2, 2]);
    opt.step({ leak_a: g }, 0.1); // creates a's buffer
    const before = tf.memory().numTensors;
    for (let i = 0; i < 5; i++) opt.step({ leak_a: g }, 0.1);
    assert.equal(tf.memory().numTensors, before);
    assert.deepEqual(Array.from(b.dataSync()), [1, 1, 1], 'b has no gradient: unchanged');
    assert.deepEqual(Object.keys((await opt.state()).buffers), ['leak_a']);
    assert.throws(() => opt.step({ nope: g }, 0.1), /unknown 'nope'/);
    // a bad shape anywhere refuses the whole step: a (listed first) is not updated either
    const aBefore = Array.from(a.dataSync());
    const wrong = tf.ones([2]);
    assert.throws(
      () => opt.step({ leak_a: g, leak_b: wrong }, 0.1),
      /shape \[2\], parameter \[3\]/,
    );
    assert.deepEqual(Array.from(a.dataSync()), aBefore);
    wrong.dispose();
    g.dispose();
    const held = tf.memory().numTensors;
    opt.dispose();
    assert.equal(tf.memory().numTensors, held - 1, 'dispose frees the buffer');
    a.dispose();
    b.dispose();
  });

  it('decayBiasAndBn: false leaves rank ≤ 1 parameters undecayed', () => {
    const k = tf.variable(tf.ones([2, 2]), true, 'nd_kernel');
    const bias = tf.variable(tf.ones([2]), true, 'nd_bias');
    const opt = new SGD([k, bias], { momentum: 0, weightDecay: 0.5, decayBiasAndBn: false });
    const zk = tf.zeros([2, 2]);
    const zb = tf.zeros([2]);
    opt.step({ nd_kernel: zk, nd_bias: zb }, 0.1);
    close(k.dataSync(), [0.95, 0.95, 0.95, 0.95], 1e-7, 'kernel decayed');
    close(bias.dataSync(), [1, 1], 0, 'bias not decayed');
    [k, bias, zk, zb].forEach((t) => t.dispose());
    opt.dispose();
  });

  it('state() / loadState() resume the same trajectory', async () => {
    const rng = new Rng(5);
    const grads = Array.from({ length: 6 }, () => Array.from({ length: 4 }, () => rng.normal()));
    const run = async (resumeAt: number | null) => {
      const w = tf.variable(tf.tensor2d([1, 2, 3, 4], [2, 2]), true);
      let opt = new SGD({ w });
      for (const [i, g] of grads.entries()) {
        if (i === resumeAt) {
          const saved = JSON.parse(JSON.stringify(await opt.state()));
          opt.dispose();
          opt = new SGD({ w });
          opt.loadState(saved);
        }
        const t = tf.tensor2d(g, [2, 2]);
        opt.step({ w: t }, 0.05);
        t.dispose();
      }
      const out = Array.from(w.dataSync());
      opt.dispose();
      w.dispose();
      return out;
    };
    assert.deepEqual(await run(3), await run(null));
  });

  it('matches torch.optim.SGD for the same gradients (1e-6)', { skip: NO_TORCH }, () => {
    const rng = new Rng(2024);
    const shapes: Record<string, number[]> = { kernel: [3, 4], bias: [4], gamma: [4] };
    const init: Record<string, number[]> = {};
    for (const [name, shape] of Object.entries(shapes))
      init[name] = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () =>
        Math.fround(rng.normal()),
      );
    const nSteps = 7;
    const grads = Array.from({ length: nSteps }, (_, s) => {
      const g: Record<string, number[]> = {};
      for (const name of Object.keys(shapes))
        // bias gets no gradient at step 2 (torch: grad None, skipped)
        if (!(name === 'bias' && s === 2))
          g[name] = init[name].map(() => Math.fround(rng.normal()));
      return g;
    });
    const lrs = [0.1, 0.1, 0.05, 0.2, 0.01, 0.1, 0.1];
    const configs = [
      { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0, decayBiasAndBn: true },
      { momentum: 0.9, weightDecay: 5e-4, nesterov: false, dampening: 0, decayBiasAndBn: false },
      { momentum: 0.5, weightDecay: 1e-2, nesterov: true, dampening: 0, decayBiasAndBn: true },
      { momentum: 0.8, weightDecay: 0, nesterov: false, dampening: 0.3, decayBiasAndBn: true },
      { momentum: 0, weightDecay: 1e-3, nesterov: false, dampening: 0, decayBiasAndBn: true },
    ];
    const script = `
import json, sys, torch
d = json.loads(sys.stdin.read())
out = []
for cfg in d['configs']:
    ps = {n: torch.nn.Parameter(torch.tensor(v, dtype=torch.float32).reshape(d['shapes'][n])) for n, v in d['init'].items()}
    if cfg['decayBiasAndBn']:
        groups = [{'params': list(ps.values())}]
    else:
        groups = [{'params': [p for p in ps.values() if p.dim() > 1]},
                  {'params': [p for p in ps.values() if p.dim() <= 1], 'weight_decay': 0.0}]
    opt = torch.optim.SGD(groups, lr=0.1, momentum=cfg['momentum'], weight_decay=cfg['weightDecay'],
                          nesterov=cfg['nesterov'], dampening=cfg['dampening'])
    traj = []
    for g, lr in zip(d['grads'], d['lrs']):
        for group in opt.param_groups: group['lr'] = lr
        for n, p in ps.items():
            p.grad = torch.tensor(g[n], dtype=torch.float32).reshape(p.shape) if n in g else None
        opt.step()
        traj.append({n: p.detach().reshape(-1).tolist() for n, p in ps.items()})
    out.append(traj)
print(json.dumps(out))
`;
    const r = spawnSync(PYTHON, ['-c', script], {
      input: JSON.stringify({ configs, shapes, init, grads, lrs }),
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const expected = JSON.parse(r.stdout) as Array<Array<Record<string, number[]>>>;
    for (const [c, cfg] of configs.entries()) {
      const vars: Record<string, tf.Variable> = {};
      for (const [name, shape] of Object.entries(shapes))
        vars[name] = tf.variable(tf.tensor(init[name], shape));
      const opt = new SGD(vars, cfg);
      for (let s = 0; s < nSteps; s++) {
        const g: Record<string, tf.Tensor> = {};
        for (const [name, v] of Object.entries(grads[s])) g[name] = tf.tensor(v, shapes[name]);
        opt.step(g, lrs[s]);
        Object.values(g).forEach((t) => t.dispose());
        for (const name of Object.keys(shapes))
          close(
            vars[name].dataSync(),
            expected[c][s][name],
            1e-6,
            `config ${c} step ${s + 1} ${name}`,
          );
      }
      opt.dispose();
      Object.values(vars).forEach((v) => v.dispose());
    }
  });
});

// Values printed by PyTorch 1.13 (torch.optim.lr_scheduler, SGD lr read from param_groups after
// k calls of scheduler.step()), for the settings below.
const TORCH_LRS = {
  multistep: {
    0: 0.1,
    99: 0.1,
    100: 0.010000000000000002,
    149: 0.010000000000000002,
    150: 0.0010000000000000002,
    199: 0.0010000000000000002,
  },
  cosine50: {
    0: 0.1,
    1: 0.09990133642141358,
    10: 0.09045084971874737,
    25: 0.049999999999999996,
    37: 0.015772644703565562,
    49: 9.866357858642205e-5,
    50: 0.0,
  },
  onecycle100: {
    0: 0.0040000000000000036,
    1: 0.004281378056590748,
    15: 0.05459866761210004,
    29: 0.1,
    30: 0.09994965352845243,
    31: 0.09979871550490317,
    50: 0.0793893450575732,
    99: 4e-7,
    100: 5.074647154757325e-5,
  },
  onecycleLinear40: {
    0: 0.04,
    1: 0.08,
    9: 0.4,
    10: 0.38668,
    11: 0.37336,
    20: 0.25348000000000004,
    39: 0.00040000000000001146,
    40: -0.012920000000000043,
  },
  onecycleThree30: {
    0: 0.008000000000000007,
    5: 0.1407376095070486,
    8: 0.2,
    9: 0.19269243512108353,
    10: 0.17188225099390855,
    17: 0.007883778892977238,
    18: 0.007541869920202577,
    19: 0.006994143588385135,
    29: 8e-7,
    30: 0.00011702110702276193,
  },
};

/** The schedules under test, with the torch scheduler each one mirrors. */
const CASES = [
  {
    key: 'multistep',
    ours: multistep(0.1, [100, 150], 0.1),
    steps: 200,
    torch: { kind: 'multistep', kw: { lr: 0.1, milestones: [100, 150], gamma: 0.1 } },
  },
  {
    key: 'cosine50',
    ours: cosine(0.1, 50),
    steps: 51,
    torch: { kind: 'cosine', kw: { lr: 0.1, T_max: 50 } },
  },
  {
    key: 'onecycle100',
    ours: oneCycle(0.1, 100),
    steps: 101,
    torch: { kind: 'onecycle', kw: { max_lr: 0.1, total_steps: 100 } },
  },
  {
    key: 'onecycleLinear40',
    ours: oneCycle(0.4, 40, {
      pctStart: 0.25,
      anneal: 'linear',
      divFactor: 10,
      finalDivFactor: 100,
    }),
    steps: 41,
    torch: {
      kind: 'onecycle',
      kw: {
        max_lr: 0.4,
        total_steps: 40,
        pct_start: 0.25,
        anneal_strategy: 'linear',
        div_factor: 10,
        final_div_factor: 100,
      },
    },
  },
  {
    key: 'onecycleThree30',
    ours: oneCycle(0.2, 30, { threePhase: true }),
    steps: 31,
    torch: { kind: 'onecycle', kw: { max_lr: 0.2, total_steps: 30, three_phase: true } },
  },
] as const;

describe('learning-rate schedules', () => {
  it('match the hard-coded PyTorch values', () => {
    for (const c of CASES)
      for (const [step, lr] of Object.entries(TORCH_LRS[c.key]))
        close([c.ours(Number(step))], [lr], 1e-12, `${c.key} step ${step}`);
  });

  it('match torch.optim.lr_scheduler at every step', { skip: NO_TORCH }, () => {
    const script = `
import json, sys, torch
def run(kind, steps, kw):
    kw = dict(kw)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=kw.pop('lr', 0.1), momentum=0.9)
    S = {'multistep': torch.optim.lr_scheduler.MultiStepLR, 'cosine': torch.optim.lr_scheduler.CosineAnnealingLR,
         'onecycle': torch.optim.lr_scheduler.OneCycleLR}[kind]
    s = S(opt, **kw)
    out = []
    for i in range(steps):
        out.append(opt.param_groups[0]['lr'])
        if i + 1 < steps:
            opt.step(); s.step()
    return out
print(json.dumps([run(c['kind'], c['steps'], c['kw']) for c in json.loads(sys.argv[1])]))
`;
    const out = JSON.parse(
      runPython(script, [JSON.stringify(CASES.map((c) => ({ ...c.torch, steps: c.steps })))]),
    ) as number[][];
    for (const [i, c] of CASES.entries()) {
      const ours = Array.from({ length: c.steps }, (_, s) => c.ours(s));
      close(ours, out[i], 1e-12, c.key);
    }
  });

  it('scheduleFor builds the same schedules; errors are explicit', () => {
    const m = scheduleFor('multistep', { lr: 0.1, milestones: [100, 150] });
    assert.equal(m(120), multistep(0.1, [100, 150])(120));
    assert.equal(scheduleFor('cosine', { lr: 0.1, totalSteps: 50 })(37), cosine(0.1, 50)(37));
    assert.equal(scheduleFor('onecycle', { lr: 0.1, totalSteps: 100 })(15), oneCycle(0.1, 100)(15));
    assert.equal(scheduleFor('constant', { lr: 0.3 })(1e6), constant(0.3)(0));
    assert.throws(() => scheduleFor('cosine', { lr: 0.1 }), /totalSteps is required/);
    assert.throws(() => scheduleFor('multistep', { lr: 0.1 }), /milestones/);
    assert.throws(() => oneCycle(0.1, 100)(101), /past totalSteps/);
    assert.equal(cosine(0.1, 50)(80), 0, 'cosine stays at eta_min past its end');
  });
});
