/**
 * Adversarial training's first steps against PyTorch from identical weights and batches: onepixel's
 * training loop (LeNet-5, PGD-10 at ε = 8/255, step 2/255, random start, attack in eval mode,
 * cross-entropy on the adversarial batch only, SGD with momentum 0.9 and weight decay 5e-4) runs
 * two steps on 128 real CIFAR-10 images; torch repeats them from the same initial weights, the same
 * batches and the same random starts, in float64 (the reference). Checked in two stages: the attack
 * of step 1 (onepixel's `pgd` on the initial model vs torch's PGD from the same δ0: the adversarial
 * batches must be equal but for a stated fraction of sign flips), then the loop's mean loss and the
 * weights after both steps.
 *
 * This test found a defect: tfjs-backend-wasm's `tf.sign` returns 0 for |g| < 1e-7, and 4.8 % of
 * the input gradients of the first step lie below that (the largest is 3.4e-5), so PGD left those
 * pixels unmoved; after 10 steps 48 % of the adversarial values differed from torch's and the
 * weights after two steps by 15–32 % of the update. PGD now takes the exact sign (src/nn/sign.ts).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Dataset } from '../src/data/dataset.js';
import { initEngine } from '../src/nn/engine.js';
import { buildModel } from '../src/nn/models/index.js';
import { loadCheckpoint } from '../src/nn/checkpoint.js';
import { type AttackConfig, type TrainConfig, train } from '../src/train/loop.js';
import { Rng } from '../src/nn/rng.js';
import { pgd } from '../src/nn/pgd.js';
import { crossEntropy } from '../src/nn/loss.js';
import * as tf from '@tensorflow/tfjs-core';
import { cifarClassNames, cifarDataset, cifarRecords, runPython } from './helpers.js';
import { TORCH_LENET, torchMissing } from './torch-lenet.js';

const N = 128;
const BATCH = 64;

const TORCH =
  TORCH_LENET +
  String.raw`
def to_tf(name, shape, t):
    t = t.detach().numpy()
    if name.endswith('kernel') and len(shape) == 4: return t.transpose(2, 3, 1, 0)
    if name.startswith('fc1') and name.endswith('kernel'):
        return t.reshape(120, 16, 5, 5).transpose(2, 3, 1, 0).reshape(400, 120)
    if name.endswith('kernel'): return t.T
    return t
m = LeNet()
params = {n.replace('.weight', '/kernel').replace('.bias', '/bias'): p for n, p in m.named_parameters()}
with torch.no_grad():
    for w in a['weights']:
        params[w['name']].copy_(torch.from_numpy(np.ascontiguousarray(to_torch(w['name'], w['shape'], w['values']))))
x_all = torch.tensor(a['x'], dtype=torch.float64).reshape(-1, 32, 32, 3).permute(0, 3, 1, 2)
y_all = torch.tensor(a['labels'], dtype=torch.int64)
opt = torch.optim.SGD(m.parameters(), lr=a['lr'], momentum=a['momentum'], weight_decay=a['wd'])
eps, step = a['eps'], a['step']
losses = []
advs = []
for b in range(len(a['deltas'])):
    idx = torch.tensor(a['order'][b * a['batch']:(b + 1) * a['batch']], dtype=torch.int64)
    x, y = x_all[idx], y_all[idx]
    d = torch.tensor(a['deltas'][b], dtype=torch.float64).reshape(-1, 32, 32, 3).permute(0, 3, 1, 2)
    if a['project']:
        lower, upper = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    else:  # N-FGSM: only the image range
        lower, upper = torch.zeros_like(x), torch.ones_like(x)
    adv = torch.max(torch.min(x + d, upper), lower)
    m.eval()
    for _ in range(a['steps']):
        adv.requires_grad_(True)
        (g,) = torch.autograd.grad(F.cross_entropy(m(adv), y), adv)
        adv = torch.max(torch.min(adv.detach() + step * g.sign(), upper), lower)
    advs.append(adv.detach().permute(0, 2, 3, 1).reshape(-1).tolist())
    m.train()
    opt.zero_grad()
    loss = F.cross_entropy(m(adv.detach()), y)
    loss.backward()
    opt.step()
    losses.append(loss.item())
out = {n: to_tf(n, next(w['shape'] for w in a['weights'] if w['name'] == n), p).reshape(-1).tolist() for n, p in params.items()}
json.dump({'losses': losses, 'weights': out, 'adv1': advs[0]}, open(sys.argv[2], 'w'))
`;

describe('adversarial training: the first steps equal PyTorch’s from the same weights', () => {
  let ds: Dataset;
  let tmp: string;
  before(async () => {
    await initEngine('wasm');
    ds = cifarDataset(await cifarRecords('data_batch_1.bin', N), await cifarClassNames());
    tmp = await mkdtemp(join(os.tmpdir(), 'onepixel-at-parity-'));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  // The paper's PGD-10, and N-FGSM (fast94's attack: one step of ε from U(−2ε, 2ε), unprojected).
  const PGD10 = { epsilon: 8 / 255, step: 2 / 255, steps: 10 };
  const NFGSM = { epsilon: 8 / 255, step: 8 / 255, steps: 1, noise: 16 / 255, project: false };
  const cases: Array<{ seed: number; attack: AttackConfig; name: string }> = [
    { seed: 0, attack: PGD10, name: 'PGD-10' },
    { seed: 1, attack: PGD10, name: 'PGD-10' },
    { seed: 0, attack: NFGSM, name: 'N-FGSM' },
  ];
  for (const { seed, attack, name } of cases) {
    it(
      `seed ${seed}: two steps of ${name} training, losses and weights`,
      { skip: torchMissing() },
      async () => {
        const config: TrainConfig = {
          model: 'lenet5',
          strategy: 'none',
          adversarial: attack,
          epochs: 1,
          batchSize: BATCH,
          lr: 0.05,
          momentum: 0.9,
          weightDecay: 5e-4,
          schedule: 'constant',
          milestones: [],
          gamma: 0.1,
          seed,
        };
        // The loop's draws, repeated: epoch 0's generator shuffles, then gives each batch's start
        // ('none' draws nothing; no ε warm-up in this config, so ε is 8/255 from the first step).
        const rng = new Rng(seed * 1_000_003 + 1);
        const order = Array.from(rng.permutation(N));
        const afterShuffle = rng.state();
        const eps = attack.epsilon;
        const radius = attack.noise ?? eps;
        const deltas = [0, 1].map(() =>
          Array.from({ length: BATCH * 3072 }, () => (2 * rng.uniform() - 1) * radius),
        );
        const model = buildModel('lenet5', ds, 10, { seed });
        const weights = await Promise.all(
          model.weights.map(async (w) => ({
            name: w.originalName,
            shape: w.shape,
            values: Array.from(await w.read().data()),
          })),
        );
        // Stage 1, the attack: step 1's adversarial batch from onepixel's pgd, as the loop calls it.
        const first = order.slice(0, BATCH);
        const x1 = new Float32Array(BATCH * 3072);
        first.forEach((k, i) => {
          for (let j = 0; j < 3072; j++) x1[i * 3072 + j] = ds.images[k * 3072 + j] / 255;
        });
        const adv1 = tf.tidy(() => {
          const targets = tf.oneHot(
            tf.tensor1d(
              first.map((k) => ds.labels[k]),
              'int32',
            ),
            10,
          );
          const lossOf = (xa: tf.Tensor4D) =>
            crossEntropy(model.apply(xa, { training: false }) as tf.Tensor, targets);
          const x = tf.tensor4d(x1, [BATCH, 32, 32, 3]);
          return pgd(lossOf, x, { ...attack, rng: Rng.fromState(afterShuffle) });
        });
        const ourAdv = await adv1.data();
        adv1.dispose();
        model.dispose();
        const dir = join(tmp, `ckpt-${seed}-${name}`);
        const run = await train(config, { train: ds, test: ds }, dir);
        const after = await loadCheckpoint<TrainConfig, unknown>(dir);
        const input = join(tmp, `in-${seed}-${name}.json`);
        await writeFile(
          input,
          JSON.stringify({
            weights,
            x: Array.from(ds.images, (v) => v / 255),
            labels: Array.from(ds.labels),
            order,
            deltas,
            batch: BATCH,
            lr: config.lr,
            momentum: config.momentum,
            wd: config.weightDecay,
            eps,
            step: attack.step,
            steps: attack.steps,
            project: attack.project ?? true,
          }),
        );
        const output = join(tmp, `out-${seed}-${name}.json`);
        runPython(TORCH, [input, output]);
        const ref = JSON.parse(await readFile(output, 'utf8')) as {
          losses: number[];
          weights: Record<string, number[]>;
          adv1: number[];
        };
        // A sign flip moves a value by 2·step (or by less at the ball's or [0, 1]'s edge).
        let flipped = 0;
        for (let i = 0; i < ourAdv.length; i++)
          if (Math.abs(ourAdv[i] - ref.adv1[i]) > 1e-6) flipped++;
        const flipFraction = flipped / ourAdv.length;
        // Measured: 0 of 196,608 for both seeds (onepixel's float32 attack equals torch's float64
        // one); torch's own float32 attack differs from its float64 one in 0.79 % (seed 0: ~40
        // sign flips of near-zero gradients in the first iteration, which then spread); with
        // wasm's flushing tf.sign, 48 %. Allowed: 0.1 %.
        assert.ok(
          flipFraction <= 1e-3,
          `step 1's adversarial batch: ${flipped} of ${ourAdv.length} values differ from torch's`,
        );
        const meanLoss = (ref.losses[0] + ref.losses[1]) / 2;
        const ours = run.history[0].trainLoss;
        // Measured: 4.5e-7 (seed 0), 2.9e-7 (seed 1).
        assert.ok(Math.abs(ours - meanLoss) < 1e-5, `loss ${ours} vs torch ${meanLoss}`);
        // Stage 2, the loop: the update moved the weights (else equality would prove nothing) as
        // torch's did.
        let moved = 0;
        for (const w of after.weights) {
          const theirs = ref.weights[w.name];
          assert.ok(theirs, w.name);
          const before = weights.find((b) => b.name === w.name)?.values ?? [];
          let maxDiff = 0;
          let step = 0;
          for (let i = 0; i < theirs.length; i++) {
            maxDiff = Math.max(maxDiff, Math.abs(w.values[i] - theirs[i]));
            step = Math.max(step, Math.abs(theirs[i] - before[i]));
          }
          moved = Math.max(moved, step);
          // Measured: at most 1.2e-4 of the update (seed 1, conv2); the sign defect gave 15–32 %.
          // (Torch's float32 run differs from its float64 one by up to 6.3 %, through the 0.79 %
          // flipped adversarial values; the attack check above rules such flips out here.)
          assert.ok(
            maxDiff <= 0.01 * step,
            `${w.name}: max |onepixel − torch| = ${maxDiff}, update ${step}`,
          );
        }
        assert.ok(moved > 1e-3, `the steps moved the weights by ${moved}`);
      },
    );
  }
});
