/** Named training protocols: the paper's, and a CPU-sized one with a PyTorch reference run. */
import { AIRBENCH_STD, WHITEN_WIDTH } from '../nn/models/airbench94.js';
import type { TrainConfig } from './loop.js';

export const PRESETS = ['quick', 'paper', 'fast94'] as const;
export type PresetName = (typeof PRESETS)[number];

/** What a preset fixes; model and strategy stay the user's unless the preset names them. */
export const PRESET_CONFIG: Record<PresetName, Partial<TrainConfig>> = {
  // CPU-sized: LeNet-5, 15 epochs, standard augmentation, batch 128, SGD 0.9, wd 5e-4, one-cycle 0.05.
  quick: {
    model: 'lenet5',
    strategy: 'standard',
    epochs: 15,
    batchSize: 128,
    lr: 0.05,
    momentum: 0.9,
    weightDecay: 5e-4,
    schedule: 'onecycle',
    milestones: [],
  },
  // The OPS paper's protocol (Wu et al., ICLR 2023): 200 epochs, SGD lr 0.1, momentum 0.9,
  // wd 5e-4, batch 128, ×0.1 at 100 and 150.
  paper: {
    epochs: 200,
    batchSize: 128,
    lr: 0.1,
    momentum: 0.9,
    weightDecay: 5e-4,
    schedule: 'multistep',
    milestones: [100, 150],
    gamma: 0.1,
  },
  // K. Jordan's airbench94 (train/fast94.ts): 9.9 epochs at batch 1024, Nesterov SGD with lr 11.5
  // and weight decay 0.0153 per 1024 examples (decoupled), momentum 0.85, its own schedule,
  // lookahead, flip + translate 2 and test-time augmentation. schedule/milestones are unused.
  fast94: {
    model: 'airbench94',
    recipe: 'fast94',
    strategy: 'standard',
    epochs: 9.9,
    batchSize: 1024,
    lr: 11.5,
    momentum: 0.85,
    weightDecay: 0.0153,
    schedule: 'onecycle',
    milestones: [],
  },
};

/** The paper's PGD: ε 8/255, step 2/255, 10 steps. */
export const PAPER_ATTACK = { epsilon: 8 / 255, step: 2 / 255, steps: 10 };

/**
 * Adversarial training's attack per preset, from ε. quick, paper: the paper's PGD-10 (step
 * 2/255). fast94: N-FGSM (de Jorge et al., "Make Some Noise: Reliable and Efficient
 * Single-Step Adversarial Training", NeurIPS 2022): one signed-gradient step of ε from a uniform
 * start in [−2ε, 2ε], not projected back onto the ε-ball (only onto [0, 1]); the single-step
 * protocol they show free of catastrophic overfitting at ε = 8/255, at a third of PGD-2's cost
 * per step and a sixth of PGD-10's, which two cores can afford for a 94 % network. fast94 also
 * floors the whitening's eigenvalues (robustWhitenFloor).
 */
export function presetAttack(
  preset: PresetName,
  epsilon: number,
): { step: number; steps: number; noise?: number; project?: boolean; whitenFloor?: number } {
  if (preset === 'fast94')
    return {
      step: epsilon,
      steps: 1,
      noise: 2 * epsilon,
      project: false,
      whitenFloor: robustWhitenFloor(epsilon),
    };
  return { step: PAPER_ATTACK.step, steps: PAPER_ATTACK.steps };
}

/**
 * Adversarial training's ε warm-up (epochs over which ε grows from 0) per preset. quick: 5, the
 * length of its one-cycle ramp (30 % of 15 epochs): with the full ε from the first step, LeNet-5
 * collapses to a constant prediction for some seeds (onepixel and PyTorch alike; measured in
 * results/at-seeds). paper: none, the paper's protocol.
 */
export const PRESET_ATTACK_WARMUP: Record<PresetName, number> = { quick: 5, paper: 0, fast94: 0 };

/**
 * The whitening's eigenvalue floor under adversarial training with radius ε (fast94). airbench94's
 * first layer divides each 2×2 patch direction by √(λ + 5e-4), so that every direction's signal has
 * a standard deviation near 1: on CIFAR-10 the smallest λ are ~6e-4, and an 8/255 perturbation can
 * move those directions by 12.6 (results/audit-fast94/whiten-gain.*) — the attack, not the image,
 * is what the network sees there. The floor is the most an ε-ball corner reaches along a unit
 * direction of the 12 normalised patch values, squared: 12·(ε/σ)², σ the smallest channel std
 * (0.2435); with it no direction moves by more than 0.93 (CIFAR-10, 8/255).
 */
export function robustWhitenFloor(epsilon: number): number {
  // The patch holds WHITEN_WIDTH / 2 = 12 values; σ = 0.2435.
  return (WHITEN_WIDTH / 2) * (epsilon / Math.min(...AIRBENCH_STD)) ** 2;
}
