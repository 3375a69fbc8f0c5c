/**
 * Learning-rate schedules as plain functions of the step index (0 = the first step), with the
 * values of PyTorch's schedulers (`torch.optim.lr_scheduler`) after `step` calls of
 * `scheduler.step()`. A "step" is whatever unit the caller counts in: epochs for the paper's
 * MultiStepLR (milestones 100, 150), optimiser steps for OneCycleLR.
 */

/** The learning rate to use at a step index. */
export type Schedule = (step: number) => number;

/** A constant learning rate. */
export function constant(lr: number): Schedule {
  return () => lr;
}

/**
 * `MultiStepLR`: base · gamma^(number of milestones ≤ step). The paper: base 0.1, milestones
 * [100, 150] (epochs), gamma 0.1.
 */
export function multistep(base: number, milestones: readonly number[], gamma = 0.1): Schedule {
  const sorted = [...milestones].sort((a, b) => a - b);
  return (step) => {
    let k = 0;
    while (k < sorted.length && sorted[k] <= step) k++;
    return base * Math.pow(gamma, k);
  };
}

/**
 * `CosineAnnealingLR(T_max = totalSteps, eta_min)` in its closed form:
 * eta_min + (base − eta_min)·(1 + cos(π·step/totalSteps))/2 (PyTorch's recursive form agrees to
 * rounding). Past totalSteps it stays at eta_min (PyTorch's would rise again).
 */
export function cosine(base: number, totalSteps: number, etaMin = 0): Schedule {
  if (!(totalSteps > 0)) throw new RangeError(`cosine: totalSteps ${totalSteps} must be > 0`);
  return (step) => {
    const t = Math.min(Math.max(step, 0), totalSteps);
    return etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * t) / totalSteps))) / 2;
  };
}

export interface OneCycleOptions {
  /** Fraction of the steps spent increasing the lr. Default 0.3. */
  pctStart?: number;
  /** Initial lr = maxLr / divFactor. Default 25. */
  divFactor?: number;
  /** Final lr = initial lr / finalDivFactor. Default 1e4. */
  finalDivFactor?: number;
  /** Annealing between phase ends. Default 'cos'. */
  anneal?: 'cos' | 'linear';
  /** PyTorch's `three_phase`: back to the initial lr, then annealed to the final one. */
  threePhase?: boolean;
}

/**
 * `OneCycleLR(max_lr, total_steps, pct_start, anneal_strategy, div_factor, final_div_factor,
 * three_phase)`, learning rate only (no momentum cycling). Defined for 0 ≤ step ≤ totalSteps; like
 * PyTorch, a step past totalSteps is an error.
 */
export function oneCycle(maxLr: number, totalSteps: number, opts: OneCycleOptions = {}): Schedule {
  const pctStart = opts.pctStart ?? 0.3;
  const divFactor = opts.divFactor ?? 25;
  const finalDivFactor = opts.finalDivFactor ?? 1e4;
  const anneal = opts.anneal ?? 'cos';
  if (!Number.isInteger(totalSteps) || totalSteps <= 0)
    throw new RangeError(`oneCycle: totalSteps ${totalSteps} must be a positive integer`);
  if (!(pctStart >= 0 && pctStart <= 1))
    throw new RangeError(`oneCycle: pctStart ${pctStart} must be in [0, 1]`);
  const initial = maxLr / divFactor;
  const min = initial / finalDivFactor;
  const phases = opts.threePhase
    ? [
        { end: pctStart * totalSteps - 1, from: initial, to: maxLr },
        { end: 2 * pctStart * totalSteps - 2, from: maxLr, to: initial },
        { end: totalSteps - 1, from: initial, to: min },
      ]
    : [
        { end: pctStart * totalSteps - 1, from: initial, to: maxLr },
        { end: totalSteps - 1, from: maxLr, to: min },
      ];
  const annealFn =
    anneal === 'cos'
      ? (from: number, to: number, pct: number) =>
          to + ((from - to) / 2) * (Math.cos(Math.PI * pct) + 1)
      : (from: number, to: number, pct: number) => (to - from) * pct + from;
  return (step) => {
    if (step > totalSteps)
      throw new RangeError(`oneCycle: step ${step} is past totalSteps ${totalSteps}`);
    let start = 0;
    for (let i = 0; i < phases.length; i++) {
      const { end, from, to } = phases[i];
      if (step <= end || i === phases.length - 1)
        return annealFn(from, to, (step - start) / (end - start));
      start = end;
    }
    return min; // not reached: the last phase always returns
  };
}

export type ScheduleName = 'constant' | 'multistep' | 'cosine' | 'onecycle';

export const SCHEDULES: readonly ScheduleName[] = ['constant', 'multistep', 'cosine', 'onecycle'];

export interface ScheduleOptions extends OneCycleOptions {
  /** Base lr (constant, multistep, cosine) or max lr (onecycle). */
  lr: number;
  /** Steps in all (cosine, onecycle). */
  totalSteps?: number;
  /** multistep: the steps at which the lr is multiplied by gamma. */
  milestones?: readonly number[];
  /** multistep: the factor. Default 0.1. */
  gamma?: number;
  /** cosine: the final lr. Default 0. */
  etaMin?: number;
}

/** A schedule by name, e.g. `scheduleFor('multistep', { lr: 0.1, milestones: [100, 150] })`. */
export function scheduleFor(name: ScheduleName, opts: ScheduleOptions): Schedule {
  const need = (what: 'totalSteps') => {
    const v = opts[what];
    if (v === undefined) throw new RangeError(`scheduleFor('${name}'): ${what} is required`);
    return v;
  };
  switch (name) {
    case 'constant':
      return constant(opts.lr);
    case 'multistep':
      if (!opts.milestones) throw new RangeError(`scheduleFor('multistep'): milestones required`);
      return multistep(opts.lr, opts.milestones, opts.gamma ?? 0.1);
    case 'cosine':
      return cosine(opts.lr, need('totalSteps'), opts.etaMin ?? 0);
    case 'onecycle':
      return oneCycle(opts.lr, need('totalSteps'), opts);
    default: {
      const never: never = name;
      throw new RangeError(`scheduleFor: unknown schedule '${String(never)}'`);
    }
  }
}
