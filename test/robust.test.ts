/**
 * Robust accuracy (src/train/robust.ts), the evidence that adversarial training worked, against
 * PyTorch: a LeNet-5 trained briefly (4 epochs on 5,000 images) (so that it is right on some images and an attack has
 * something to take away) is attacked with PGD-20 (ε = 8/255, step 2/255) from the same random
 * starts in float64 torch; the count of test images still classified correctly must be the same,
 * and lower than the clean count (the attack ran).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Dataset } from '../src/data/dataset.js';
import { loadCheckpoint, writeWeightsByName } from '../src/nn/checkpoint.js';
import { initEngine } from '../src/nn/engine.js';
import { buildModel } from '../src/nn/models/index.js';
import { Rng } from '../src/nn/rng.js';
import { type TrainConfig, evaluate, train } from '../src/train/loop.js';
import { ROBUST_ATTACK, robustAccuracy } from '../src/train/robust.js';
import { cifarClassNames, cifarDataset, cifarRecords, runPython } from './helpers.js';
import { TORCH_LENET, torchMissing } from './torch-lenet.js';

const N_TEST = 300;

const TORCH =
  TORCH_LENET +
  String.raw`
m = LeNet().eval()
params = {n.replace('.weight', '/kernel').replace('.bias', '/bias'): p for n, p in m.named_parameters()}
with torch.no_grad():
    for w in a['weights']:
        params[w['name']].copy_(torch.from_numpy(np.ascontiguousarray(to_torch(w['name'], w['shape'], w['values']))))
x = torch.tensor(a['x'], dtype=torch.float64).reshape(-1, 32, 32, 3).permute(0, 3, 1, 2)
y = torch.tensor(a['labels'], dtype=torch.int64)
d = torch.tensor(a['delta'], dtype=torch.float64).reshape(-1, 32, 32, 3).permute(0, 3, 1, 2)
eps, step = a['eps'], a['step']
lower, upper = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
adv = torch.max(torch.min(x + d, upper), lower)
for _ in range(a['steps']):
    adv.requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(m(adv), y), adv)
    adv = torch.max(torch.min(adv.detach() + step * g.sign(), upper), lower)
with torch.no_grad():
    clean = (m(x).argmax(1) == y).sum().item()
    robust = (m(adv).argmax(1) == y).sum().item()
json.dump({'clean': clean, 'robust': robust}, open(sys.argv[2], 'w'))
`;

describe('robust accuracy (PGD-20) against PyTorch', () => {
  let trainSet: Dataset;
  let test: Dataset;
  let tmp: string;
  before(async () => {
    await initEngine('wasm');
    const names = await cifarClassNames();
    trainSet = cifarDataset(await cifarRecords('data_batch_1.bin', 5000), names);
    test = cifarDataset(await cifarRecords('data_batch_2.bin', N_TEST), names);
    tmp = await mkdtemp(join(os.tmpdir(), 'onepixel-robust-'));
  });
  after(() => rm(tmp, { recursive: true, force: true }));

  it(
    'the same count of images survives the attack as in torch, fewer than clean',
    { skip: torchMissing() },
    async () => {
      const seed = 5;
      const config: TrainConfig = {
        ...{ model: 'lenet5', strategy: 'none', adversarial: null, epochs: 4, batchSize: 64 },
        ...{ lr: 0.01, momentum: 0.9, weightDecay: 5e-4, schedule: 'constant', milestones: [] },
        ...{ gamma: 0.1, seed },
      };
      const dir = join(tmp, 'ckpt');
      await train(config, { train: trainSet, test }, dir);
      const { weights } = await loadCheckpoint<TrainConfig, unknown>(dir);
      const model = buildModel('lenet5', test, 10, { seed });
      writeWeightsByName(model, weights, dir);
      // One batch (N_TEST < 250): robust.ts's random start is the first N_TEST·3072 draws.
      const robust = await robustAccuracy(model, test, seed, N_TEST);
      const clean = await evaluate(model, test, 500);
      model.dispose();
      const rng = new Rng(seed * 1_000_003 + 424_242);
      const eps = ROBUST_ATTACK.epsilon;
      const delta = Array.from({ length: N_TEST * 3072 }, () => (2 * rng.uniform() - 1) * eps);
      const input = join(tmp, 'in.json');
      await writeFile(
        input,
        JSON.stringify({
          weights: weights.map((w) => ({ ...w, values: Array.from(w.values) })),
          x: Array.from(test.images, (v) => v / 255),
          labels: Array.from(test.labels),
          delta,
          eps,
          step: ROBUST_ATTACK.step,
          steps: ROBUST_ATTACK.steps,
        }),
      );
      const output = join(tmp, 'out.json');
      runPython(TORCH, [input, output]);
      const ref = JSON.parse(await readFile(output, 'utf8')) as { clean: number; robust: number };
      console.log(
        `LeNet-5, 4 epochs on 5,000 images: clean ${Math.round(clean * N_TEST)}/${N_TEST} (torch ` +
          `${ref.clean}), under PGD-20 ${Math.round((robust ?? 0) * N_TEST)} (torch ${ref.robust})`,
      );
      assert.equal(Math.round(clean * N_TEST), ref.clean);
      assert.equal(Math.round((robust ?? -1) * N_TEST), ref.robust);
      assert.ok(ref.robust < ref.clean, 'the attack took nothing away: it proves nothing');
    },
  );
});
