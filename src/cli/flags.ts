/**
 * Every numeric flag of every command is read here: a bad value is a one-line error naming the
 * flag (exit 1), never a stack trace or a NaN carried into the run. Parsers throw OnepixelError,
 * which commander passes on to main.ts.
 */
import { fail } from '../errors.js';
import { parseEpsilon } from '../noise/bounds.js';

type Parser = (value: string) => number;

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

function number(flag: string, value: string, expected: string): number {
  const t = value.trim();
  const n = Number(t);
  if (!DECIMAL.test(t) || !Number.isFinite(n)) fail(`${flag} '${value}': expected ${expected}`);
  return n;
}

/** Counts: 1, 2, 3… */
export function positiveInt(flag: string): Parser {
  return (value) => {
    const expected = 'a positive integer';
    const n = number(flag, value, expected);
    if (!Number.isSafeInteger(n) || n < 1) fail(`${flag} '${value}': expected ${expected}`);
    return n;
  };
}

/** Seeds: 0, 1, 2… */
export function seed(flag = '--seed'): Parser {
  return (value) => {
    const expected = 'a non-negative integer';
    const n = number(flag, value, expected);
    if (!Number.isSafeInteger(n) || n < 0) fail(`${flag} '${value}': expected ${expected}`);
    return n;
  };
}

/**
 * Rates: a finite number in [min, max] (`open` excludes an end: 'min', 'max' or 'both').
 * `positiveNumber` is (0, ∞).
 */
export function rate(
  flag: string,
  min: number,
  max: number,
  open: 'min' | 'max' | 'both' | 'none' = 'none',
): Parser {
  const lo = open === 'min' || open === 'both' ? '(' : '[';
  const hi = open === 'max' || open === 'both' || max === Infinity ? ')' : ']';
  const expected = `a number in ${lo}${min}, ${max === Infinity ? '∞' : max}${hi}`;
  return (value) => {
    const n = number(flag, value, expected);
    const belowMin = lo === '(' ? n <= min : n < min;
    const aboveMax = hi === ')' ? n >= max : n > max;
    if (belowMin || aboveMax) fail(`${flag} '${value}': expected ${expected}`);
    return n;
  };
}

export const positiveNumber = (flag: string): Parser => rate(flag, 0, Infinity, 'min');
export const nonNegative = (flag: string): Parser => rate(flag, 0, Infinity);

/**
 * Budgets and steps in pixel units, one grammar for every command (ε, PGD steps): a fraction of
 * the pixel range in (0, 1) (`0.0314`), a ratio (`8/255`), or an integer ≥ 1 read as that many
 * 255ths (`8` = 8/255). Returns the fraction.
 */
export function budget(flag: string): Parser {
  return (value) => parseEpsilon(value, flag);
}

/** `--milestones 100,150`: epochs, positive integers. */
export function epochList(flag: string): (value: string) => number[] {
  const one = positiveInt(flag);
  return (value) => value.split(',').map((s) => one(s));
}
