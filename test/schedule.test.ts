/**
 * The multistep learning-rate schedule (src/nn/schedule.ts) against torch.optim.lr_scheduler.
 * MultiStepLR for milestones that optim.test.ts's paper case ([100, 150], three digits each, in
 * order) cannot tell apart: unsorted, of different digit counts (a sort without a comparator
 * orders 5 after 10), repeated, other factors; and the paper preset's schedule as the training
 * loop builds it (milestones in epochs times steps per epoch), epoch by epoch and step by step.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { multistep, scheduleFor } from '../src/nn/schedule.js';
import { PRESET_CONFIG } from '../src/train/presets.js';
import { PYTHON, runPython } from './helpers.js';

const NO_TORCH = (() => {
  const r = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' });
  return r.status === 0 ? false : `${PYTHON} cannot import torch (apt-get install python3-torch)`;
})();

/** torch's learning rate before each of `steps` optimiser steps, for each case. */
function torchMultiStep(
  cases: Array<{ lr: number; milestones: number[]; gamma: number; steps: number }>,
): number[][] {
  return JSON.parse(
    runPython(
      'import json, sys, torch\n' +
        'def run(c):\n' +
        '  p = torch.nn.Parameter(torch.zeros(1))\n' +
        "  opt = torch.optim.SGD([p], lr=c['lr'])\n" +
        "  s = torch.optim.lr_scheduler.MultiStepLR(opt, c['milestones'], c['gamma'])\n" +
        '  out = []\n' +
        "  for i in range(c['steps']):\n" +
        "    out.append(opt.param_groups[0]['lr']); opt.step(); s.step()\n" +
        '  return out\n' +
        'print(json.dumps([run(c) for c in json.loads(sys.argv[1])]))',
      [JSON.stringify(cases)],
    ),
  ) as number[][];
}

/** Equal to torch's value to 1e-15 relative (torch multiplies step by step, we take a power). */
function assertClose(ours: number[], ref: number[], what: string): void {
  assert.equal(ours.length, ref.length);
  for (let i = 0; i < ref.length; i++)
    assert.ok(
      Math.abs(ours[i] - ref[i]) <= 1e-15 * Math.abs(ref[i]),
      `${what}, step ${i}: ${ours[i]} vs torch ${ref[i]}`,
    );
}

describe(
  'multistep schedule (and scheduleFor) against torch.optim.lr_scheduler',
  { skip: NO_TORCH },
  () => {
    it('milestones unsorted, of different digit counts, repeated; other factors', () => {
      const cases = [
        { lr: 0.1, milestones: [150, 100], gamma: 0.1, steps: 200 },
        { lr: 0.1, milestones: [5, 10, 100], gamma: 0.1, steps: 120 },
        { lr: 0.3, milestones: [30, 9], gamma: 0.5, steps: 40 },
        { lr: 1, milestones: [3, 3, 20], gamma: 0.2, steps: 25 },
        { lr: 0.05, milestones: [], gamma: 0.1, steps: 5 },
      ];
      const ref = torchMultiStep(cases);
      cases.forEach((c, i) => {
        const lr = multistep(c.lr, c.milestones, c.gamma);
        const viaName = scheduleFor('multistep', c);
        const ours = Array.from({ length: c.steps }, (_, s) => lr(s));
        assertClose(ours, ref[i], `milestones [${c.milestones}] gamma ${c.gamma}`);
        assert.deepEqual(
          Array.from({ length: c.steps }, (_, s) => viaName(s)),
          ours,
          'scheduleFor gives the same',
        );
      });
      assert.throws(() => scheduleFor('multistep', { lr: 0.1 }), {
        name: 'RangeError',
        message: "scheduleFor('multistep'): milestones required",
      });
      // Without a factor, scheduleFor uses MultiStepLR's default 0.1.
      const dflt = scheduleFor('multistep', { lr: 0.1, milestones: [2] });
      assert.deepEqual([dflt(1), dflt(2)], [0.1, multistep(0.1, [2], 0.1)(2)]);
    });

    it('scheduleFor passes cosine its final lr: CosineAnnealingLR with eta_min', () => {
      const [ref] = JSON.parse(
        runPython(
          'import json, torch\n' +
            'p = torch.nn.Parameter(torch.zeros(1)); opt = torch.optim.SGD([p], lr=0.1)\n' +
            's = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=20, eta_min=0.01)\n' +
            'out = []\n' +
            'for i in range(21):\n' +
            "  out.append(opt.param_groups[0]['lr']); opt.step(); s.step()\n" +
            'print(json.dumps([out]))',
        ),
      ) as number[][];
      const lr = scheduleFor('cosine', { lr: 0.1, totalSteps: 20, etaMin: 0.01 });
      // torch's recursive form agrees with the closed form to rounding (1e-12 relative).
      ref.forEach((want, i) =>
        assert.ok(Math.abs(lr(i) - want) <= 1e-12 * want, `step ${i}: ${lr(i)} vs torch ${want}`),
      );
    });

    it('the paper preset: lr 0.1, ×0.1 after epochs 100 and 150, as the loop steps it', () => {
      const paper = PRESET_CONFIG.paper;
      assert.equal(paper.schedule, 'multistep');
      assert.equal(paper.epochs, 200);
      // The loop's construction (src/train/loop.ts): milestones in epochs × steps per epoch.
      const stepsPerEpoch = Math.floor(50_000 / (paper.batchSize as number));
      assert.equal(stepsPerEpoch, 390);
      const lrAt = scheduleFor('multistep', {
        lr: paper.lr as number,
        totalSteps: 200 * stepsPerEpoch,
        milestones: (paper.milestones as number[]).map((e) => e * stepsPerEpoch),
        gamma: paper.gamma,
      });
      // torch in the paper's code steps MultiStepLR once per epoch, with these settings.
      const [ref] = torchMultiStep([{ lr: 0.1, milestones: [100, 150], gamma: 0.1, steps: 200 }]);
      const firstStep = ref.map((_, e) => lrAt(e * stepsPerEpoch));
      const lastStep = ref.map((_, e) => lrAt((e + 1) * stepsPerEpoch - 1));
      assertClose(firstStep, ref, 'first step of each epoch');
      assertClose(lastStep, ref, 'last step of each epoch');
    });
  },
);
